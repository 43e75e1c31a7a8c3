"""The ipam suite on the namespace double, whose pools and endpoints follow Spiderpool's documented semantics,
and the upstream IPAM bugs reproduced as faults: each one is caught."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spider_validate.cluster import addresses
from spider_validate.engine.model import ActionResult, RunResult, Status, TestResult
from spider_validate.engine.params import Parameters
from spider_validate.engine.runner import Runner
from spider_validate.report import formats as report
from spider_validate.suites import all_tests

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left

IPAM_RANGE = "198.18.0.160-198.18.0.199"  # free addresses of the double's subnet, outside lab-general


@pytest.fixture(autouse=True)
def fresh(lab: LabCluster) -> Iterator[None]:
    yield
    assert_nothing_left(lab)
    assert not [name for (kind, _, name) in lab.objects if kind == "SpiderIPPool" and name.startswith("sv-")]


def run(lab: LabCluster, tmp_path: Path, **overrides: Any) -> RunResult:
    base: dict[str, Any] = {
        "tests": ("ipam/",),
        "ipam_range": IPAM_RANGE,
        "ipam_pods": 8,
        "probe_timeout": 2,
        "retry_delay": 0.1,
        "release_timeout": 5,
        "pod_ready_timeout": 20,
        "diagnostics_dir": str(tmp_path),
    }
    return Runner(lab, Parameters(**(base | overrides)), all_tests()).run()


def result_of(result: RunResult, name: str) -> TestResult:
    return next(t for t in result.tests if t.id == f"ipam/{name}")


def failed_actions(lab: LabCluster, tmp_path: Path, name: str) -> list[ActionResult]:
    """Run ipam/`name` alone (with the lab's faults set): the actions that did not pass."""
    result = run(lab, tmp_path, tests=(f"ipam/{name}",))
    return [a for a in result_of(result, name).actions if a.status is not Status.PASS]


def test_allocation_release_scale_and_exhaustion_behave(lab: LabCluster, tmp_path: Path) -> None:
    result = run(lab, tmp_path)
    statuses = {t.name: t.status for t in result.tests if t.suite == "ipam"}
    assert statuses == {
        "allocate": Status.PASS,
        "release": Status.PASS,
        "scale": Status.PASS,
        "exhaustion": Status.PASS,
        "statefulset": Status.SKIP,
    }, report.table(result)
    assert "enableStatefulSet is off" in result_of(result, "statefulset").reason
    scale = {a.action: a for a in result_of(result, "scale").actions}
    assert scale["wait for 8 address(es)"].data["seconds"] > 0 and scale["wait for 8 release(s)"].data["seconds"] >= 0
    assert scale["no address shared"].detail == "8 distinct addresses for 8 pods"
    exhausted = {a.action: a for a in result_of(result, "exhaustion").actions}
    assert "all IP addresses used out" in exhausted["one pod too many stays pending"].detail
    release = {a.action: a for a in result_of(result, "release").actions}
    assert release["same address again"].status is Status.PASS
    assert all(a.status is Status.PASS for t in result.tests for a in t.actions if a.action == "audit after")


def test_ip_not_released_is_caught(lab: LabCluster, tmp_path: Path) -> None:
    """Upstream 4982: an address not released when its pod goes."""
    lab.faults.leak_on_delete = {"release-a"}
    failed = failed_actions(lab, tmp_path, "release")
    assert [a.action for a in failed] == ["wait for 1 release(s)"]
    assert "1 address(es) still allocated (198.18.0.170)" in failed[0].detail


def test_record_without_endpoint_is_caught(lab: LabCluster, tmp_path: Path) -> None:
    """Upstream 2517: pool records without a SpiderEndpoint after an agent restart."""
    lab.faults.drop_endpoints = True
    failed = failed_actions(lab, tmp_path, "allocate")
    assert [a.action for a in failed] == ["check allocation"]
    assert "SpiderEndpoint" in failed[0].detail and "is missing" in failed[0].detail


def test_same_ip_to_two_pods_is_caught(lab: LabCluster, tmp_path: Path) -> None:
    """Upstream 1187: the same address handed to two pods."""
    lab.faults.duplicate_ip_for = {"scale-5"}
    failed = failed_actions(lab, tmp_path, "scale")
    assert [a.action for a in failed] == ["no address shared"]
    assert "198.18.0.160 given to scale-0, scale-5" in failed[0].detail


def test_without_free_addresses_the_suite_skips_and_touches_no_pool(lab: LabCluster, tmp_path: Path) -> None:
    before = {k: v["status"]["allocatedIPCount"] for k, v in lab.objects.items() if k[0] == "SpiderIPPool"}
    result = run(lab, tmp_path, ipam_range=None, tests=("ipam/allocate", "ipam/scale"))
    assert_nothing_left(lab)  # the run's own test pods have gone
    for name in ("allocate", "scale"):
        assert result_of(result, name).status is Status.SKIP and "--ipam-range" in result_of(result, name).reason
    assert before == {k: v["status"]["allocatedIPCount"] for k, v in lab.objects.items() if k[0] == "SpiderIPPool"}


def test_with_a_users_pool_exhaustion_is_not_attempted(lab: LabCluster, tmp_path: Path) -> None:
    result = run(lab, tmp_path, ipam_range=None, pool="lab-general", tests=("ipam/allocate", "ipam/exhaustion"))
    assert result_of(result, "allocate").status is Status.PASS, report.table(result)
    assert result_of(result, "exhaustion").status is Status.SKIP
    assert lab.get("SpiderIPPool", "lab-general") is not None  # the user's pool stays


IPAM_FAULTS: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("stale-count", {"stale_count": True}, "allocate", "check allocation", "allocatedIPCount is 0, expected 1"),
    ("other-uid", {"wrong_uid_for": {"allocate-0"}}, "allocate", "check allocation", "not uid"),
    (  # the address is gone from allocatedIPs, the count still has it: not released yet
        "stale-count-on-release",
        {"stale_count_on_release": True},
        "release",
        "wait for 1 release(s)",
        "allocatedIPCount is 1, was 0 before the test",
    ),
    (
        "runs-over-capacity",
        {"overcommit_for": {"exhaustion-extra"}},
        "exhaustion",
        "one pod too many stays pending",
        "exhaustion-extra is running although the pool is full",
    ),
]


@pytest.mark.parametrize(("name", "faults", "test", "action", "detail"), IPAM_FAULTS, ids=[f[0] for f in IPAM_FAULTS])
def test_each_ipam_promise_is_checked(
    lab: LabCluster, tmp_path: Path, name: str, faults: dict[str, Any], test: str, action: str, detail: str
) -> None:
    """Spiderpool's count, the pod UID of a record, and a full pool: a broken one fails the very check."""
    for key, value in faults.items():
        setattr(lab.faults, key, value)
    result = run(lab, tmp_path, tests=(f"ipam/{test}",))
    failed = [a for a in result_of(result, test).actions if a.status is not Status.PASS]
    assert [a.action for a in failed] == [action], report.table(result)
    assert detail in failed[0].detail


def _ends(lab: LabCluster, namespace: str) -> None:
    """The pod's container exits before it is ready: the pod is Failed, and the kubelet starts it no more."""
    pod = lab.pods[(namespace, "allocate-0")].obj
    pod["status"] = {"phase": "Failed", "reason": "Error"}
    lab.store.put(pod)
    raise RuntimeError("the container exited")


def test_a_pod_that_never_gets_its_address_fails_the_wait(lab: LabCluster, tmp_path: Path) -> None:
    """A pod of the suite without its address is what the suite checks: the wait FAILs (as its poll did before
    the steps were written in order), it is no setup ERROR, and the test's pool is still removed (`fresh`)."""
    lab.faults.before_ready["allocate-0"] = _ends
    result = run(lab, tmp_path, tests=("ipam/allocate",), pod_ready_timeout=3)
    allocate = result_of(result, "allocate")
    assert allocate.status is Status.FAIL, report.table(result)
    failed = allocate.actions[-1]
    assert (failed.action, failed.status) == ("wait for 1 address(es)", Status.FAIL)
    assert failed.detail == "addresses: allocate-0 has no address yet after 3s"
    assert set(failed.data) == {"seconds", "per_pod_seconds"} and failed.data["per_pod_seconds"] == []


@pytest.fixture
def stateful_set_ips(lab: LabCluster) -> Iterator[None]:
    """spiderpool-conf with enableStatefulSet: true (the chart's ipam.enableStatefulSet), as the double reads it."""
    lab.ipam.configure(enable_stateful_set=True)
    yield
    lab.ipam.configure(enable_stateful_set=False)


STATEFULSET_STEPS = [
    "create pool",
    "read pool",
    "create StatefulSet",
    "wait for 1 address(es)",
    "delete 1 pod(s)",
    "same address after restart",
    "delete StatefulSet",
    "wait for 1 release(s)",
    "audit after",
    "delete pool",
]


@pytest.mark.usefixtures("stateful_set_ips")
def test_statefulset_pod_keeps_its_address(lab: LabCluster, tmp_path: Path) -> None:
    """Spiderpool with enableStatefulSet: the pod recreated under its name (a new UID) gets its address back, and
    the address is released with the StatefulSet (`fresh`: nothing of the run is left)."""
    result = run(lab, tmp_path, tests=("ipam/statefulset",))
    sts = result_of(result, "statefulset")
    assert sts.status is Status.PASS, report.table(result)
    assert [a.action for a in sts.actions] == STATEFULSET_STEPS
    actions = {a.action: a for a in sts.actions}
    first = actions["wait for 1 address(es)"].detail.rpartition(": ")[2]
    assert addresses.contains([IPAM_RANGE], first)  # of the test's own pool
    assert actions["same address after restart"].detail == f"kept {first} across the restart (was {first})"


@pytest.mark.usefixtures("stateful_set_ips")
def test_the_audit_after_a_statefulset_waits_for_its_address_to_be_released(lab: LabCluster, tmp_path: Path) -> None:
    """The address is released when the kubelet tears the pod's sandbox down (CNI DEL), while its set and the pod
    go; the audit's three reads (pools, endpoints, pods) can fall in that moment, which the double stretches (the
    sandbox torn down after the object went). Before, the audit ran at once and reported a leak there."""
    lab.faults.teardown_delay = 1.5
    result = run(lab, tmp_path, tests=("ipam/statefulset",))
    assert result_of(result, "statefulset").status is Status.PASS, report.table(result)


@pytest.mark.usefixtures("stateful_set_ips")
def test_statefulset_pod_given_a_new_address_is_caught(lab: LabCluster, tmp_path: Path) -> None:
    """A Spiderpool that addresses the recreated pod anew fails the very step. It runs on the user's pool
    (--pool): the test's own pool has one address, where a new one cannot be given."""
    lab.faults.readdress_stateful = True
    result = run(lab, tmp_path, ipam_range=None, pool="lab-general", tests=("ipam/statefulset",))
    failed = [a for a in result_of(result, "statefulset").actions if a.status is not Status.PASS]
    assert [a.action for a in failed] == ["same address after restart"], report.table(result)
    came_back = re.fullmatch(r"sv-\S+-sts-0 came back with (\S+), was (\S+)", failed[0].detail)
    assert came_back, failed[0].detail
    new, old = came_back.groups()
    assert new != old and all(addresses.contains(["198.18.0.100-198.18.0.149"], ip) for ip in (new, old))


def test_a_pool_whose_create_lands_after_ctrl_c_is_removed(
    lab: LabCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the suite's pool create is in flight, the create landing after the run gave up on it: its
    removal was registered before the create and waits for it (before: registered after the create returned, and
    the pool stayed; `fresh` checks none is left)."""
    lab.faults.slow[("create", "SpiderIPPool")] = 4.0  # beyond the run's grace for a call in flight (2 s)
    create = lab.create

    def interrupted(obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == "SpiderIPPool":
            os.kill(os.getpid(), signal.SIGINT)  # the main thread takes it; this call goes on, as the server's would
        return create(obj)

    monkeypatch.setattr(lab, "create", interrupted)
    result = run(lab, tmp_path, tests=("ipam/allocate",), cleanup_timeout=30)
    assert result.interrupted
    (pool,) = [line for line in result.cleanup if line.startswith("removed SpiderIPPool sv-")]
    assert lab.get("SpiderIPPool", pool.split()[-1]) is None

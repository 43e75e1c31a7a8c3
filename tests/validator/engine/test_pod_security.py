"""Every pod the validator creates is admitted by Pod Security Admission at the level its namespace enforces, and
that level is the least the selected tests need (tests/upstream/pod_security.py holds PSA's baseline rule).

The cluster enforces baseline wherever a namespace says nothing (bootstrap/admission-configuration.yaml), and the
run labels its namespace itself: a pod that level refuses never starts, whatever the lab lets through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from spider_validate import cli
from spider_validate.cluster.api import ApiError
from spider_validate.engine import manifests
from spider_validate.engine.params import Parameters
from spider_validate.suites import all_tests

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left
from tests.upstream import ping, pod_security

TESTS = {t.id: t for t in all_tests()}


def printed(*args: str) -> list[dict[str, Any]]:
    out = CliRunner().invoke(cli.main, ["manifests", "--nodes", "a,b", "--apps", "1", *args])
    assert out.exit_code == 0, out.output
    return list(yaml.safe_load_all(out.output))


def pods(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods, and the pods a StatefulSet would make (its template)."""
    found = [o for o in objs if o["kind"] == "Pod"]
    found += [
        {"metadata": o["spec"]["template"]["metadata"], "spec": o["spec"]["template"]["spec"]}
        for o in objs
        if o["kind"] == "StatefulSet"
    ]
    return found


@pytest.mark.parametrize("test_id", [None, *(t for t in TESTS if TESTS[t].objects)])
def test_every_pod_is_admitted_at_the_namespaces_level(test_id: str | None) -> None:
    objs = printed(*(["--test", f"^{test_id}$"] if test_id else []))
    ns = objs[0]
    assert ns["kind"] == "Namespace"
    for pod in pods(objs):
        assert pod_security.admitted(ns, pod) == [], pod["metadata"]["name"]


@pytest.mark.parametrize("test_id", [t for t in TESTS if TESTS[t].objects])
def test_a_test_asks_for_privileged_only_when_baseline_refuses_its_pods(test_id: str) -> None:
    """The declared level is the least that admits the test's pods: never privileged for nothing."""
    objs = printed("--test", f"^{test_id}$")
    own = [
        p for p in pods(objs) if p["metadata"]["labels"].get("spider-validate/role") not in {"server", "client", "app"}
    ]
    assert own, "the test declares objects but none came out"
    refused = [v for p in own for v in pod_security.baseline_violations(p["spec"])]
    level = objs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    assert level == TESTS[test_id].pod_security
    assert (level == "privileged") == bool(refused), refused


def test_the_run_namespace_is_baseline_without_a_test_that_needs_more() -> None:
    objs = printed("--test", "connectivity|apps|ipam")
    assert objs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_ping_works_in_every_pod_without_net_raw_on_containerd_1_7() -> None:
    """Clients ping as root with every capability dropped: the pod's ping_group_range must hold gid 0."""
    for pod in pods(printed("--test", "ipam|rdma")):
        container = pod["spec"]["containers"][0]
        assert "NET_RAW" not in (container["securityContext"]["capabilities"].get("add") or [])
        assert ping.ping_works(pod["spec"], container, ping.KERNEL_DEFAULT_RANGE), pod["metadata"]["name"]


def test_the_model_refuses_what_psa_refuses() -> None:
    """The model itself can fail: NET_RAW, IPC_LOCK, hostNetwork and an unsafe sysctl are each refused."""
    base: dict[str, Any] = {"containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["CHOWN"]}}}]}
    assert pod_security.baseline_violations(base) == []
    for cap in ("NET_RAW", "IPC_LOCK"):
        spec = {"containers": [{"name": "c", "securityContext": {"capabilities": {"add": [cap]}}}]}
        assert pod_security.baseline_violations(spec) == [f"non-default capabilities: container c adds {cap}"]
    assert pod_security.baseline_violations({"hostNetwork": True}) == ["host namespaces: hostNetwork"]
    unsafe = {"securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}}
    assert pod_security.baseline_violations(unsafe) == ["forbidden sysctls: net.core.somaxconn"]
    privileged = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
    assert pod_security.admitted(privileged, {"spec": {"hostNetwork": True}}) == []


# -- on the namespace double: the API refuses what PSA refuses, and an exec runs with the container's privileges --

LAB_NS = "psa-check"


def _lab_client(lab: LabCluster, name: str, strip: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    net = manifests.Network("kube-system", "macvlan-eth0", "default")
    pod = manifests.pod(name, LAB_NS, "psa", "client", lab.node_names[0], "client", net, Parameters())
    strip(pod)
    return pod


def _running(lab: LabCluster, names: list[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        phases = {p["metadata"]["name"]: p["status"]["phase"] for p in lab.list("Pod", LAB_NS)}
        if all(phases.get(n) == "Running" for n in names):
            return
        time.sleep(0.05)
    raise AssertionError(f"not running: {names}")


def _old_shape(pod: dict[str, Any]) -> None:
    """The pod as the validator made it before: NET_RAW added, no ping_group_range."""
    pod["spec"].pop("securityContext")
    pod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = ["NET_RAW"]


@pytest.fixture
def psa_namespace(lab: LabCluster) -> Iterator[None]:
    yield
    lab.delete("Namespace", LAB_NS)
    assert_nothing_left(lab, LAB_NS)


@pytest.mark.usefixtures("psa_namespace")
def test_lab_refuses_net_raw_under_baseline_and_ping_needs_the_sysctl(lab: LabCluster) -> None:
    lab.create(manifests.namespace(LAB_NS, "psa"))  # baseline, as every run without RDMA or host tests
    with pytest.raises(ApiError) as refused:
        lab.create(_lab_client(lab, "old", _old_shape))
    assert refused.value.status == 403
    assert "non-default capabilities: container client adds NET_RAW" in str(refused.value)

    def no_sysctl(pod: dict[str, Any]) -> None:
        pod["spec"].pop("securityContext")

    lab.create(_lab_client(lab, "now", lambda pod: None))
    lab.create(_lab_client(lab, "bare", no_sysctl))
    _running(lab, ["now", "bare"])
    target = lab.node_ip[lab.node_names[0]]
    assert lab.exec(LAB_NS, "now", ["ping", "-c1", "-W2", target], 10).exit_code == 0
    bare = lab.exec(LAB_NS, "bare", ["ping", "-c1", "-W2", target], 10)
    assert bare.exit_code != 0, "root without NET_RAW and without ping_group_range must not ping"

"""spider-validate against the namespace double: the suites pass unchanged, and injected faults are reported
correctly with nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from spider_validate import names
from spider_validate.engine import manifests
from spider_validate.engine.model import ActionResult, RunResult, Status
from spider_validate.engine.params import EXPIRES, Parameters
from spider_validate.engine.runner import Runner
from spider_validate.report import formats as report
from spider_validate.suites import all_tests

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left, invoke


@pytest.fixture(autouse=True)
def fresh(lab: LabCluster) -> Iterator[None]:
    yield
    assert_nothing_left(lab)


def params(tmp_path: Path, **overrides: Any) -> Parameters:
    base: dict[str, Any] = {
        "probe_timeout": 2,
        "retry_delay": 0.1,
        "stuck_after": 8,
        "pod_ready_timeout": 40,
        "diagnostics_dir": str(tmp_path),
        "timeout": 120,
    }
    return Parameters(**(base | overrides))


def run(lab: LabCluster, tmp_path: Path, **overrides: Any) -> RunResult:
    return Runner(lab, params(tmp_path, **overrides), all_tests()).run()


def actions(result: RunResult, test_id: str) -> list[ActionResult]:
    return next(t for t in result.tests if t.id == test_id).actions


def status(result: RunResult, test_id: str) -> Status:
    return next(t for t in result.tests if t.id == test_id).status


def test_healthy_cluster_passes_every_suite(lab: LabCluster, tmp_path: Path) -> None:
    result = run(lab, tmp_path, apps=2, tests=("!ipam/", "!rdma/", "!perf/"))  # those suites have tests of their own
    assert result.passed, report.table(result)
    assert {t.id: t.status for t in result.tests} == {
        t.id: Status.PASS for t in all_tests() if t.suite not in {"ipam", "rdma", "perf"}
    }
    matrix = {(c["source"], c["destination"], c["probe"]) for c in report.matrix(result)}
    for client in ("client-0", "client-1"):
        for server in ("server-0", "server-1"):
            assert {(client, server, "ping"), (client, server, "http")} <= matrix  # same and other node
    assert ("client-0", "service/echo", "http") in matrix and ("client-0", "node/lab-node-0", "ping") in matrix
    assert not result.diagnostics and result.cleanup == [f"removed namespace {result.namespace}"]
    junit = ET.fromstring(report.junit(result))
    assert sum(int(s.get("tests", 0)) for s in junit.iter("testsuite")) == len(result.tests) == 12
    assert json.loads(report.to_json(result))["passed"] is True


def break_path(rule: str, pod: str = "client-0", when: str = "client-1") -> Any:
    """Install an nftables rule in `pod` (placeholders {server-1}, {lab-node-0} etc. become IPs) once the run's pods
    are up."""

    def hook(lab: LabCluster, namespace: str) -> None:
        ips = {name: p.ip for (ns, name), p in lab.pods.items() if ns == namespace} | lab.node_ip
        lab.nft_in_pod(namespace, pod, rule.format(**ips))

    return {when: hook}


def test_packet_loss_on_one_path_fails_that_path_only(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.before_ready = break_path("ip daddr {server-1} meta l4proto icmp numgen inc mod 2 0 drop")
    result = run(lab, tmp_path, tests=("connectivity/pod-to-pod",))
    failed = [a for t in result.tests for a in t.actions if a.status is not Status.PASS]
    assert [(a.source, a.destination, a.probe) for a in failed] == [("client-0", "server-1", "ping")]
    assert failed[0].detail.startswith("lossy path: ") and failed[0].attempts == 1  # a real failure: no retry
    assert not result.passed and Path(result.diagnostics, "summary.txt").exists()


def test_blackhole_on_one_path_is_reported_with_both_probes(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.before_ready = break_path("ip daddr {server-0} drop", pod="client-1")
    result = run(lab, tmp_path, tests=("connectivity/pod-to-pod-cross",))
    failed = {
        (a.source, a.destination, a.probe): a
        for a in actions(result, "connectivity/pod-to-pod-cross-node")
        if a.status is not Status.PASS
    }
    assert set(failed) == {("client-1", "server-0", "ping"), ("client-1", "server-0", "http")}
    assert failed[("client-1", "server-0", "ping")].detail.startswith("unreachable: 100% loss")
    assert "timed out" in failed[("client-1", "server-0", "http")].detail


def test_server_down(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.before_ready = {"client-1": lambda lab, ns: lab.stop_server(ns, "server-1")}
    result = run(lab, tmp_path, tests=("connectivity/pod-to-pod",))
    failed = [a for t in result.tests for a in t.actions if a.status is not Status.PASS]
    assert {(a.destination, a.probe) for a in failed} == {("server-1", "http")}
    assert all(a.detail.startswith("connection refused") for a in failed)
    pings = [a for t in result.tests for a in t.actions if a.probe == "ping" and a.destination == "server-1"]
    assert pings and all(a.status is Status.PASS for a in pings)  # the pod is there, its server is not


def test_app_answering_with_the_wrong_identity(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.before_ready = {"app-0-1": lambda lab, ns: lab.set_identity(ns, "app-0-1", "app-1-1")}
    result = run(lab, tmp_path, apps=2, tests=("apps/",))
    failed = [a for a in actions(result, "apps/http-identity") if a.status is not Status.PASS]
    assert len(failed) == 1 and failed[0].destination == "app-0/app-0-1"
    assert failed[0].detail == "answered as 'app-1-1', expected app-0-1"
    assert status(result, "apps/distinct-ips") is Status.PASS


def test_transient_api_errors_and_conflicts_are_absorbed(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.api = {
        ("create", "Pod"): [409, 429],
        ("create", "Namespace"): [500],
        ("list", "Pod"): [503],
        ("get", "Service"): [429],
    }
    lab.faults.drop_watch_after = 1
    result = run(lab, tmp_path, tests=("connectivity/pod-to-service",))
    assert result.passed, report.table(result)
    assert all(not codes for codes in lab.faults.api.values()), lab.faults.api  # every fault was hit
    assert lab.faults.drop_watch_after is None


def test_persistent_api_error_fails_setup_and_still_writes_junit(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.api = {("create", "Pod"): [500] * 10}
    junit = tmp_path / "junit.xml"
    outcome = invoke(lab, ["run", "--test", "connectivity", "--junit-file", str(junit)], tmp_path)
    assert outcome.exit_code == 1, outcome.output
    tree = ET.parse(junit)
    errors = [c for c in tree.iter("testcase") if c.find("error") is not None]
    assert errors and "setup failed: 500" in (errors[0].find("error").get("message") or "")  # type: ignore[union-attr]
    assert "setup failed: 500: injected 500 on create Pod" in outcome.output


def test_lost_exit_codes_are_recovered_or_retried(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.lose_exit_status = 3  # the status channel is lost, the marker on stdout is not
    lab.faults.lose_exit_code = 1  # both are lost: a transient failure, retried
    result = run(lab, tmp_path, tests=("connectivity/pod-to-pod-same",))
    assert result.passed, report.table(result)
    tries = [a.attempts for a in actions(result, "connectivity/pod-to-pod-same-node")]
    assert sorted(tries)[-1] == 2 and tries.count(1) == len(tries) - 1


def test_pod_stuck_pulling_its_image_is_reported_early(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.pull_fails = {"docker.io/nicolaka/netshoot:v0.14"}
    result = run(lab, tmp_path, tests=("connectivity",), pod_ready_timeout=300)
    assert "stuck in ImagePullBackOff (image docker.io/nicolaka/netshoot:v0.14)" in result.setup_error
    assert result.seconds < 30  # reported at once, not after the 300 s deadline
    assert all(t.status is Status.ERROR for t in result.tests if t.suite == "connectivity")


def test_full_pool_is_reported_with_spiderpools_event(lab: LabCluster, tmp_path: Path) -> None:
    pool = lab.objects[("SpiderIPPool", "", "lab-general")]
    saved = pool["spec"]["ips"]
    pool["spec"]["ips"] = ["198.18.0.100-198.18.0.102"]  # three addresses for four pods
    lab._refresh_pool("lab-general")
    try:
        result = run(lab, tmp_path, tests=("connectivity/pod-to-pod-same",))
    finally:
        pool["spec"]["ips"] = saved
        lab._refresh_pool("lab-general")
    assert "all IP addresses used out" in result.setup_error and "client-1" in result.setup_error


def test_a_network_discovery_cannot_find_fails_preflight_even_unselected(lab: LabCluster, tmp_path: Path) -> None:
    """Discovery runs before any test pod; preflight/network says why it found nothing, selected or not."""
    result = run(lab, tmp_path, network="kube-system/nope", tests=("connectivity/pod-to-node",))
    assert result.preflight_failed and not result.passed
    (network,) = [t for t in result.tests if t.id == "preflight/network"]
    assert network.status is Status.FAIL
    assert (
        network.actions[0].detail
        == "SpiderMultusConfig kube-system/nope not found (kubectl get spidermultusconfigs -A)"
    )
    assert status(result, "connectivity/pod-to-node") is Status.SKIP
    assert [t.id for t in result.tests if t.suite == "preflight"] == ["preflight/network"]  # nodes passed: not shown


@pytest.mark.parametrize(
    ("fault", "check", "status_"),
    [
        (("list", "SpiderMultusConfig", [503] * 10), "preflight/network", Status.ERROR),
        (("list", "Node", [403]), "preflight/nodes", Status.FAIL),
    ],
)
def test_an_api_error_in_discovery_fails_preflight(
    lab: LabCluster, tmp_path: Path, fault: tuple[str, str, list[int]], check: str, status_: Status
) -> None:
    """What discovery could not read is reported by the preflight check of that fact, as that check reported an
    API error before: ERROR when it is transient (retried first), FAIL otherwise; the rest is skipped."""
    verb, kind, codes = fault
    lab.faults.api = {(verb, kind): list(codes)}
    result = run(lab, tmp_path, tests=("connectivity/pod-to-node",))
    assert result.preflight_failed and not result.passed
    (failed,) = [t for t in result.tests if t.suite == "preflight"]
    assert failed.id == check and failed.status is status_
    assert failed.actions[0].detail == f"API error: {codes[0]}: injected {codes[0]} on {verb} {kind}"
    skipped = next(t for t in result.tests if t.id == "connectivity/pod-to-node")
    assert skipped.status is Status.SKIP and skipped.reason == "preflight failed: fix what it reports, then run again"


def test_a_transient_api_error_in_discovery_is_retried(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.api = {("list", "SpiderMultusConfig"): [503], ("list", "Node"): [429]}
    result = run(lab, tmp_path, tests=("connectivity/pod-to-node",))
    assert result.passed, report.table(result)
    assert all(not codes for codes in lab.faults.api.values()), lab.faults.api


def test_a_transient_api_error_in_preflight_networks_own_read_is_retried(lab: LabCluster, tmp_path: Path) -> None:
    """preflight/network reads the pools itself (discovery does not): a 503 there is retried, as every check's read
    is; only the error discovery already retried is reported as it is."""
    lab.faults.api = {("list", "SpiderIPPool"): [503]}
    result = run(lab, tmp_path, tests=("preflight/network", "connectivity/pod-to-node"))
    assert result.passed, report.table(result)
    assert status(result, "preflight/network") is Status.PASS
    assert lab.faults.api == {("list", "SpiderIPPool"): []}


@pytest.mark.parametrize(
    ("check", "unread"), [("preflight/network", ("list", "Node")), ("preflight/nodes", ("list", "SpiderMultusConfig"))]
)
def test_discovery_reads_only_what_the_selected_checks_need(
    lab: LabCluster, tmp_path: Path, check: str, unread: tuple[str, str]
) -> None:
    """A run of one fact's check reads that fact only, as that check alone read it before discovery was a phase:
    the other's API call is never made (its injected error stays unused)."""
    lab.faults.api = {unread: [403]}
    result = run(lab, tmp_path, tests=(check,))
    assert result.passed and [t.id for t in result.tests] == [check], report.table(result)
    assert lab.faults.api == {unread: [403]}


def test_discovery_needs_no_preflight_check_selected(lab: LabCluster, tmp_path: Path) -> None:
    """The facts come from discovery, whichever preflight checks the run selected (before, selecting one check
    that was not network or nodes left the run without a network: every other test skipped)."""
    result = run(lab, tmp_path, tests=("preflight/spiderpool-crds", "connectivity/pod-to-node"))
    assert not result.preflight_failed, report.table(result)
    assert {t.id: t.status for t in result.tests} == {
        "preflight/spiderpool-crds": Status.PASS,
        "connectivity/pod-to-node": Status.PASS,
    }


def test_preflight_failure_exits_3_with_what_to_fix(lab: LabCluster, tmp_path: Path) -> None:
    coordinator = lab.objects[("SpiderCoordinator", "", "default")]
    coordinator["status"]["phase"] = "NotReady"
    try:
        outcome = invoke(lab, ["run"], tmp_path)
    finally:
        coordinator["status"]["phase"] = "Synced"
    assert outcome.exit_code == 3
    assert "SpiderCoordinator default is NotReady (it blocks pod creation)" in outcome.output
    assert "preflight failed" in outcome.output


def test_ctrl_c_stops_the_run_and_cleans_up(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.before_ready = {"client-1": lambda lab, ns: os.kill(os.getpid(), signal.SIGINT)}
    result = run(lab, tmp_path)
    assert result.interrupted and not result.passed
    assert result.cleanup == [f"removed namespace {result.namespace}"]


def test_a_namespace_whose_create_lands_after_the_deadline_is_removed(lab: LabCluster, tmp_path: Path) -> None:
    """The run's deadline passes while the namespace's create is in flight: its removal was registered before the
    create, and waits for it to land (before: registered after it returned, when cleanup had already run)."""
    lab.faults.slow[("create", "Namespace")] = 5.0  # beyond the deadline (1 s) and the grace for a call in flight (2 s)
    result = run(lab, tmp_path, timeout=1, cleanup_timeout=30, tests=("connectivity/pod-to-node",))
    assert result.timed_out
    assert result.cleanup == [f"removed namespace {result.namespace}"]
    assert lab.get("Namespace", result.namespace) is None


def test_cleanup_leaves_runs_in_progress_alone_unless_all(lab: LabCluster) -> None:
    """Before: `cleanup` deleted every run's namespace, also that of a run still going."""
    going, over = "spider-validate-0101000000-aaaa", "spider-validate-0101000000-bbbb"
    for name, expires in ((going, time.time() + 600), (over, 1)):
        obj = manifests.namespace(name, name.removeprefix("spider-validate-"))
        obj["metadata"]["annotations"] = {EXPIRES: str(int(expires))}
        lab.create(obj)
    outcome = invoke(lab, ["cleanup"])
    assert outcome.exit_code == 0, outcome.output
    assert "removed Namespace spider-validate-0101000000-bbbb" in outcome.output
    assert "left Namespace spider-validate-0101000000-aaaa (run 0101000000-aaaa, in progress until" in outcome.output
    assert lab.get("Namespace", "spider-validate-0101000000-aaaa") is not None
    outcome = invoke(lab, ["cleanup", "--all"])
    assert "removed Namespace spider-validate-0101000000-aaaa" in outcome.output


def test_keep_leaves_the_namespace_and_cleanup_removes_it(lab: LabCluster, tmp_path: Path) -> None:
    result = run(lab, tmp_path, keep=True, tests=("connectivity/pod-to-node",))
    assert result.passed and result.cleanup == []
    assert lab.get("Namespace", result.namespace) is not None
    outcome = invoke(lab, ["cleanup"], tmp_path)  # until the run's deadline passes, it is left alone
    assert outcome.exit_code == 0 and f"left Namespace {result.namespace}" in outcome.output
    outcome = invoke(lab, ["cleanup", "--all"], tmp_path)
    assert outcome.exit_code == 0 and f"removed Namespace {result.namespace}" in outcome.output


def test_cli_run_json_output_and_exit_code(lab: LabCluster, tmp_path: Path) -> None:
    outcome = invoke(lab, ["run", "-o", "json", "--test", "preflight", "--test", "pod-to-node"], tmp_path)
    assert outcome.exit_code == 0, outcome.output
    data = json.loads(outcome.output[outcome.output.index("{") :])
    assert data["passed"] and data["counts"]["pass"] == 7


def test_run_timeout_stops_the_tests_and_still_cleans_up(lab: LabCluster, tmp_path: Path) -> None:
    # probes to server-1 hang for their timeout (30 s), far beyond the run's (4 s): only the run's timeout ends them,
    # however fast or slow the machine (with 3 s, the batched probes could end before the run's 4 s did)
    lab.faults.before_ready = break_path("ip daddr {server-1} drop")
    result = run(lab, tmp_path, timeout=4, probe_timeout=30, tests=("connectivity/pod-to-pod",))
    assert result.timed_out and not result.passed
    assert any("timeout (4s) expired" in t.reason for t in result.tests)
    assert result.cleanup == [f"removed namespace {result.namespace}"]


def test_a_slow_pod_without_a_warning_is_not_called_stuck(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.ipam_delay = 0.6  # four pods started one by one: the last one after well over stuck_after
    result = run(lab, tmp_path, stuck_after=1, tests=("connectivity/pod-to-node",))
    assert result.passed, result.setup_error


# -- tests that a deliberately broken copy of a check must fail ------------------------------------------------


def test_cli_end_to_end_to_a_failing_probe_exit_code_junit_and_json(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.before_ready = break_path("ip daddr {server-0} drop", pod="client-1")
    junit = tmp_path / "junit.xml"
    outcome = invoke(
        lab, ["run", "-o", "json", "--test", "pod-to-pod-cross", "--junit-file", str(junit)], tmp_path / "diag"
    )
    assert outcome.exit_code == 1, outcome.output
    data = json.loads(outcome.output[outcome.output.index("{") :])
    assert data["passed"] is False and data["counts"]["fail"] == 1
    (test,) = [t for t in data["tests"] if t["name"] == "pod-to-pod-cross-node"]
    failing = {
        (a["source"], a["destination"], a["probe"]): a["status"] for a in test["actions"] if a["status"] != "pass"
    }
    assert failing == {("client-1", "server-0", "ping"): "fail", ("client-1", "server-0", "http"): "error"}
    cases = {c.get("name"): c for c in ET.parse(junit).iter("testcase")}
    failure = cases["pod-to-pod-cross-node"].find("failure")
    assert failure is not None and "ping client-1 -> server-0: unreachable: 100% loss" in (failure.get("message") or "")
    assert all(c.find("failure") is None for name, c in cases.items() if name != "pod-to-pod-cross-node")
    assert Path(data["diagnostics"], "summary.txt").exists()


def test_a_skipped_test_is_skipped_in_junit_never_passed(lab: LabCluster, tmp_path: Path) -> None:
    """CI reads the JUnit file: a test that did not run (the double has no RDMA) is a testcase with `<skipped>` and
    its reason, counted in the suite's `skipped`; a testcase without a child would count as passed."""
    junit = tmp_path / "junit.xml"
    outcome = invoke(lab, ["run", "--test", "rdma/", "--junit-file", str(junit)], tmp_path / "diag")
    assert outcome.exit_code == 0, outcome.output
    (suite,) = [s for s in ET.parse(junit).iter("testsuite") if s.get("name") == "spider-validate.rdma"]
    cases = list(suite.iter("testcase"))
    assert len(cases) == len([t for t in all_tests() if t.suite == "rdma"]) and int(suite.get("skipped", 0)) == len(
        cases
    )
    for case in cases:
        skipped = case.find("skipped")
        assert skipped is not None, ET.tostring(case)
        assert "no RDMA resource on the test nodes" in (skipped.get("message") or "")


def test_an_error_is_not_a_pass_in_the_exit_code_or_the_json(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.lose_exit_code = 1000  # every probe's exit code is lost: retried, then an error, never a pass
    outcome = invoke(lab, ["run", "-o", "json", "--test", "connectivity/pod-to-node"], tmp_path / "diag")
    assert outcome.exit_code == 1, outcome.output
    data = json.loads(outcome.stdout)
    (test,) = [t for t in data["tests"] if t["name"] == "pod-to-node"]
    assert test["status"] == "error" and data["counts"]["error"] == 1 and data["passed"] is False
    lab.faults.lose_exit_code = 0


def test_a_hostile_ping_output_fails_its_probe_and_the_run_still_reports_and_cleans_up(
    lab: LabCluster, tmp_path: Path
) -> None:
    """Before: `1.2.3% packet loss` raised ValueError in parse_ping and the run ended in a traceback."""
    lab.faults.garble = lambda out: out.replace("% packet loss", ".2.3% packet loss")
    outcome = invoke(lab, ["run", "-o", "json", "--test", "connectivity/pod-to-node"], tmp_path / "diag")
    assert outcome.exit_code == 1, outcome.output
    data = json.loads(outcome.stdout)
    (test,) = [t for t in data["tests"] if t["name"] == "pod-to-node"]
    for action in test["actions"]:
        assert action["status"] == "fail" and action["detail"].startswith("could not read the output of ping")
        assert "0.2.3% packet loss" in action["detail"] and "0.2.3% packet loss" in action["data"]["exec"]["stdout"]
    assert data["cleanup"] == [f"removed namespace {data['namespace']}"]


def test_pod_to_node_pings_the_node_not_the_pod_itself(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.before_ready = break_path("ip daddr {lab-node-0} meta l4proto icmp drop", pod="client-0")
    result = run(lab, tmp_path, tests=("connectivity/pod-to-node",))
    by_source = {a.source: a for a in actions(result, "connectivity/pod-to-node")}
    assert by_source["client-0"].status is Status.FAIL and by_source["client-0"].destination == "node/lab-node-0"
    assert by_source["client-1"].status is Status.PASS


def test_http_to_a_pod_checks_which_pod_answered(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.before_ready = {"client-1": lambda lab, ns: lab.set_identity(ns, "server-1", "server-0")}
    result = run(lab, tmp_path, tests=("connectivity/pod-to-pod",))
    failed = {(a.source, a.destination) for t in result.tests for a in t.actions if a.status is not Status.PASS}
    assert failed == {("client-0", "server-1"), ("client-1", "server-1")}
    detail = next(a.detail for t in result.tests for a in t.actions if a.status is not Status.PASS)
    assert detail == "answered as 'server-0', expected server-1"


def test_the_services_answer_must_come_from_one_of_its_backends(lab: LabCluster, tmp_path: Path) -> None:
    def impostors(lab: LabCluster, ns: str) -> None:
        for server in ("server-0", "server-1"):
            lab.set_identity(ns, server, "intruder")

    lab.faults.before_ready = {"client-1": impostors}
    result = run(lab, tmp_path, tests=("connectivity/pod-to-service",))
    details = {a.detail for a in actions(result, "connectivity/pod-to-service")}
    assert details == {"answered as 'intruder', expected one of ['server-0', 'server-1']"}


def test_an_http_4xx_is_a_failure(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.before_ready = {"client-1": lambda lab, ns: lab.serve_404(ns, "server-1")}
    result = run(lab, tmp_path, tests=("connectivity/pod-to-pod-same-node",))
    failed = [a for a in actions(result, "connectivity/pod-to-pod-same-node") if a.status is not Status.PASS]
    assert [(a.source, a.destination, a.detail) for a in failed] == [("client-1", "server-1", "HTTP 404")]


# -- the apps suite on apps deployed the chart's way: labelled, each asking for pools of its own ----------------

SAMPLE_NS = "sample-apps"


def deploy_chart_apps(lab: LabCluster, pools: dict[str, list[str]], annotate: bool = True) -> None:
    """Two apps as the chart deploys them (label spiderpool-rdma/app, one pod per node, an own pool each)."""
    net = manifests.Network("kube-system", "macvlan-eth0", "default")
    for app, ips in pools.items():
        lab.add_pool(f"{app}-pool", ips, labels={"test": "chart-apps"})
        for i, node in enumerate(lab.node_names):
            pod = manifests.pod(
                f"{app}-{i}", SAMPLE_NS, "chart", "app", node, "server", net, Parameters(),
                app=app, pools=(f"{app}-pool",) if annotate else (),
            )  # fmt: skip
            pod["metadata"]["labels"] = {names.APP_LABEL: app}
            lab.create(pod)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(p["status"]["phase"] != "Running" for p in lab.list("Pod", SAMPLE_NS)):
        time.sleep(0.05)


@pytest.fixture
def chart_apps(lab: LabCluster) -> Iterator[Callable[..., None]]:
    yield partial(deploy_chart_apps, lab)
    lab.delete("Namespace", SAMPLE_NS)  # its pods and events go with it
    assert_nothing_left(lab, SAMPLE_NS)
    for pool in lab.list("SpiderIPPool", label_selector="test=chart-apps"):
        lab.delete("SpiderIPPool", pool["metadata"]["name"])


OWN_POOLS = {"web": ["198.18.0.200-198.18.0.203"], "api": ["198.18.0.210-198.18.0.213"]}
CHART_APP_CASES: list[tuple[dict[str, Any], str]] = [
    ({}, ""),  # healthy: both checks run and pass
    (  # pools sharing addresses, which Spiderpool's webhook refuses: the second stored past it
        {
            "pools": {"web": ["198.18.0.200-198.18.0.203"], "api": ["198.18.0.200-198.18.0.203"]},
            "faults": {"unchecked_pools": {"api-pool"}},
        },
        "198.18.0.200, also used by",
    ),
    ({"faults": {"ignore_pool_for": {"api-1"}}}, "api-1's 198.18.0.100 is in none of its pools ['api-pool']"),
    ({"annotate": False}, "web-0 asks for no pool of its own"),
]


@pytest.mark.parametrize(("case", "problem"), CHART_APP_CASES, ids=["healthy", "shared-ip", "foreign-pool", "no-pool"])
def test_chart_apps_have_distinct_ips_from_their_own_pools(
    lab: LabCluster, tmp_path: Path, chart_apps: Callable[..., None], case: dict[str, Any], problem: str
) -> None:
    for name, value in case.get("faults", {}).items():
        setattr(lab.faults, name, value)
    chart_apps(case.get("pools", OWN_POOLS), annotate=case.get("annotate", True))
    result = run(lab, tmp_path, tests=("apps/",))
    distinct = next(t for t in result.tests if t.id == "apps/distinct-ips")
    if not problem:
        assert distinct.status is Status.PASS and status(result, "apps/http-identity") is Status.PASS
        assert {a.destination for a in actions(result, "apps/http-identity")} == {
            "web/web-0", "web/web-1", "api/api-0", "api/api-1"
        }  # fmt: skip
        return
    assert distinct.status is Status.FAIL
    assert any(problem in a.detail for a in distinct.actions if a.status is Status.FAIL), report.table(result)


def test_results_are_printed_even_when_the_report_cannot_be_written_after_the_run(
    lab: LabCluster, tmp_path: Path
) -> None:
    """Checked before the run, the report's directory vanishes during it: the table is printed first, exit 2."""
    reports = tmp_path / "reports"
    reports.mkdir()
    lab.faults.before_ready = {"client-1": lambda lab, ns: reports.rmdir()}
    outcome = invoke(
        lab, ["run", "--test", "pod-to-node", "--junit-file", str(reports / "junit.xml")], tmp_path / "diag"
    )
    assert outcome.exit_code == 2, outcome.output
    assert "connectivity/pod-to-node" in outcome.output and "passed" in outcome.output  # the table
    assert f"the results above could not be written to {reports / 'junit.xml'}" in outcome.output

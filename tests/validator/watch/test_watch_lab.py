"""`spider-validate watch` against the namespace double: its metrics, scraped over HTTP on 127.0.0.1, move the right
way within one interval of each injected fault (a blackholed path, a leak, a filling pool, a vanished probe pod,
an API error, a node that stops being ready), and SIGTERM removes everything it created."""

from __future__ import annotations

import copy
import json
import math
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from spider_validate.cluster.api import Cluster
from spider_validate.engine import manifests
from spider_validate.engine.params import Parameters
from spider_validate.watch.loop import Watcher, WatchOptions, serve

from tests import chart
from tests.charts.test_chart_rbac import RBAC_KINDS
from tests.charts.test_chart_watch import IMAGE
from tests.lab import netns
from tests.lab.cluster import LabCluster
from tests.lab.fixtures import api_server, assert_nothing_left, command
from tests.upstream.rbac import Authorizer, service_account
from tests.validator.cluster.authorized import Authorized

INTERVAL = 2.0
NS = "spider-validate-watch-t"
FILL = ["198.18.0.240-198.18.0.249"]  # outside lab-general (198.18.0.100-149) and the other tests' pools
LEAK = ["198.18.0.250-198.18.0.253"]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """Every sample of /metrics, parsed with prometheus_client's own parser of the text format."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return parse(reply.read().decode())


def scrape_or_nothing(port: int) -> Samples:
    """A scrape, or no samples while the server is not up yet."""
    try:
        return scrape(port)
    except OSError:
        return {}


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture(scope="module")
def chart_rbac(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The chart's watch roles, rendered for the watch namespace of these tests."""
    chart_dir = chart.packaged_copy(tmp_path_factory.mktemp("chart"))
    values = {"watch": {"enabled": True, "image": IMAGE, "namespace": NS}}
    rendered = chart.helm_template(chart_dir, chart.profile_values("aws-softroce"), values)
    return [r.obj for r in rendered if "/templates/watch-" in r.source and r.obj["kind"] in RBAC_KINDS]


class Running:
    """A watcher serving on a free port in a thread, under the chart's RBAC, and the scrapes of its cycles."""

    def __init__(self, lab: LabCluster, port: int, roles: list[dict[str, Any]]) -> None:
        params = Parameters(probe_timeout=2, retry_delay=0.1, retries=1)
        (account,) = [s["name"] for r in roles if r["kind"] == "RoleBinding" for s in r["subjects"]]
        self.cluster = Authorized(lab, Authorizer(roles), service_account(NS, account))
        self.watcher = Watcher(cast(Cluster, self.cluster), params, WatchOptions(NS, INTERVAL, forecast_window=60))
        self.port = port
        self.thread = threading.Thread(target=serve, args=(self.watcher, "127.0.0.1", port), daemon=True)
        self.thread.start()

    def cycles(self, samples: Samples) -> float:
        return sum(value(samples, "spider_validate_watch_cycles_total", result=r) or 0 for r in ("ok", "error"))

    def after_next_cycle(self) -> Samples:
        """The scrape after the first cycle that began after this call ended: within one interval of a fault."""
        asked = time.time()
        deadline = time.monotonic() + 3 * INTERVAL + 20
        while time.monotonic() < deadline:
            with_retry = self._scrape()
            end = value(with_retry, "spider_validate_watch_last_cycle_timestamp_seconds") or 0
            took = value(with_retry, "spider_validate_watch_last_cycle_duration_seconds") or 0
            if end - took >= asked:
                assert end - asked <= INTERVAL + took + 0.5, "the fault was seen later than one interval"
                return with_retry
            time.sleep(0.1)
        raise AssertionError("no cycle completed")

    def _scrape(self) -> Samples:
        return scrape_or_nothing(self.port)

    def stop(self) -> None:
        self.watcher.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def running(lab: LabCluster, chart_rbac: list[dict[str, Any]]) -> Iterator[Running]:
    lab.add_pool("watch-fill", FILL, node="lab-node-0")
    lab.add_pool("watch-leak", LEAK, node="lab-node-0")
    lab.create(manifests.namespace(NS, "chart"))  # as in the chart: the watch's namespace exists
    # the answer to the first probe pod's create is lost (409): the watch gets it to see it is its own
    lab.faults.api[("create", "Pod")] = [409]
    run = Running(lab, free_port(), chart_rbac)
    try:
        yield run
    finally:
        run.stop()
        for name in ("watch-fill", "watch-leak"):
            lab.delete("SpiderIPPool", name)
        lab.delete("Namespace", NS)
        assert_nothing_left(lab, run_prefix=NS)


def workload(lab: LabCluster, name: str, pool: str) -> None:
    """A pod of another namespace than the watch's, drawing from `pool` (Spiderpool's pool annotation)."""
    net = manifests.Network("kube-system", "macvlan-eth0", "default")
    obj = manifests.pod(name, f"{NS}-work", "work", "client", "lab-node-0", "img", net, Parameters(), pools=(pool,))
    lab.create(obj)


def wait(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def running_pod(lab: LabCluster, name: str) -> Callable[[], bool]:
    return lambda: (lab.get("Pod", name, f"{NS}-work") or {}).get("status", {}).get("phase") == "Running"


def set_ready(lab: LabCluster, node: str, ready: bool) -> None:
    obj = copy.deepcopy(lab.get("Node", node))
    assert obj is not None
    obj["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    lab._put(obj)


def test_metrics_move_the_right_way_within_one_interval_of_each_fault(lab: LabCluster, running: Running) -> None:
    pair01, pair10 = (
        {"source_node": "lab-node-0", "destination_node": "lab-node-1"},
        {
            "source_node": "lab-node-1",
            "destination_node": "lab-node-0",
        },
    )
    # healthy: both probe pods up, both directions answer, the pools as the double reports them, no finding
    wait(lambda: value(running._scrape(), "spider_validate_probe_success", **pair10) == 1, 40)
    s = running.after_next_cycle()
    assert value(s, "spider_validate_watch_probe_pods_ready") == 2 and value(s, "spider_validate_watch_nodes") == 2
    assert value(s, "spider_validate_probe_success", **pair01) == 1
    assert 0 < (value(s, "spider_validate_probe_rtt_seconds", **pair01) or 0) < 0.1
    assert value(s, "spider_validate_watch_last_cycle_success") == 1
    assert value(s, "spider_validate_pool_addresses", pool="watch-fill") == 10
    assert value(s, "spider_validate_pool_free_addresses", pool="watch-fill") == 10
    assert value(s, "spider_validate_pool_exhaustion_forecast_seconds", pool="watch-fill") == math.inf
    assert not [k for k in s if k[0] == "spider_validate_audit_findings"]
    created = value(s, "spider_validate_watch_probe_pods_created_total")
    assert created == 2

    # a blackholed path: that direction only goes to 0, its latency disappears, its failures count
    pods = {p.node: p for (ns, _), p in lab.pods.items() if ns == NS}
    src = next(name for (ns, name), p in lab.pods.items() if ns == NS and p.node == "lab-node-0")
    lab.nft_in_pod(NS, src, f"ip daddr {pods['lab-node-1'].ip} icmp type echo-request drop")
    s = running.after_next_cycle()
    assert value(s, "spider_validate_probe_success", **pair01) == 0
    assert value(s, "spider_validate_probe_success", **pair10) == 1
    assert value(s, "spider_validate_probe_rtt_seconds", **pair01) is None
    assert (value(s, "spider_validate_probes_total", **pair01, result="failure") or 0) >= 1
    netns.sh("nft", "delete", "table", "ip", "fault", ns=pods["lab-node-0"].ns)
    assert value(running.after_next_cycle(), "spider_validate_probe_success", **pair01) == 1

    # a leak: an address kept after its pod is gone (upstream 4982) is a finding of kind `leak`
    lab.faults.leak_on_delete = {"leaky"}
    workload(lab, "leaky", "watch-leak")
    wait(running_pod(lab, "leaky"))
    lab.delete("Pod", "leaky", f"{NS}-work")
    s = running.after_next_cycle()
    assert value(s, "spider_validate_audit_findings", kind="leak") == 1
    assert value(s, "spider_validate_pool_used_addresses", pool="watch-leak") == 1

    # a filling pool: used up, free down, and a forecast of when it runs out at that pace
    for i in range(3):
        workload(lab, f"fill-{i}", "watch-fill")
    wait(lambda: all(running_pod(lab, f"fill-{i}")() for i in range(3)))
    s = running.after_next_cycle()
    assert value(s, "spider_validate_pool_used_addresses", pool="watch-fill") == 3
    assert value(s, "spider_validate_pool_free_addresses", pool="watch-fill") == 7
    for i in range(3, 6):
        workload(lab, f"fill-{i}", "watch-fill")
    wait(lambda: all(running_pod(lab, f"fill-{i}")() for i in range(3, 6)))
    s = running.after_next_cycle()
    assert value(s, "spider_validate_pool_free_addresses", pool="watch-fill") == 4
    forecast = value(s, "spider_validate_pool_exhaustion_forecast_seconds", pool="watch-fill")
    assert forecast is not None and 0 < forecast < 120  # 4 left at about 3 addresses per cycle of 2 s

    # a probe pod that vanished is created again, and probed again
    lab.delete("Pod", src, NS)
    s = running.after_next_cycle()
    assert value(s, "spider_validate_watch_probe_pods_created_total") == created + 1
    wait(lambda: value(running._scrape(), "spider_validate_watch_probe_pods_ready") == 2, 20)

    # an API error fails that step of one cycle (counted); the next cycle is whole again
    lab.faults.api[("list", "SpiderIPPool")] = [500]
    wait(lambda: value(running._scrape(), "spider_validate_watch_errors_total", step="ipam") == 1, INTERVAL + 10)
    assert (value(running._scrape(), "spider_validate_watch_cycles_total", result="error") or 0) >= 1
    assert value(running.after_next_cycle(), "spider_validate_watch_last_cycle_success") == 1

    # node churn: a node that is no longer ready loses its probe pod and every series of its pairs
    set_ready(lab, "lab-node-1", False)
    try:
        s = running.after_next_cycle()
        assert [p["metadata"]["name"] for p in lab.list("Pod", NS) if p["spec"]["nodeName"] == "lab-node-1"] == []
        assert value(s, "spider_validate_watch_nodes") == 1
        assert value(s, "spider_validate_probe_success", **pair01) is None
        assert value(s, "spider_validate_probes_total", **pair10, result="success") is None
    finally:
        set_ready(lab, "lab-node-1", True)
    for i in range(6):
        lab.delete("Pod", f"fill-{i}", f"{NS}-work")
    s = running.after_next_cycle()
    assert value(s, "spider_validate_watch_nodes") == 2
    assert value(s, "spider_validate_audit_findings", kind="leak") == 1  # the leak stays until someone fixes it

    # the leaked record reclaimed (Spiderpool's garbage collector, or an administrator): its kind goes back to 0,
    # not absent, so that the alert on it resolves
    (leaked,) = json.loads((lab.get("SpiderIPPool", "watch-leak") or {})["status"]["allocatedIPs"])
    with lab.store.lock:
        lab.ipam._drop("watch-leak", leaked)
    assert value(running.after_next_cycle(), "spider_validate_audit_findings", kind="leak") == 0

    # the chart's RBAC refused nothing the watch called, and grants nothing it did not call
    running.stop()
    assert not [name for (ns, name) in lab.pods if ns == NS]  # its probe pods deleted, its namespace kept
    assert running.cluster.refused == []
    assert running.cluster.unused() == set()


def test_sigterm_stops_the_cli_and_removes_what_it_created(lab: LabCluster, tmp_path: Path) -> None:
    """The installed CLI, a process of its own over the lab's API server: a 500 at the HTTP layer fails that step
    of one cycle (counted, the watch goes on); SIGTERM once its probes answer."""
    port = free_port()
    args = ["watch", "--namespace", NS, "--interval", "1", "--metrics-port", str(port), "--probe-timeout", "1"]
    out, err = tmp_path / "stdout", tmp_path / "stderr"  # files: a pipe nobody reads could fill and block it
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(command(lab, args), stdout=stdout, stderr=stderr, text=True)
    try:
        deadline = time.monotonic() + 60
        pair = {"source_node": "lab-node-0", "destination_node": "lab-node-1"}
        while not value(scrape_or_nothing(port), "spider_validate_probe_success", **pair):
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "the watch's probes never answered"
            time.sleep(0.1)
        api_server(lab).http_faults.status["list spiderippools"] = [500]
        while value(scrape_or_nothing(port), "spider_validate_watch_errors_total", step="ipam") != 1:
            assert time.monotonic() < deadline, "the 500 was never counted"
            time.sleep(0.1)
        pods = sorted(name for (ns, name) in lab.pods if ns == NS)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, err.read_text()
    finally:
        if proc.poll() is None:  # the test failed before the signal: stop it all the same
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert len(pods) == 2
    assert f"removed namespace {NS}" in err.read_text() + out.read_text()
    with pytest.raises(OSError):
        scrape(port)  # the metrics server is closed
    assert_nothing_left(lab, run_prefix=NS)
    assert lab.get("Namespace", NS) is None


def test_a_pod_being_started_is_no_finding_and_a_running_one_is(lab: LabCluster) -> None:
    """Between Spiderpool's allocation and Multus's network-status a pod is Pending: not a finding for the watch.
    The same record on a Running pod is one (the audit's `not-in-network-status`)."""
    watcher = Watcher(lab, Parameters(), WatchOptions(NS, INTERVAL))
    lab.add_pool("watch-fill", FILL, node="lab-node-0")
    seen: dict[str, float | None] = {}

    def cycle_while_pending(lab: LabCluster, namespace: str) -> None:
        pod = lab.get("Pod", "starting", namespace)
        assert pod is not None and pod["status"]["phase"] == "Pending"
        watcher._ipam()
        seen["pending"] = value(
            scrape_registry(watcher), "spider_validate_audit_findings", kind="not-in-network-status"
        )

    lab.faults.before_ready["starting"] = cycle_while_pending
    try:
        workload(lab, "starting", "watch-fill")
        wait(running_pod(lab, "starting"))
        assert "pending" in seen and seen["pending"] is None
        pod = copy.deepcopy(lab.get("Pod", "starting", f"{NS}-work"))
        assert pod is not None
        del pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"]
        lab._put(pod)
        watcher._ipam()
        assert value(scrape_registry(watcher), "spider_validate_audit_findings", kind="not-in-network-status") == 1
    finally:
        lab.delete("Pod", "starting", f"{NS}-work")
        lab.delete("SpiderIPPool", "watch-fill")
    assert_nothing_left(lab, run_prefix=NS)


def scrape_registry(watcher: Watcher) -> Samples:
    """The samples the watcher would serve, without the HTTP server."""
    return parse(generate_latest(watcher.metrics.registry).decode())


def test_a_stop_in_the_middle_of_a_cycle_ends_that_cycle_without_an_exception(lab: LabCluster) -> None:
    """SIGTERM sets `stop` while a cycle runs: the pods it would still create are refused (the run is stopping),
    which that cycle counts as a failed step instead of raising out of the loop before the cleanup."""
    lab.create(manifests.namespace(NS, "chart"))
    watcher = Watcher(lab, Parameters(), WatchOptions(NS, INTERVAL))
    try:
        watcher.start()
        watcher.stop.set()
        assert watcher.cycle() is False
        samples = scrape_registry(watcher)
        assert value(samples, "spider_validate_watch_errors_total", step="pods") == 1
        assert value(samples, "spider_validate_watch_last_cycle_success") == 0
    finally:
        watcher.close()
        lab.delete("Namespace", NS)
    assert_nothing_left(lab, run_prefix=NS)


def test_a_restarted_watch_forecasts_no_exhaustion_of_a_steady_pool(lab: LabCluster) -> None:
    """The watch's own probe pods are no growth of their pool: started twice on a pool nothing else draws from,
    every cycle's forecast is +Inf (their addresses counted as growth, it fell to minutes after each start)."""
    lab.create(manifests.namespace(NS, "chart"))
    forecasts = []
    try:
        for _ in range(2):
            watcher = Watcher(lab, Parameters(probe_timeout=2, retry_delay=0.1), WatchOptions(NS, INTERVAL, 600))
            try:
                watcher.start()
                deadline = time.monotonic() + 40
                while True:  # until both probe pods ping each other, and one cycle more
                    watcher.cycle()
                    samples = scrape_registry(watcher)
                    forecasts.append(
                        value(samples, "spider_validate_pool_exhaustion_forecast_seconds", pool="lab-general")
                    )
                    if value(samples, "spider_validate_watch_probe_pods_ready") == 2 and len(forecasts) > 2:
                        break
                    assert time.monotonic() < deadline, "the probe pods were not ready in time"
                assert value(samples, "spider_validate_pool_used_addresses", pool="lab-general") == 2  # still counted
            finally:
                watcher.close()
    finally:
        lab.delete("Namespace", NS)
    assert forecasts and set(forecasts) == {math.inf}, forecasts
    assert_nothing_left(lab, run_prefix=NS)

"""Every node, at a cost linear in the nodes: the API calls of connectivity counted at the Cluster interface on
doubles of two sizes, and a bad node named by the run."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from prometheus_client import generate_latest
from spider_validate.cli import common
from spider_validate.cluster.api import Cluster
from spider_validate.engine.model import RunResult, Status, TestResult
from spider_validate.engine.params import Parameters
from spider_validate.engine.runner import Runner
from spider_validate.report import environment
from spider_validate.report import formats as report
from spider_validate.report.html import view
from spider_validate.report.nodes import by_node, pod_nodes
from spider_validate.suites import all_tests
from spider_validate.watch import loop
from spider_validate.watch.loop import Watcher, WatchOptions

from tests.lab import netns
from tests.lab.apiserver import ApiServer
from tests.lab.cluster import LabCluster
from tests.lab.rdma import LabRdma
from tests.validator.cluster.counting import CountingCluster

pytestmark = pytest.mark.root
CROSS = "connectivity/pod-to-pod-cross-node"


def workdir(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    return tmp_path / name


def run(cluster: Any, tmp_path: Path, **overrides: Any) -> RunResult:
    base: dict[str, Any] = {"probe_timeout": 2, "retry_delay": 0.1, "pod_ready_timeout": 60, "timeout": 150}
    params = Parameters(**(base | {"diagnostics_dir": str(tmp_path), "tests": (CROSS,)} | overrides))
    runner = Runner(cluster, params, all_tests())
    result = runner.run()
    result.environment = environment.collect(cluster, params, runner.ctx, [])  # as the CLI records it
    return result


def test_connectivity_costs_one_exec_per_source_and_probe(tmp_path: Path) -> None:
    """Every ordered pair of nodes is probed (ping and HTTP), each pair its own result, with one exec per client
    pod and probe: 2n execs for 2n(n-1) results (one exec per pair made it 12 and 60 at 3 and 6 nodes)."""
    execs, creates = {}, {}
    for n in (3, 6):
        with LabCluster(workdir(tmp_path, f"lab{n}"), nodes=n) as lab:
            counting = CountingCluster(lab)
            result = run(counting, tmp_path)
            (test,) = [t for t in result.tests if t.id == CROSS]
            assert test.status is Status.PASS, report.table(result)
            pairs = {(a.probe, a.source, a.destination) for a in test.actions}
            assert len(pairs) == len(test.actions) == 2 * n * (n - 1)
            execs[n], creates[n] = counting.calls["exec"], counting.calls["create"]
    assert execs == {3: 2 * 3, 6: 2 * 6}
    assert creates == {3: 2 * 3 + 2, 6: 2 * 6 + 2}  # the namespace, a client and a server per node, the Service


def test_a_watch_cycle_costs_one_exec_per_probe_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once its probe pods run, a cycle of `watch` pings every ordered pair with one exec per probe pod, each pair
    its own series (one exec per pair made it 6 and 30 at 3 and 6 nodes); in at most WAVES waves of execs at once
    (with --concurrency 1 the 6 sources of 2 waves run 3 at once; a fixed width made the cycle grow with the nodes)."""
    monkeypatch.setattr(loop, "WAVES", 2)
    execs, widest = {}, {}
    for n in (3, 6):
        with LabCluster(workdir(tmp_path, f"lab{n}"), nodes=n) as lab:
            counting = CountingCluster(lab)
            lab.exec = at_once = AtOnce(lab.exec)  # type: ignore[method-assign]
            params = Parameters(probe_timeout=2, concurrency=1)
            watcher = Watcher(cast(Cluster, counting), params, WatchOptions("sv-watch-scale"))
            try:
                watcher.start()
                deadline = time.monotonic() + 60
                while (watcher.metrics.registry.get_sample_value("spider_validate_watch_probe_pods_ready") or 0) < n:
                    assert time.monotonic() < deadline, "the probe pods were not ready in time"
                    watcher.cycle()
                counting.reset()
                at_once.widest = 0
                assert watcher.cycle()
                execs[n], widest[n] = counting.calls["exec"], at_once.widest
                series = generate_latest(watcher.metrics.registry).decode().count("spider_validate_probe_success{")
                assert series == n * (n - 1)
            finally:
                watcher.close()
    assert execs == {3: 3, 6: 6}
    assert widest == {3: 2, 6: 3}


class AtOnce:
    """An exec that records the most calls in flight at once."""

    def __init__(self, exec_: Callable[..., Any]) -> None:
        self.exec, self.lock, self.running, self.widest = exec_, threading.Lock(), 0, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.running += 1
            self.widest = max(self.widest, self.running)
        try:
            return self.exec(*args, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.slow
def test_a_healthy_16_node_run_passes_naming_no_bad_node(tmp_path: Path) -> None:
    """The issue's "How to verify": `spider-validate run --all-nodes`, the installed CLI over the lab's API server, on
    16 healthy nodes: the connectivity tests pass for every ordered pair of nodes and no node is named bad. Only
    connectivity: it is what probes every pair (the other suites' cost by size is `make bench-scale`'s)."""
    with LabCluster(workdir(tmp_path, "lab"), nodes=16) as lab:
        api = ApiServer(lab).start(workdir(tmp_path, "wire"))
        try:
            kubeconfig = tmp_path / "kubeconfig"
            kubeconfig.write_text(yaml.safe_dump(api.kubeconfig()))
            args = ["run", "--all-nodes", "--test", "connectivity/", "-o", "json", "--diagnostics-dir", str(tmp_path)]
            cli = [str(Path(sys.executable).parent / "spider-validate"), *args, "--kubeconfig", str(kubeconfig)]
            proc = subprocess.run(cli, capture_output=True, text=True, timeout=900)
        finally:
            api.stop()
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    result = json.loads(proc.stdout)
    assert {t["name"]: t["status"] for t in result["tests"] if t["suite"] == "connectivity"} == dict.fromkeys(
        ("pod-to-pod-same-node", "pod-to-pod-cross-node", "pod-to-service", "pod-to-node"), "pass"
    )
    node_of = pod_nodes(result["environment"])
    cross = [a for t in result["tests"] if t["name"] == "pod-to-pod-cross-node" for a in t["actions"]]
    pairs = {(a["probe"], node_of[a["source"]], node_of[a["destination"]]) for a in cross if a["status"] == "pass"}
    assert len(pairs) == len(cross) == 2 * 16 * 15
    between_pods = [c for c in result["matrix"] if c["source"] in node_of and c["destination"] in node_of]
    rows = by_node((node_of[c["source"]], node_of[c["destination"]], c["status"] == "pass") for c in between_pods)
    assert [r.node for r in rows] == sorted(f"lab-node-{i}" for i in range(16))
    assert [r.node for r in rows if r.bad or r.failing] == []


def test_a_blackholed_node_is_named(tmp_path: Path) -> None:
    """Node 2's link to the fabric is down after its pods started: every pair with it fails, and the run names it
    (and no other) as the bad node, in the table's row of that node."""
    with LabCluster(workdir(tmp_path, "lab"), nodes=4) as lab:
        fabric = f"{lab.prefix}-fab"

        def blackhole(cluster: LabCluster, namespace: str) -> None:
            netns.sh("ip", "link", "set", "p2", "down", ns=fabric)

        lab.faults.before_ready = {"client-3": blackhole}  # the last pod created: every pod has its address
        result = run(lab, tmp_path, tests=("connectivity/pod-to-pod",))
    rows = {r.node: r for r in report.node_rows(result)}
    assert [n for n, r in rows.items() if r.bad] == ["lab-node-2"], rows
    assert rows["lab-node-0"].failing == ["lab-node-2"]
    table = report.table(result, width=160)
    assert "lab-node-2 " in table and "bad node: fails with every peer" in table
    page = tmp_path / "report.html"
    common.write_html(result, str(page))  # as `run --html` writes it: the bad node's row first, marked
    assert '<tr class="fail"><td>lab-node-2</td>' in page.read_text()
    assert [line.row.node for line in view.build(report.to_dict(result)).by_node if line.row.bad] == ["lab-node-2"]
    cross = [a for t in result.tests if t.id == CROSS for a in t.actions]
    failed = {(a.source, a.destination) for a in cross if a.status is not Status.PASS}
    assert failed == {(a.source, a.destination) for a in cross if "-2" in a.source or "-2" in a.destination}


def test_a_token_bucket_limited_node_is_named_by_the_bandwidth_ring(tmp_path: Path) -> None:
    """Node 2's link to the fabric is held to 20 Mbit/s by a token bucket: both its pairings on the ring are slow,
    it is named, and each slow pairing says the other round implicates it (not its healthy neighbour)."""
    with LabCluster(workdir(tmp_path, "lab"), nodes=4) as lab:
        fabric = f"{lab.prefix}-fab"
        for port, ns in (("p2", fabric), ("eth0", lab.node_ns["lab-node-2"])):  # both ways
            netns.sh(
                "tc",
                "qdisc",
                "add",
                "dev",
                port,
                "root",
                "tbf",
                "rate",
                "20mbit",
                "burst",
                "32kbit",
                "latency",
                "50ms",
                ns=ns,
            )
        result = run(lab, tmp_path, tests=("perf/bandwidth-ring",), perf_seconds=2, perf_streams=2)
    assert_ring_names(result, "throughput", "lab-node-2")


def test_a_slow_rdma_node_is_named_by_the_rdma_bandwidth_ring(tmp_path: Path) -> None:
    """perftest between ring neighbours on 4 nodes, each pod on its RDMA path (its address's RoCE v2 GID), judged
    against --rdma-min-gbps: node 2's figure is 5 Gb/s, the others' perftest's README run (50.6 Gb/s). The lab's
    perftest is a stub (tests/lab/perftest_stub.py: this kernel has no RDMA) printing perftest's own output."""
    with LabCluster(workdir(tmp_path, "lab"), nodes=4) as lab:
        LabRdma(lab, [f"rdma-ring-{i}" for i in range(4)], slow={"lab-node-2": 5.0})
        image = {"rdma": "registry.example/spiderpool-rdma/rdma-tools:1"}  # the double runs no image
        ring = ("rdma/bandwidth-ring",)
        result = run(
            lab, tmp_path, tests=ring, rdma_mode="shared", rdma_min_gbps=20, rdma_seconds=2, image_overrides=image
        )
    test = assert_ring_names(result, "rdma", "lab-node-2")
    healthy = [a for a in test.actions if a.action == "rdma lab-node-0 -> lab-node-1"]
    assert [a.data["average_gbps"] for a in healthy] == [pytest.approx(50.61, abs=0.01)], healthy
    assert healthy[0].data["verb"] == "write" and healthy[0].data["min_gbps"] == 20


def assert_ring_names(result: RunResult, probe: str, bad: str) -> TestResult:
    """The ring's test failed naming `bad` alone as the bad node, and each of its two slow pairings says the other
    rounds implicate it (not its healthy neighbour)."""
    (test,) = result.tests
    verdicts = {a.action: a for a in test.actions}
    assert test.status is Status.FAIL, report.table(result)
    named = sorted(n for n, a in verdicts.items() if n.startswith("bandwidth of node") and a.status is not Status.PASS)
    assert named == [f"bandwidth of node {bad}"], [(a.action, a.detail) for a in test.actions]
    assert "bad node: slow in every pairing" in verdicts[f"bandwidth of node {bad}"].detail
    slow = {n: a.detail for n, a in verdicts.items() if n.startswith(probe) and a.status is not Status.PASS}
    n = int(bad.rsplit("-", 1)[1])
    assert sorted(slow) == [f"{probe} lab-node-{n - 1} -> {bad}", f"{probe} {bad} -> lab-node-{n + 1}"]
    assert all(f"the other rounds implicate {bad}" in d for d in slow.values()), slow
    return test

"""`spider-validate watch`: a light, bounded subset of the checks every interval, as Prometheus metrics.

Each cycle: one long-lived probe pod per ready node (created at start, reused, recreated when it vanished or
ended, removed when its node left), one exec per probe pod that pings every other one (each pair its own series),
the IPAM audit and every pool's headroom with a forecast of when it runs out (forecast.py), and with `--cloud aws`
the audit's cloud side (ipam/cloud.py) within a budget of EC2 calls per cycle. A failing step is counted and the next
cycle runs anyway; nothing is created or deleted in a cycle unless a node or a probe pod came or went. SIGTERM
(or Ctrl-C) ends the loop and deletes what the watch created: its probe pods, and its namespace if it made it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from spider_validate import __version__
from spider_validate.actions import reach as actions
from spider_validate.cloud.ec2 import CloudError, Ec2
from spider_validate.cluster.api import ApiError, Cluster
from spider_validate.cluster.spiderpool import allocated_ips, underlay_ip
from spider_validate.engine import manifests
from spider_validate.engine.context import PodInfo, RunContext, SetupError
from spider_validate.engine.discovery import discover_network, internal_ip, node_ready
from spider_validate.engine.model import ActionResult, Status
from spider_validate.engine.params import RUN_LABEL, Parameters
from spider_validate.engine.runner import new_run_id
from spider_validate.engine.steps import execute
from spider_validate.ipam import audit, cloud
from spider_validate.watch.forecast import Trend
from spider_validate.watch.metrics import WatchMetrics

log = logging.getLogger("spider_validate.watch")
ROLE: Final = "watch-probe"


@dataclass(frozen=True)
class Owner:
    """The pod the watch runs in (downward API): its probe pods name it, so Kubernetes deletes them with it."""

    name: str
    uid: str


@dataclass
class WatchOptions:
    namespace: str
    interval: float = 60.0
    forecast_window: float = 6 * 3600.0
    owner: Owner | None = None
    cloud: Callable[[], Ec2] | None = None  # a reader of EC2 per cycle, its call budget fresh (the cloud side)


def probe_pod_name(run_id: str, node: str) -> str:
    """A DNS label whatever the node's name: the run and a digest of the node."""
    return f"watch-{run_id}-{hashlib.sha256(node.encode()).hexdigest()[:10]}"


class Watcher:
    def __init__(self, cluster: Cluster, params: Parameters, options: WatchOptions, run_id: str | None = None) -> None:
        self.cluster, self.options = cluster, options
        self.metrics = WatchMetrics()
        self.ctx = RunContext(cluster, params, run_id or new_run_id(), options.namespace)
        self.stop = self.ctx.stop
        self.created_namespace = False
        self.pairs: set[tuple[str, str]] = set()
        self.trends: dict[str, Trend] = {}
        self.kinds: set[str] = set()
        self.rules: set[str] = set()
        self.snapshot: audit.Snapshot | None = None  # this cycle's, for the cloud side

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Find the network and make sure the namespace exists; the pods come with the first cycle."""
        self.ctx.network = self.ctx.api(lambda: discover_network(self.ctx))
        if self.ctx.api(lambda: self.cluster.get("Namespace", self.options.namespace)) is None:
            self.ctx.create(manifests.namespace(self.options.namespace, self.ctx.run_id))
            self.created_namespace = True
        self.metrics.info.info(
            {"version": __version__, "namespace": self.options.namespace, "network": self.ctx.network.ref}
        )

    def close(self) -> list[str]:
        """Delete the probe pods (and the namespace when the watch created it); what was removed."""
        removed = []
        try:
            if self.created_namespace:
                self.cluster.delete("Namespace", self.options.namespace)
                return [f"namespace {self.options.namespace}"]
            for pod in self._probe_pods():
                self.cluster.delete("Pod", pod["metadata"]["name"], self.options.namespace)
                removed.append(f"pod {pod['metadata']['name']}")
        except ApiError as exc:
            log.error("cleanup incomplete: %s (spider-validate cleanup, or delete label %s)", exc, self._selector)
        return removed

    # -- one cycle ----------------------------------------------------------------------------------------------

    def cycle(self) -> bool:
        """Every step, each on its own: a failing step is counted, the others still run. True when all ran."""
        began = time.monotonic()
        ok = True
        self.snapshot = None
        steps = [("pods", self._reconcile), ("ipam", self._ipam)] + (
            [("cloud", self._cloud)] if self.options.cloud else []
        )
        self.metrics.expect_steps(step for step, _ in steps)
        for step, fn in steps:
            try:
                fn()
            except Exception as exc:  # a watch outlives any one failure: said, counted, and the next cycle runs
                ok = False
                self.metrics.errors.labels(step).inc()
                expected = isinstance(exc, ApiError | audit.Unreadable | SetupError | CloudError)
                log.warning("%s: %s", step, exc, exc_info=not expected)
        m = self.metrics
        m.cycle_duration.set(time.monotonic() - began)
        m.cycle_success.set(1 if ok else 0)
        m.cycle_time.set(time.time())
        m.cycles.labels("ok" if ok else "error").inc()
        return ok

    @property
    def _selector(self) -> str:
        return f"{RUN_LABEL}={self.ctx.run_id},{manifests.ROLE_LABEL}={ROLE}"

    def _probe_pods(self) -> list[dict[str, Any]]:
        return self.cluster.list("Pod", self.options.namespace, self._selector)

    def _nodes(self) -> dict[str, str]:
        """Ready, schedulable nodes of --node-selector / --nodes, with their addresses."""
        params = self.ctx.params
        selector = ",".join(f"{k}={v}" for k, v in params.node_selector.items())
        nodes = [n for n in self.cluster.list("Node", label_selector=selector) if node_ready(n)]
        return {
            n["metadata"]["name"]: internal_ip(n)
            for n in nodes
            if not params.nodes or n["metadata"]["name"] in params.nodes
        }

    def _pod(self, node: str) -> dict[str, Any]:
        assert self.ctx.network is not None
        params = self.ctx.params
        name = probe_pod_name(self.ctx.run_id, node)
        obj = manifests.pod(
            name, self.options.namespace, self.ctx.run_id, ROLE, node, params.image("client"), self.ctx.network, params
        )
        if self.options.owner:
            obj["metadata"]["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Pod", "name": self.options.owner.name, "uid": self.options.owner.uid}
            ]
        return obj

    def _reconcile(self) -> None:
        """Probe pods to match the nodes, then ping across every pair of ready ones."""
        assert self.ctx.network is not None
        nodes = self._nodes()
        pods = {p["spec"].get("nodeName", ""): p for p in self._probe_pods()}
        for node, pod in pods.items():
            ended = pod.get("status", {}).get("phase") in audit.TERMINAL
            if node not in nodes or ended:
                self.cluster.delete("Pod", pod["metadata"]["name"], self.options.namespace)
        for node in nodes:
            if node not in pods or pods[node].get("status", {}).get("phase") in audit.TERMINAL:
                self.ctx.create(self._pod(node))
                self.metrics.probe_pods_created.inc()
        ready = [
            PodInfo(p["metadata"]["name"], ROLE, node, ip, nodes[node])
            for node, p in sorted(pods.items())
            if node in nodes
            and p.get("status", {}).get("phase") == "Running"
            and (ip := underlay_ip(p, self.ctx.network.interface))
        ]
        self.metrics.nodes.set(len(nodes))
        self.metrics.probe_pods_ready.set(len(ready))
        pairs = {(s.node, d.node) for s in ready for d in ready if s.node != d.node}
        self.metrics.forget_pairs(p for p in self.pairs if p[0] not in nodes or p[1] not in nodes)
        self.pairs = {p for p in self.pairs if p[0] in nodes and p[1] in nodes} | pairs
        if pairs:
            workers = max(self.ctx.params.concurrency, math.ceil(len(ready) / WAVES))
            with ThreadPoolExecutor(workers, "watch-probe") as pool:
                list(pool.map(lambda src: self._probe(src, [d for d in ready if d.node != src.node]), ready))

    def _probe(self, src: PodInfo, dsts: list[PodInfo]) -> None:
        """One exec in `src` pings every other probe pod (actions.batched): n execs a cycle for n nodes, and each
        pair's result its own series."""
        for dst, action in zip(
            dsts, actions.batched(self.ctx, src, "ping", [(d.name, d.ip) for d in dsts]), strict=True
        ):
            self._record(src, dst, execute(self.ctx, "watch", action))

    def _record(self, src: PodInfo, dst: PodInfo, result: ActionResult) -> None:
        ok = result.status is Status.PASS
        m = self.metrics
        m.probe_success.labels(src.node, dst.node).set(1 if ok else 0)
        m.count_probe(src.node, dst.node, ok)
        rtt = (result.data or {}).get("rtt_avg_ms")
        if ok and rtt is not None:
            m.probe_rtt.labels(src.node, dst.node).set(rtt / 1000)
        else:
            m.forget_rtt(src.node, dst.node)
            log.warning("ping %s -> %s: %s", src.node, dst.node, result.detail)

    def _ipam(self) -> None:
        """The audit's findings by kind, and each pool's size, used and free addresses and forecast."""
        snap = self.snapshot = audit.snapshot(self.cluster, nodes=self.options.cloud is not None)
        findings = audit.audit(snap)
        counts: dict[str, int] = {}
        pending = _pending(snap.pods)
        for f in findings:
            if f.problem == SETTLING and pending.intersection(f.objects):
                continue
            counts[f.problem] = counts.get(f.problem, 0) + 1
        self.kinds |= set(counts)
        for kind in self.kinds:  # a kind once seen stays, at 0 when resolved: alerts see it end
            self.metrics.findings.labels(kind).set(counts.get(kind, 0))
        now = time.time()
        names = set()
        probes = _probe_pods(snap.pods)
        for pool in snap.pools:
            name, status = pool["metadata"]["name"], pool.get("status") or {}
            size, used = int(status.get("totalIPCount") or 0), int(status.get("allocatedIPCount") or 0)
            free = max(0, size - used)
            names.add(name)
            trend = self.trends.setdefault(name, Trend(self.options.forecast_window))
            trend.add(now, used - _held_by(pool, probes))  # the workloads' trend: probe pods come with a start
            m = self.metrics
            m.pool_size.labels(name).set(size)
            m.pool_used.labels(name).set(used)
            m.pool_free.labels(name).set(free)
            m.pool_forecast.labels(name).set(trend.forecast(free))
        gone = set(self.trends) - names
        self.metrics.forget_pools(gone)
        for name in gone:
            del self.trends[name]

    def _cloud(self) -> None:
        """The cloud side's findings by rule, on this cycle's snapshot (none when the ipam step could not read it),
        within the reader's call budget: a cycle that would exceed it stops there (BudgetExhausted, counted as an
        error of the step) and the next one starts afresh."""
        assert self.options.cloud is not None
        if self.snapshot is None:
            raise CloudError("skipped: the ipam step could not read the cluster")
        reader = self.options.cloud()
        try:
            findings, _ = cloud.check(reader, self.snapshot)
        finally:
            self.metrics.cloud_calls.set(reader.calls)
        counts: dict[str, int] = {}
        for f in findings:
            counts[f.problem] = counts.get(f.problem, 0) + 1
        self.rules |= set(counts)
        for rule in self.rules:  # a rule once seen stays, at 0 when resolved
            self.metrics.cloud_findings.labels(rule).set(counts.get(rule, 0))


#: A pod being started has its address (Spiderpool's IPAM runs within the CNI ADD) before its network-status:
#: Multus writes that annotation at the end of its CmdAdd, after every delegate (multus-cni pkg/multus/multus.go,
#: CmdAdd: k8s.SetNetworkStatus). The audit, made for a quiet cluster, names it; the watch, which runs while pods
#: start, does not count it for a pod that is still Pending.
# A cycle's pings run in at most this many waves of sources at once (more at once as nodes grow; --concurrency
# is the least): a fixed width made the cycle grow with the nodes, n/4 execs of a few seconds each, past the
# interval at 64 nodes.
WAVES = 8
SETTLING = "not-in-network-status"


def _probe_pods(pods: list[dict[str, Any]]) -> set[str]:
    """`ns/name` (as allocatedIPs names pods) of every watch's probe pods, this run's or another's."""
    return {
        f"{p['metadata'].get('namespace')}/{p['metadata']['name']}"
        for p in pods
        if p["metadata"].get("labels", {}).get(manifests.ROLE_LABEL) == ROLE
    }


def _held_by(pool: dict[str, Any], pods: set[str]) -> int:
    """How many of the pool's addresses `pods` hold. A watch's probe pods arrive all at once when it starts: counted
    as growth, they made the forecast fall from +Inf to minutes after every restart (and the alert fire on a steady
    pool with a few free addresses); the pool's used and free gauges still count them. An unreadable allocatedIPs
    holds none here (the audit reports it)."""
    try:
        records = allocated_ips(pool)
    except ValueError:
        return 0
    return sum(1 for record in records.values() if isinstance(record, dict) and record.get("pod") in pods)


def _pending(pods: list[dict[str, Any]]) -> set[str]:
    """`Pod/ns/name` (as audit findings name pods) of the pods still Pending."""
    return {
        f"Pod/{p['metadata'].get('namespace')}/{p['metadata']['name']}"
        for p in pods
        if (p.get("status") or {}).get("phase") == "Pending"
    }


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM (Kubernetes stopping the pod) and SIGINT set `stop`: the loop ends and cleans up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        log.info("signal %d: stopping and cleaning up", signum)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def serve(watcher: Watcher, address: str, port: int, cycles: int = 0) -> list[str]:
    """Serve the metrics on address:port and cycle until stopped (or `cycles` ran); clean up whatever ended it."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, address, registry=watcher.metrics.registry)
    try:
        with stop_on_signals(watcher.stop):
            watcher.start()
            done = 0
            while not watcher.stop.is_set():
                began = time.monotonic()
                watcher.cycle()
                done += 1
                if cycles and done >= cycles:
                    break
                watcher.stop.wait(max(0.0, watcher.options.interval - (time.monotonic() - began)))
    finally:
        removed = watcher.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    return removed

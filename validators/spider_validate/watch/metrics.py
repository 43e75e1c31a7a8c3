"""The Prometheus metrics `spider-validate watch` serves, in a registry of their own.

Names follow Prometheus's conventions (https://prometheus.io/docs/practices/naming/): the `spider_validate_`
prefix, base units in the name (`_seconds`), `_total` on counters, `_info` for the constant labels of the
process; addresses are counted, so their gauges carry no unit. Series of a node pair or a pool that is gone are
removed, so a long run with node churn keeps a bounded set of series.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, disable_created_metrics

PREFIX = "spider_validate"
PROBE_RESULTS = ("success", "failure")


class WatchMetrics:
    def __init__(self) -> None:
        # No `_created` series: a counter's creation time doubles its series and gives a counter named `..._created`
        # a `..._created_created` one (prometheus_client's switch; this process's metrics are all here)
        disable_created_metrics()
        self.registry = CollectorRegistry()
        r, p = self.registry, PREFIX
        pair = ("source_node", "destination_node")
        self.info = Info(f"{p}_watch", "The watch process: version, probe namespace, network", registry=r)
        self.probe_success = Gauge(
            f"{p}_probe_success", "1 when the last ping between the probe pods of two nodes succeeded", pair, registry=r
        )
        self.probe_rtt = Gauge(
            f"{p}_probe_rtt_seconds", "Average round-trip time of the last successful ping", pair, registry=r
        )
        self.probes = Counter(f"{p}_probes", "Pings between probe pods, by result", (*pair, "result"), registry=r)
        self.nodes = Gauge(f"{p}_watch_nodes", "Ready, schedulable nodes the watch probes", registry=r)
        self.probe_pods_ready = Gauge(
            f"{p}_watch_probe_pods_ready", "Probe pods running with an underlay address", registry=r
        )
        self.probe_pods_created = Counter(
            f"{p}_watch_probe_pods_created", "Probe pods created (at start, and again when one vanished)", registry=r
        )

        def pool_gauge(name: str, documentation: str) -> Gauge:
            return Gauge(f"{p}_{name}", documentation, ["pool"], registry=r)

        self.pool_size = pool_gauge("pool_addresses", "Addresses of a SpiderIPPool (status.totalIPCount)")
        self.pool_used = pool_gauge(
            "pool_used_addresses", "Allocated addresses of a SpiderIPPool (status.allocatedIPCount)"
        )
        self.pool_free = pool_gauge("pool_free_addresses", "Addresses of a SpiderIPPool still free")
        self.pool_forecast = pool_gauge(
            "pool_exhaustion_forecast_seconds",
            "Seconds until the pool has no free address at the trend of its used addresses (+Inf: not filling)",
        )
        self.findings = Gauge(
            f"{p}_audit_findings", "IPAM audit findings of the last cycle, by kind", ["kind"], registry=r
        )
        self.cloud_findings = Gauge(
            f"{p}_cloud_findings",
            "Findings of the last cycle's cloud side (`--cloud aws`), by rule (warnings included)",
            ["rule"],
            registry=r,
        )
        self.cloud_calls = Gauge(f"{p}_cloud_calls", "EC2 API calls the last cycle's cloud side made", registry=r)
        self.cycle_duration = Gauge(
            f"{p}_watch_last_cycle_duration_seconds", "How long the last cycle took", registry=r
        )
        self.cycle_success = Gauge(
            f"{p}_watch_last_cycle_success",
            "1 when every step of the last cycle could run (API, probes, audit)",
            registry=r,
        )
        self.cycle_time = Gauge(
            f"{p}_watch_last_cycle_timestamp_seconds", "When the last cycle ended (Unix time)", registry=r
        )
        self.cycles = Counter(f"{p}_watch_cycles", "Cycles run, by result (ok, error)", ["result"], registry=r)
        self.errors = Counter(f"{p}_watch_errors", "Steps of a cycle that failed, by step", ["step"], registry=r)
        for result in ("ok", "error"):
            self.cycles.labels(result)

    def count_probe(self, src: str, dst: str, ok: bool) -> None:
        """One ping of the pair, with both results' series present from the first (a counter without a series is
        no 0: `rate()` and an alert on failures see nothing until the first failure)."""
        for result in PROBE_RESULTS:
            self.probes.labels(src, dst, result)
        self.probes.labels(src, dst, PROBE_RESULTS[0] if ok else PROBE_RESULTS[1]).inc()

    def expect_steps(self, steps: Iterable[str]) -> None:
        """Each step's error series at 0 before its first failure (same reason)."""
        for step in steps:
            self.errors.labels(step)

    def forget_rtt(self, src: str, dst: str) -> None:
        """No latency for a pair whose last ping failed: a stale value would look like a working path."""
        with suppress(KeyError):
            self.probe_rtt.remove(src, dst)

    def forget_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Drop every series of node pairs that no longer exist (a node left the cluster)."""
        for src, dst in pairs:
            for metric, labels in (
                (self.probe_success, ()),
                (self.probe_rtt, ()),
                (self.probes, ("success",)),
                (self.probes, ("failure",)),
            ):
                with suppress(KeyError):
                    metric.remove(src, dst, *labels)

    def forget_pools(self, pools: Iterable[str]) -> None:
        for pool in pools:
            for gauge in (self.pool_size, self.pool_used, self.pool_free, self.pool_forecast):
                with suppress(KeyError):
                    gauge.remove(pool)

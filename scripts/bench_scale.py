"""Benchmark of the validator's cost by cluster size, on the namespace double: `run --all-nodes` and 20 `watch`
cycles on doubles of 4, 16 and 64 nodes.

For each size it prints the API calls made (counted at the `Cluster` interface, tests/validator/cluster/counting.py),
per node, the wall time of the run and of a steady watch cycle, and the process's peak memory (the double's kubelet
lives in this process too, so it is an upper bound of the validator's). Its last line is
`scale: calls_per_node_4=X calls_per_node_64=Y run_s_64=Z watch_cycle_s_64=W`. Targets: calls per node at 64 within
1.5x of those at 4; a watch cycle at 64 nodes under its default interval (60 s); the run at 64 nodes under 3 minutes
on 2 cores. The run is bounded by the double starting its pods one at a time (a network namespace, the CNI macvlan
plugin and Spiderpool's allocation each), which it prints beside. Needs root (network namespaces).
"""

from __future__ import annotations

import functools
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import cast
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from click.testing import CliRunner
from spider_validate.cli import common, run
from spider_validate.cli.app import main
from spider_validate.cluster.api import Cluster
from spider_validate.engine.params import Parameters
from spider_validate.watch.loop import Watcher, WatchOptions

from tests.lab.cluster import LabCluster
from tests.validator.cluster.counting import CountingCluster

SIZES = tuple(int(n) for n in sys.argv[1:]) or (4, 16, 64)  # other sizes: python scripts/bench_scale.py 4 8
CYCLES = 20
WATCH_NS = "spider-validate-bench-scale"


def ready_pods(watcher: Watcher) -> float:
    return watcher.metrics.registry.get_sample_value("spider_validate_watch_probe_pods_ready") or 0.0


def measure(nodes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, LabCluster(Path(tmp), nodes=nodes) as lab:
        counting = CountingCluster(lab)
        began = time.monotonic()
        # the double starts its pods one at a time (a kubelet per node starts them in parallel): 128 pods outlast
        # the run's default wait for them (180 s) on a busy 2-core machine
        slow_double = functools.partial(Parameters, pod_ready_timeout=900)
        with (
            mock.patch.object(common, "connect", return_value=counting),
            mock.patch.object(run, "Parameters", slow_double),
        ):
            out = CliRunner().invoke(main, ["run", "--all-nodes", "-o", "json", "--diagnostics-dir", tmp])
        run_s = time.monotonic() - began
        result = json.loads(out.stdout)
        if result.get("setup_error"):
            sys.exit(f"{nodes} nodes: setup failed: {result['setup_error']}")
        failed = [t["suite"] + "/" + t["name"] for t in result["tests"] if t["status"] not in ("pass", "skip")]
        if failed:  # perf's pod-against-host figures are noise on a busy machine: said, not fatal
            print(f"{nodes} nodes: did not pass: {', '.join(failed)}", flush=True)
        run_calls = counting.reset()
        pods_s = sum(lab.start_seconds)
        deadline = time.monotonic() + 120  # the run's pods gone (the double tears them down after the delete):
        while lab.pods and time.monotonic() < deadline:  # the watch's own must not meet their addresses
            time.sleep(0.1)
        watcher = Watcher(cast(Cluster, counting), Parameters(), WatchOptions(WATCH_NS))
        cycles = []
        try:
            watcher.start()
            began = time.monotonic()
            while ready_pods(watcher) < nodes:  # its start: the first cycles create the probe pods
                if time.monotonic() - began > 600:
                    sys.exit(f"{nodes} nodes: the watch's probe pods were not ready in 600 s")
                watcher.cycle()
                time.sleep(0.5)
            start_s = time.monotonic() - began
            counting.reset()
            for _ in range(CYCLES):
                began = time.monotonic()
                watcher.cycle()
                cycles.append(time.monotonic() - began)
        finally:
            watcher.close()
        watch_calls = counting.reset()
        ready = ready_pods(watcher)
    steady = sorted(cycles)[len(cycles) // 2]  # the median cycle
    figures = {
        "run_calls": sum(run_calls.values()),
        "run_execs": run_calls["exec"],
        "run_s": run_s,
        "pods_s": pods_s,
        "watch_calls": sum(watch_calls.values()),
        "watch_execs_per_cycle": watch_calls["exec"] / CYCLES,
        "watch_cycle_s": steady,
        "watch_ready": ready,
        "watch_start_s": start_s,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(
        f"{nodes} nodes: run {run_s:.1f} s ({figures['run_calls']} API calls, {figures['run_calls'] / nodes:.1f} per "
        f"node, {run_calls['exec']} execs; the double took {pods_s:.1f} s to start its pods one by one); watch "
        f"started in {start_s:.1f} s, then {CYCLES} cycles: {figures['watch_calls']} calls "
        f"({figures['watch_execs_per_cycle']:.1f} execs a cycle), a median cycle {steady:.2f} s with {ready:.0f} "
        f"probe pods; peak memory {figures['peak_mib']:.0f} MiB",
        flush=True,
    )
    return figures


def main_() -> None:
    figures = {n: measure(n) for n in SIZES}
    first, last = figures[SIZES[0]], figures[SIZES[-1]]
    print(
        f"scale: calls_per_node_{SIZES[0]}={first['run_calls'] / SIZES[0]:.1f} "
        f"calls_per_node_{SIZES[-1]}={last['run_calls'] / SIZES[-1]:.1f} run_s_{SIZES[-1]}={last['run_s']:.1f} "
        f"watch_cycle_s_{SIZES[-1]}={last['watch_cycle_s']:.2f}"
    )


if __name__ == "__main__":
    main_()

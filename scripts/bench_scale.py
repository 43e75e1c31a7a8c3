"""Benchmark of the validator's cost by cluster size, on the namespace double: `run --all-nodes` and 20 `watch`
cycles on doubles of 4, 16 and 64 nodes.

For each size it prints the API calls made (counted at the `Cluster` interface, tests/validator/cluster/counting.py),
per node, the wall time of the run and of a steady watch cycle, and the process's peak memory (the double's kubelet
lives in this process too, so it is an upper bound of the validator's). Its last line is
`scale: calls_per_node_4=X calls_per_node_64=Y run_s_64=Z watch_cycle_s_64=W`. Targets: calls per node at 64 within
1.5x of those at 4; a watch cycle at 64 nodes under its default interval (60 s); the run at 64 nodes under 3 minutes
on 2 cores. The double starts its pods one at a time (a network namespace, the CNI macvlan plugin and Spiderpool's
allocation each), the time it took printed beside. Each figure comes with the load average at its start and the CPU
time of this process and its children (the double's commands, the probes): on a shared machine, the wall time is
the machine's, the CPU time ours. Needs root (network namespaces; and every lab makes room for its pods in the
kernel's one neighbour table, never taking it back: tests/lab/netns.py neighbour_room).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import cast
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from click.testing import CliRunner
from spider_validate.cli import common
from spider_validate.cli.app import main
from spider_validate.cluster.api import Cluster
from spider_validate.engine.params import Parameters
from spider_validate.watch.loop import Watcher, WatchOptions

from tests.lab.cluster import LabCluster
from tests.validator.cluster.counting import CountingCluster

SIZES = tuple(int(n) for n in sys.argv[1:]) or (4, 16, 64)  # other sizes: python scripts/bench_scale.py 4 8
CYCLES = 20
WATCH_NS = "spider-validate-bench-scale"


def cpu_seconds() -> float:
    """CPU time of this process (the validator and the double's API and kubelet) and its ended children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ready_pods(watcher: Watcher) -> float:
    return watcher.metrics.registry.get_sample_value("spider_validate_watch_probe_pods_ready") or 0.0


def measure(nodes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, LabCluster(Path(tmp), nodes=nodes) as lab:
        counting = CountingCluster(lab)
        load, cpu = os.getloadavg()[0], cpu_seconds()
        began = time.monotonic()
        with mock.patch.object(common, "connect", return_value=counting):
            out = CliRunner().invoke(main, ["run", "--all-nodes", "-o", "json", "--diagnostics-dir", tmp])
        run_s, run_cpu = time.monotonic() - began, cpu_seconds() - cpu
        result = json.loads(out.stdout)
        if result.get("setup_error"):
            sys.exit(f"{nodes} nodes: setup failed: {result['setup_error']}")
        failed = [t["suite"] + "/" + t["name"] for t in result["tests"] if t["status"] not in ("pass", "skip")]
        if failed:  # perf's pod-against-host figures are noise on a busy machine: said, not fatal
            first = next(a for t in result["tests"] for a in t["actions"] if a["status"] not in ("pass", "skip"))
            print(f"{nodes} nodes: did not pass: {', '.join(failed)} (first: {first['detail'][:200]})", flush=True)
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
            watch_load, cpu = os.getloadavg()[0], cpu_seconds()
            for _ in range(CYCLES):
                began = time.monotonic()
                watcher.cycle()
                cycles.append(time.monotonic() - began)
        finally:
            watcher.close()
        watch_calls, watch_cpu = counting.reset(), (cpu_seconds() - cpu) / CYCLES
        ready = ready_pods(watcher)
        failing = sum(
            s.value == 0
            for m in watcher.metrics.registry.collect()
            if m.name == "spider_validate_probe_success"
            for s in m.samples
        )
    steady = sorted(cycles)[len(cycles) // 2]  # the median cycle
    figures = {
        "run_calls": sum(run_calls.values()),
        "run_execs": run_calls["exec"],
        "run_s": run_s,
        "run_cpu_s": run_cpu,
        "run_load": load,
        "pods_s": pods_s,
        "watch_calls": sum(watch_calls.values()),
        "watch_execs_per_cycle": watch_calls["exec"] / CYCLES,
        "watch_cycle_s": steady,
        "watch_cycle_cpu_s": watch_cpu,
        "watch_load": watch_load,
        "watch_failing_pairs": failing,
        "watch_ready": ready,
        "watch_start_s": start_s,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(
        f"{nodes} nodes: run {run_s:.1f} s, CPU {run_cpu:.1f} s, load average {load:.1f} ({figures['run_calls']} API "
        f"calls, {figures['run_calls'] / nodes:.1f} per node, {run_calls['exec']} execs; the double took {pods_s:.1f} "
        f"s to start its pods one by one); watch started in {start_s:.1f} s, then {CYCLES} cycles at load average "
        f"{watch_load:.1f}: {figures['watch_calls']} calls ({figures['watch_execs_per_cycle']:.1f} execs a cycle), a "
        f"median cycle {steady:.2f} s (CPU {watch_cpu:.2f} s a cycle) with {ready:.0f} probe pods, {failing} pairs "
        f"failing at the end; peak memory {figures['peak_mib']:.0f} MiB",
        flush=True,
    )
    return figures


def main_() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # as Ctrl-C: the double's namespaces removed on the way
    figures = {n: measure(n) for n in SIZES}
    first, last = figures[SIZES[0]], figures[SIZES[-1]]
    print(
        f"scale: calls_per_node_{SIZES[0]}={first['run_calls'] / SIZES[0]:.1f} "
        f"calls_per_node_{SIZES[-1]}={last['run_calls'] / SIZES[-1]:.1f} run_s_{SIZES[-1]}={last['run_s']:.1f} "
        f"watch_cycle_s_{SIZES[-1]}={last['watch_cycle_s']:.2f}"
    )


if __name__ == "__main__":
    main_()

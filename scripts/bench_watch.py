"""Memory and CPU of `spider-validate watch` over a long run against the namespace double (a script, not a test).

    sudo .venv/bin/python scripts/bench_watch.py [--cycles 900] [--interval 1] [--nodes 3]

The double and the watcher share this process (the double is the `Cluster` (cluster/api.py) the watch talks to), so the
process's CPU is the watch's plus the double's: the double's own idle CPU is measured first, for as long, and
subtracted. The probes' `ping` runs in child processes (as it runs in the probe pods on a cluster): their CPU is
reported apart. Every 50 cycles a node stops being ready and comes back (node churn: its probe pod and series go
and return). Printed: RSS, Python objects and served series every `--every` cycles, and the growth between the
first sample after warm-up and the last.
"""

from __future__ import annotations

import argparse
import copy
import gc
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import generate_latest
from spider_validate.engine.params import Parameters
from spider_validate.watch.loop import Watcher, WatchOptions

from tests.lab import netns
from tests.lab.cluster import LabCluster

NS = "spider-validate-watch-bench"


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu() -> tuple[float, float]:
    """(this process's CPU seconds, its children's)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def set_ready(lab: LabCluster, node: str, ready: bool) -> None:
    obj = copy.deepcopy(lab.get("Node", node))
    assert obj is not None
    obj["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    lab._put(obj)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=900)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    netns.sweep_dead()
    with tempfile.TemporaryDirectory() as tmp, LabCluster(Path(tmp), nodes=args.nodes) as lab:
        idle_seconds = args.cycles * args.interval / 10  # a tenth of the run is enough for a rate
        before, wall = cpu(), time.monotonic()
        time.sleep(idle_seconds)
        idle_rate = (cpu()[0] - before[0]) / (time.monotonic() - wall)
        print(f"double alone: {idle_rate * 100:.1f}% of a core over {idle_seconds:.0f}s", flush=True)

        watcher = Watcher(lab, Parameters(probe_timeout=1, retry_delay=0.2), WatchOptions(NS, args.interval, 600))
        watcher.start()
        rows = []
        start_cpu, start_wall = cpu(), time.monotonic()
        durations = []
        churn = lab.node_names[-1]
        for n in range(1, args.cycles + 1):
            began = time.monotonic()
            watcher.cycle()
            durations.append(time.monotonic() - began)
            if n % 50 == 25:
                set_ready(lab, churn, False)
            elif n % 50 == 0:
                set_ready(lab, churn, True)
            if n % args.every == 0 or n == args.warmup:
                gc.collect()
                series = sum(
                    1 for line in generate_latest(watcher.metrics.registry).decode().splitlines() if line[:1] != "#"
                )
                rows.append((n, rss_kib(), len(gc.get_objects()), series))
                print(
                    f"cycle {n:5d}: RSS {rows[-1][1] / 1024:7.1f} MiB, {rows[-1][2]:7d} objects, {series} series",
                    flush=True,
                )
            threading.Event().wait(max(0.0, args.interval - (time.monotonic() - began)))
        end_cpu, end_wall = cpu(), time.monotonic()
        watcher.close()
    elapsed = end_wall - start_wall
    own = (end_cpu[0] - start_cpu[0]) / elapsed
    kids = (end_cpu[1] - start_cpu[1]) / elapsed
    first = next(r for r in rows if r[0] >= args.warmup)
    last = rows[-1]
    durations.sort()
    print(
        f"{args.cycles} cycles of {args.nodes} nodes in {elapsed:.0f}s; "
        f"cycle p50 {durations[len(durations) // 2]:.2f}s, max {durations[-1]:.2f}s\n"
        f"CPU: process {own * 100:.1f}% of a core, minus the double's idle {idle_rate * 100:.1f}% = watch "
        f"{(own - idle_rate) * 100:.1f}%; ping children {kids * 100:.1f}%\n"
        f"growth from cycle {first[0]} to {last[0]}: RSS {(last[1] - first[1]) / 1024:+.1f} MiB, "
        f"objects {last[2] - first[2]:+d}, series {last[3] - first[3]:+d}"
    )


if __name__ == "__main__":
    main()

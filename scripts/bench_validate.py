"""Benchmark on the namespace double: the connectivity and apps suites with 2 nodes and 20 app pods, then
the ipam/scale scenario with 100 pods allocated and released.

Prints the wall time of the run next to its critical path: the wait for the slowest pod to become ready
(the double's kubelet starts pods one by one, as a busy node would), plus the slowest single probe (all
probes are independent, so a perfect runner waits for nothing else). Target: wall <= 1.25x the critical
path, and under 30 s. For ipam/scale it prints the time per allocation and per release next to the
double's own time to start a pod (namespace, CNI plugin, Spiderpool's allocation), so the runner's overhead
shows. Needs root (network namespaces).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spider_validate.engine.context import PodInfo
from spider_validate.engine.params import Parameters
from spider_validate.engine.runner import Runner
from spider_validate.suites import all_tests

from tests.lab.cluster import LabCluster

APPS, NODES = 10, 2  # 10 apps x 2 nodes = 20 app pods
SCALE_PODS = 100
IPAM_RANGE = "198.18.0.150-198.18.0.249"  # 100 free addresses of the double's subnet


def scale() -> None:
    with tempfile.TemporaryDirectory() as tmp, LabCluster(Path(tmp), nodes=NODES) as lab:
        params = Parameters(
            tests=("ipam/scale",),
            ipam_pods=SCALE_PODS,
            ipam_range=IPAM_RANGE,
            diagnostics_dir=tmp,
            pod_ready_timeout=300,
            release_timeout=120,
        )
        result = Runner(lab, params, all_tests()).run()
        (test,) = [t for t in result.tests if t.id == "ipam/scale"]
        if test.status != "pass":
            sys.exit(f"ipam/scale did not pass: {test.reason or [a.detail for a in test.actions]}")
        steps = {a.action: a for a in test.actions}
        # from the first create call until every pod has its address; from the first delete until all are released
        allocated = steps[f"create {SCALE_PODS} pod(s)"].seconds + steps[f"wait for {SCALE_PODS} address(es)"].seconds
        released = steps[f"delete {SCALE_PODS} pod(s)"].seconds + steps[f"wait for {SCALE_PODS} release(s)"].seconds
        own = sum(lab.start_seconds[-SCALE_PODS:]) / SCALE_PODS
    print(
        f"ipam/scale: {SCALE_PODS} pods allocated in {allocated:.2f} s = {allocated / SCALE_PODS * 1000:.1f} ms "
        f"per allocation; the double's own time per pod {own * 1000:.1f} ms "
        f"(runner overhead {max(0.0, allocated / SCALE_PODS - own) * 1000:.1f} ms per pod)"
    )
    print(
        f"ipam/scale: {SCALE_PODS} addresses released in {released:.2f} s "
        f"= {released / SCALE_PODS * 1000:.1f} ms per release (the double tears each pod down in its delete call)"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, LabCluster(Path(tmp), nodes=NODES) as lab:
        params = Parameters(apps=APPS, tests=("connectivity", "apps"), diagnostics_dir=tmp, probe_timeout=2)
        runner = Runner(lab, params, all_tests())
        start = time.monotonic()
        ready_at: list[float] = []
        original = runner.ctx.wait_pods

        def timed_wait(names: list[str], report_stuck: bool = True) -> dict[str, PodInfo]:
            started = original(names, report_stuck)
            ready_at.append(time.monotonic())
            return started

        runner.ctx.wait_pods = timed_wait  # type: ignore[method-assign]
        result = runner.run()
        wall = time.monotonic() - start
    if not result.passed or not ready_at:
        sys.exit(f"the run did not pass: {result.setup_error or [t.id for t in result.tests if t.status != 'pass']}")
    setup = ready_at[0] - start
    slowest_probe = max(a.seconds for t in result.tests for a in t.actions)
    critical = setup + slowest_probe
    probes = sum(len(t.actions) for t in result.tests)
    pods = len(runner.ctx.pods)
    print(f"{pods} pods on {NODES} nodes, {probes} probes, concurrency {params.concurrency}")
    print(f"setup until the slowest pod was ready: {setup:6.2f} s")
    print(f"slowest single probe:                  {slowest_probe:6.2f} s")
    print(f"critical path:                         {critical:6.2f} s")
    print(
        f"wall time:                             {wall:6.2f} s  = {wall / critical:.2f}x the critical path "
        "(target <= 1.25x, < 30 s)"
    )
    scale()


if __name__ == "__main__":
    main()

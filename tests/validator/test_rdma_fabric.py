"""rdma/bandwidth's proof of fabric: the counters script run for real (sh) on sysfs trees laid out as the drivers
lay them out, one per pod, read through the suite's actions; the verdict fails when ib_write_bw's bytes did not
cross the devices (a silent fallback to TCP)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from spider_validate import rdma_fabric
from spider_validate.context import RunContext
from spider_validate.kube import ExecResult
from spider_validate.model import Outcome
from spider_validate.params import Parameters
from spider_validate.rdma_probes import Bandwidth

from tests.validator.test_perf_probes import DRIVERS, counters_tree


class Pods:
    """Each pod's exec runs the real command here, with the pod's own sysfs tree (SYSFS, as the script reads it)."""

    def __init__(self, trees: dict[str, Path]) -> None:
        self.trees = trees

    def exec(self, namespace: str, pod: str, command: Sequence[str], timeout: float) -> ExecResult:
        env = {"SYSFS": str(self.trees[pod]), "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(list(command), env=env, capture_output=True, text=True, timeout=timeout)
        return ExecResult(proc.returncode, proc.stdout, proc.stderr)


def prove(tmp_path: Path, dev: str, grown_by: int, gbps: float) -> Outcome:
    tx, rx, unit_bytes, other, _ = DRIVERS[dev]
    trees = {pod: tmp_path / pod for pod in ("rdma-client", "rdma-server")}
    for tree in trees.values():
        counters_tree(tree, dev, {tx: 100, rx: 200, other: 0})
    ctx = RunContext(Pods(trees), Parameters(), "run", "ns")  # type: ignore[arg-type]  # exec is all it calls
    devices = {pod: dev for pod in trees}
    read = rdma_fabric.read(ctx, devices)
    assert isinstance(read, tuple) and read[1].ok
    before = read[0]
    for tree in trees.values():
        counters_tree(tree, dev, {tx: 100 + grown_by // unit_bytes, rx: 200 + grown_by // unit_bytes, other: 5})
    bw = Bandwidth(65536, gbps, gbps, "Gb/sec")
    return rdma_fabric.proof(ctx, "rdma-client", "rdma-server", devices, before, bw, 5)


@pytest.mark.parametrize("dev", sorted(DRIVERS))
def test_counters_account_for_the_bytes_ib_write_bw_reports(tmp_path: Path, dev: str) -> None:
    outcome = prove(tmp_path, dev, grown_by=int(10e9 / 8 * 5), gbps=10.0)  # 10 Gb/s for 5 s
    assert outcome.ok, outcome.detail
    assert outcome.data["tool_bytes"] == 6250000000


@pytest.mark.parametrize("dev", sorted(DRIVERS))
def test_traffic_that_did_not_cross_the_device_fails(tmp_path: Path, dev: str) -> None:
    outcome = prove(tmp_path, dev, grown_by=1_000_000, gbps=10.0)  # 1 MB counted, 6.25 GB reported
    assert not outcome.ok and "less than 0.5 of it crossed the RDMA device" in outcome.detail


def test_a_pod_without_the_device_says_so(tmp_path: Path) -> None:
    ctx = RunContext(Pods({"rdma-client": tmp_path}), Parameters(), "run", "ns")  # type: ignore[arg-type]
    outcome = rdma_fabric.read(ctx, {"rdma-client": "mlx5_0"})
    assert (
        isinstance(outcome, Outcome)
        and not outcome.ok
        and "no counters for mlx5_0" in outcome.detail
        and "no port 1" in outcome.detail
    )

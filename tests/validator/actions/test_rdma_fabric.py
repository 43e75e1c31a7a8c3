"""rdma/bandwidth's proof of fabric: the counters script run for real (sh) on sysfs trees laid out as the drivers
lay them out, one per pod, read through the suite's actions; the verdict fails when ib_write_bw's bytes did not
cross the devices (a silent fallback to TCP)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from spider_validate.actions import fabric as rdma_fabric
from spider_validate.cluster.api import ExecResult
from spider_validate.engine.context import RunContext
from spider_validate.engine.model import Outcome
from spider_validate.engine.params import Parameters
from spider_validate.probes.rdma import Bandwidth

from tests.validator.probes.test_perf_probes import DRIVERS, counters_tree


class Pods:
    """Each pod's exec runs the real command here, with the pod's own sysfs tree (SYSFS, as the script reads it)."""

    def __init__(self, trees: dict[str, Path]) -> None:
        self.trees = trees

    def exec(self, namespace: str, pod: str, command: Sequence[str], timeout: float) -> ExecResult:
        env = {"SYSFS": str(self.trees[pod]), "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(list(command), env=env, capture_output=True, text=True, timeout=timeout)
        return ExecResult(proc.returncode, proc.stdout, proc.stderr)


SENDER, RECEIVER = "rdma-client", "rdma-server"
TEN_GBPS_FOR_5S = int(10e9 / 8 * 5)  # the bytes ib_write_bw reports at 10 Gb/s over 5 s


def prove(tmp_path: Path, dev: str, grown: dict[str, tuple[int, int]], gbps: float) -> Outcome:
    """The proof after each pod's device counted `grown[pod]` = (bytes sent, bytes received) during the test."""
    tx, rx, unit_bytes, other, _ = DRIVERS[dev]
    trees = {pod: tmp_path / pod for pod in (SENDER, RECEIVER)}
    for tree in trees.values():
        counters_tree(tree, dev, {tx: 100, rx: 200, other: 0})
    ctx = RunContext(Pods(trees), Parameters(), "run", "ns")  # type: ignore[arg-type]  # exec is all it calls
    devices = {pod: dev for pod in trees}
    read = rdma_fabric.read(ctx, devices)
    assert isinstance(read, tuple) and read[1].ok
    before = read[0]
    for pod, tree in trees.items():
        sent, received = grown[pod]
        counters_tree(tree, dev, {tx: 100 + sent // unit_bytes, rx: 200 + received // unit_bytes, other: 5})
    bw = Bandwidth(65536, gbps, gbps, "Gb/sec")
    return rdma_fabric.proof(ctx, SENDER, RECEIVER, devices, before, bw, 5)


@pytest.mark.parametrize("dev", sorted(DRIVERS))
def test_counters_account_for_the_bytes_ib_write_bw_reports(tmp_path: Path, dev: str) -> None:
    both = (TEN_GBPS_FOR_5S, TEN_GBPS_FOR_5S)
    outcome = prove(tmp_path, dev, {SENDER: both, RECEIVER: both}, gbps=10.0)
    assert outcome.ok, outcome.detail
    assert outcome.data["tool_bytes"] == 6250000000


@pytest.mark.parametrize("dev", sorted(DRIVERS))
def test_traffic_that_did_not_cross_the_device_fails(tmp_path: Path, dev: str) -> None:
    outcome = prove(tmp_path, dev, {pod: (1_000_000, 1_000_000) for pod in (SENDER, RECEIVER)}, gbps=10.0)
    assert not outcome.ok and "less than 0.5 of it crossed the RDMA device" in outcome.detail  # 1 MB of 6.25 GB


@pytest.mark.parametrize("dev", sorted(DRIVERS))
@pytest.mark.parametrize(
    ("moved", "ok"),
    [({SENDER, RECEIVER}, True), ({SENDER}, False), ({RECEIVER}, False)],
    ids=["both", "sender", "receiver"],
)
def test_the_senders_sent_and_the_receivers_received_counters_must_both_have_moved(
    tmp_path: Path, dev: str, moved: set[str], ok: bool
) -> None:
    """As on a real run, each side counts one direction: the sender's device sent the bytes, the receiver's
    received them. A run where only one side's device counted them (the other's traffic went elsewhere) fails."""
    grown = {
        SENDER: (TEN_GBPS_FOR_5S if SENDER in moved else 0, 0),
        RECEIVER: (0, TEN_GBPS_FOR_5S if RECEIVER in moved else 0),
    }
    outcome = prove(tmp_path, dev, grown, gbps=10.0)
    assert outcome.ok is ok, outcome.detail
    if not ok:
        assert "less than 0.5 of it crossed the RDMA device" in outcome.detail


def test_a_pod_without_the_device_says_so(tmp_path: Path) -> None:
    ctx = RunContext(Pods({"rdma-client": tmp_path}), Parameters(), "run", "ns")  # type: ignore[arg-type]
    outcome = rdma_fabric.read(ctx, {"rdma-client": "mlx5_0"})
    assert (
        isinstance(outcome, Outcome)
        and not outcome.ok
        and "no counters for mlx5_0" in outcome.detail
        and "no port 1" in outcome.detail
    )

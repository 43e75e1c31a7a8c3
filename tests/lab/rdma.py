"""RDMA for the lab's pods, which this kernel lacks (no rxe, no RDMA device): enough for the rdma suite's tests to
run their real commands, never a claim that RDMA was exercised.

- A device's GID table in a sysfs tree laid out as the kernel lays it out (drivers/infiniband/core/sysfs.c: gids/N,
  gid_attrs/ndevs/N, gid_attrs/types/N; tests/validator/suites/test_rdma.py's rxe_tree for the whole picture),
  handed to every exec as $SYSFS (where the validator's GID script reads, probes/rdma.py). An RDMA pod's address is
  added, IB/RoCE v1 then RoCE v2 (roce_gid_mgmt.c update_gid), when its interface comes up: a macvlan slave's
  addresses join its lower device's table, in shared mode on every node's device (one tree stands for them all).
- perftest's ib_*_bw: tests/lab/perftest_stub.py in the images' bin, with the rates file that lowers a node's figure.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from spider_validate.probes.rdma import sysfs_gid

from tests.lab.cluster import LabCluster

DEVICE = "mlx5_0"  # a ConnectX's name, as the shared mode's device plugin passes it
STUB = Path(__file__).with_name("perftest_stub.py")


class LabRdma:
    """RDMA devices and perftest for the pods named in `pods` (set up as they start); `slow` node -> its Gb/s."""

    def __init__(self, lab: LabCluster, pods: list[str], slow: dict[str, float] | None = None) -> None:
        self.lab, self.slow = lab, slow or {}
        self.port = lab.workdir / "sysfs" / "class" / "infiniband" / DEVICE / "ports" / "1"
        for sub in ("gids", "gid_attrs/ndevs", "gid_attrs/types"):
            (self.port / sub).mkdir(parents=True)
        self.entries = 0
        self.bin = lab.workdir / "image-bin"
        for verb in ("write", "read", "send"):
            (self.bin / f"ib_{verb}_bw").symlink_to(STUB)
        self.rates: dict[str, float] = {}
        lab.kubelet.exec_env["SYSFS"] = str(lab.workdir / "sysfs")
        for pod in pods:
            lab.faults.before_ready[pod] = partial(self.attach, pod)

    def attach(self, name: str, lab: LabCluster, namespace: str) -> None:
        """An RDMA pod about to run gets its address's GIDs; on a slow node, its figure."""
        pod = lab.pod(namespace, name)
        for kind in ("IB/RoCE v1", "RoCE v2"):
            self._add(sysfs_gid(pod.ip), "eth0", kind)
        if pod.node in self.slow:
            self.rates[pod.ip] = self.slow[pod.node]
            (self.bin / "perftest-rates.json").write_text(json.dumps(self.rates))

    def _add(self, gid: str, ndev: str, kind: str) -> None:
        index = self.entries
        self.entries += 1
        (self.port / "gids" / str(index)).write_text(gid + "\n")
        (self.port / "gid_attrs" / "ndevs" / str(index)).write_text(ndev + "\n")
        (self.port / "gid_attrs" / "types" / str(index)).write_text(kind + "\n")

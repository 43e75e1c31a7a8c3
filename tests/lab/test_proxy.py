"""The lab's kube-proxy writes the nodes' Service rules when they change, before a pod's traffic can meet them, not
at every pod's start: writing them into every node at each start made a pod cost an nft run per node (64 nodes:
about 130 runs, a second or more, under the store's lock)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.lab import netns
from tests.lab.cluster import LabCluster

pytestmark = pytest.mark.root
NS = "sv-proxy"


def pod(name: str, node: str, **labels: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": NS, "labels": labels, "annotations": {}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "lab", "args": ["sleep"]}]}}  # fmt: skip


def test_rules_are_written_once_per_change_before_traffic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nft: list[str] = []
    real = netns.sh

    def counted(*args: str, **kwargs: Any) -> Any:
        if args[0] == "nft":
            nft.append(str(kwargs.get("ns")))
        return real(*args, **kwargs)

    with LabCluster(tmp_path, nodes=4) as lab:
        monkeypatch.setattr(netns, "sh", counted)
        lab.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        lab.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": NS},
                    "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": 8080}]}})  # fmt: skip
        for i in range(4):
            lab.create(pod(f"p{i}", f"lab-node-{i}", app="echo" if i == 3 else "other"))
        deadline = time.monotonic() + 120
        while len(lab.start_seconds) < 4:
            assert time.monotonic() < deadline, "the pods did not start"
            time.sleep(0.05)
        assert nft == []  # four starts, one of them a backend: nothing written yet
        lab.exec(NS, "p0", ["true"], timeout=30)
        assert sorted(nft) == sorted(lab.node_ns.values())  # the backend's rule, in every node, before the exec
        rules = real("nft", "list", "chain", "ip", "lab", "pre", ns=lab.node_ns["lab-node-1"]).stdout
        assert f"map {{ 0 : {lab.pod(NS, 'p3').ip} }}:8080" in rules
        lab.exec(NS, "p1", ["true"], timeout=30)
        assert len(nft) == 4  # no change since: nothing more written

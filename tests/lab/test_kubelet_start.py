"""The double's kubelet shows a pod Running only with its server listening: a server that ends before it listens
leaves its pod Failed (restartPolicy Never), not Running at the kubelet's next pass with nothing answering."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from subprocess import Popen

import pytest
from spider_validate.engine import manifests
from spider_validate.engine.params import Parameters

from tests.lab import netns
from tests.lab.cluster import LabCluster
from tests.validator.suites.test_servers_lab import NETWORK, namespace

__all__ = ["namespace"]  # the fixture of a namespace of the double


def test_a_server_that_ends_before_it_listens_leaves_its_pod_failed_never_running(
    lab: LabCluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawn = netns.spawn

    def crashing(ns: str, args: Sequence[str], log: Path) -> Popen[bytes]:
        """The server's process exits 3 at once, as agnhost does on a flag it does not know."""
        return spawn(ns, ["sh", "-c", "exit 3"], log)

    monkeypatch.setattr(netns, "spawn", crashing)
    objs = manifests.run_objects("servers", namespace, ["lab-node-0"], NETWORK, Parameters(), "baseline")
    lab.create(next(o for o in objs if o["kind"] == "Pod" and o["metadata"]["name"] == "server-0"))
    deadline, phases = time.monotonic() + 60, []
    while time.monotonic() < deadline and "Failed" not in phases and "Running" not in phases:
        phases.append((lab.get("Pod", "server-0", namespace) or {}).get("status", {}).get("phase"))
        time.sleep(0.05)
    pod = lab.get("Pod", "server-0", namespace) or {}
    assert "Running" not in phases and pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3

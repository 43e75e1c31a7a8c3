"""`up`'s chart phase interrupted as users interrupt it: Ctrl-C in a terminal signals its foreground process group,
the real `spiderpool-rdma up` process and the helm it runs (the stand-in of the chart phase's tests, installing until
it is cancelled, as helm's upgrade --install is); nothing of that run is left running, and `up` again finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import wire
from tests.ops import helm, ssm_session
from tests.ops.deployed import deployed

pytestmark = [pytest.mark.synth, pytest.mark.slow]

CONFIG = {
    "name": "mine",
    "admin_cidr": "192.168.0.0/16",
    "workers": {"instance_type": "m7i.large", "rdma": "none", "count": 1},
}
UP = [str(Path(sys.executable).parent / "spiderpool-rdma"), "up", "--yes", "--until", "chart"]


def test_ctrl_c_while_helm_installs_then_up_again_finishes(
    lab: LabCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = helm.install(tmp_path, monkeypatch)
    args = deployed(tmp_path, CONFIG, wire(lab), ["infra", "cluster"])
    slow = tmp_path / "helm-upgrade.pid"
    process = subprocess.Popen(  # its own process group, as a shell's job is: the group a terminal's Ctrl-C reaches
        [*UP, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HELM_SLOW": str(slow)},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        while not (slow.is_file() and slow.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
            time.sleep(0.1)
        helm_pid = int(slow.read_text())
        os.killpg(process.pid, signal.SIGINT)
        output = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode != 0, output
    assert ssm_session.gone(helm_pid), f"helm {helm_pid} outlived the interrupted up"
    assert "chart" not in json.loads((tmp_path / "out" / "up.mine.json").read_text())["done"], output

    again = subprocess.run([*UP, *args], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "cluster: finished before" in again.stdout and "chart: done in" in again.stdout
    upgrades = [json.loads(line)["args"][0] for line in record.read_text().splitlines()]
    assert upgrades.count("upgrade") == 2  # the interrupted install, then the one that finished

"""`up`'s validated phase as users run it: the real `spiderpool-rdma up` process (its synthesis with the real cdktn),
the kubeconfig the cluster phase wrote pointing at the lab's API server, the real `spider-validate run` it starts;
its exit code, its last line and the report it writes; a failing validation; a Ctrl-C in the middle, then `up`
again finishes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left, wire
from tests.ops.deployed import deployed

pytestmark = [pytest.mark.synth, pytest.mark.slow]

#: Reached from a network outside the VPC (no port forward); one worker without RDMA.
CONFIG = {
    "name": "mine",
    "admin_cidr": "192.168.0.0/16",
    "workers": {"instance_type": "m7i.large", "rdma": "none", "count": 1},
}
#: What the lab's two nodes can prove in seconds.
SELECTION = "--test connectivity/pod-to-pod"
UP = [str(Path(sys.executable).parent / "spiderpool-rdma"), "up", "--yes", "--validate-options", SELECTION]


def up(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*UP, *args], capture_output=True, text=True, timeout=900)


def done(tmp_path: Path) -> list[str]:
    return list(json.loads((tmp_path / "out" / "up.mine.json").read_text())["done"])


def test_up_validates_and_its_last_line_names_the_report(lab: LabCluster, tmp_path: Path) -> None:
    args = deployed(tmp_path, CONFIG, wire(lab), ["infra", "cluster", "chart"])
    run = up(args)
    assert run.returncode == 0, run.stdout + run.stderr
    report = tmp_path / "out" / "validation-mine.html"
    assert re.fullmatch(rf"up to validated in \d+ s; report: {re.escape(str(report))}", run.stdout.splitlines()[-1])
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and "connectivity/pod-to-pod-same-node" in page
    assert "validated: done in" in run.stdout and done(tmp_path) == ["infra", "cluster", "chart", "validated"]
    assert_nothing_left(lab)


def test_a_failing_validation_fails_up_and_says_so(lab: LabCluster, tmp_path: Path) -> None:
    lab.faults.before_ready = {"client-1": lambda lab, ns: lab.stop_server(ns, "server-1")}
    run = up(deployed(tmp_path, CONFIG, wire(lab), ["infra", "cluster", "chart"]))
    assert run.returncode == 1, run.stdout + run.stderr
    report = tmp_path / "out" / "validation-mine.html"
    assert f"Error: spider-validate run failed (exit 1): see its table above and {report}" in run.stderr
    assert "run `spiderpool-rdma up` again with the same --config to resume" in run.stderr
    assert report.is_file() and "validated" not in done(tmp_path)
    assert_nothing_left(lab)


def test_ctrl_c_while_validating_cleans_up_and_up_again_finishes(lab: LabCluster, tmp_path: Path) -> None:
    """The interrupted `up` killed spider-validate 0.25 s after Ctrl-C (subprocess.run), in its cleanup."""
    args = deployed(tmp_path, CONFIG, wire(lab), ["infra", "cluster", "chart"])
    process = subprocess.Popen([*UP, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    while not lab.pods:  # the run's pods are being created: there is something to clean up
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)  # as a terminal's Ctrl-C reaches `up`
    output = process.communicate(timeout=300)[0]
    assert process.returncode != 0 and "interrupted: spider-validate stops" in output, output
    assert_nothing_left(lab)
    assert "validated" not in done(tmp_path)

    again = up(args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "chart: finished before" in again.stdout and "validated: done in" in again.stdout
    assert_nothing_left(lab)

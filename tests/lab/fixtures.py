"""pytest fixtures of the lab: one double for the whole session, faults reset around each test."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from unittest import mock

import click
import pytest
import yaml
from click.testing import CliRunner, Result
from spider_validate.cli import common

from tests.lab import netns
from tests.lab.apiserver import ApiServer, HttpFaults
from tests.lab.cluster import LabCluster
from tests.lab.store import Faults


@pytest.fixture(scope="session")
def lab_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCluster]:
    netns.sweep_dead()  # what an interrupted earlier run left; never what a live one uses
    with LabCluster(tmp_path_factory.mktemp("lab")) as cluster:
        yield cluster
        if id(cluster) in _WIRES:
            _WIRES.pop(id(cluster))[0].stop()
    assert netns.lab_namespaces(cluster.prefix) == []


@pytest.fixture
def lab(lab_session: LabCluster) -> Iterator[LabCluster]:
    lab_session.faults = Faults()
    yield lab_session
    lab_session.faults = Faults()
    if id(lab_session) in _WIRES:  # the wire's faults too: a test's unused fault must not hit the next test
        api = _WIRES[id(lab_session)][0]
        api.http_faults, api.revoked = HttpFaults(), set()


def assert_nothing_left(lab: LabCluster, run_prefix: str = "spider-validate-") -> None:
    """No pod namespace and no object of a run (its namespace, what is in it, a pool it made) survives it. Deletion
    is asynchronous, as in Kubernetes (a pod being started finishes, then goes): allow it a few seconds."""
    expected = {f"{lab.prefix}-fab", *lab.node_ns.values()}

    def leftovers() -> list[object]:
        return [
            *sorted(set(netns.lab_namespaces(lab.prefix)) - expected),
            *[k for k in lab.objects if any(part.startswith(run_prefix) for part in k[1:])],  # in it, or named so
            *lab.pods,
        ]

    deadline = time.monotonic() + 15
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers() == []


def entry_point() -> click.Command:
    """What the installed `spider-validate` script runs: the wheel's in CI's fresh environment, here the editable
    install's (scripts/test-installed-validator.sh)."""
    (script,) = entry_points(group="console_scripts", name="spider-validate")
    command = script.load()
    assert isinstance(command, click.Command)
    return command


@dataclass(frozen=True)
class Outcome:
    """What a run of the installed CLI left: its exit code, and what it printed (`output`: stderr, then stdout)."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stderr + self.stdout


KUBECONFIG_COMMANDS = {"run", "audit", "cleanup", "watch"}  # the commands that connect (--kubeconfig)
_WIRES: dict[int, tuple[ApiServer, Path]] = {}


def wire(lab: LabCluster) -> Path:
    """The lab's API server (tests/lab/apiserver.py), started on first use for the session, and its kubeconfig."""
    if id(lab) not in _WIRES:
        workdir = lab.workdir / "wire"
        workdir.mkdir(exist_ok=True)
        api = ApiServer(lab).start(workdir)
        path = workdir / "kubeconfig"
        path.write_text(yaml.safe_dump(api.kubeconfig()))
        _WIRES[id(lab)] = (api, path)
    return _WIRES[id(lab)][1]


def api_server(lab: LabCluster) -> ApiServer:
    """The wire's server, for the faults at its HTTP layer (`http_faults`, `revoked`); the `lab` fixture resets
    them after each test."""
    wire(lab)
    return _WIRES[id(lab)][0]


def command(lab: LabCluster, args: list[str], diagnostics: Path | None = None) -> list[str]:
    """The installed `spider-validate` script with `args`, and a kubeconfig of the lab's API server for the
    commands that connect."""
    extra = ["--diagnostics-dir", str(diagnostics)] if diagnostics and args[0] == "run" else []
    extra += ["--kubeconfig", str(wire(lab))] if args[0] in KUBECONFIG_COMMANDS else []
    return [str(Path(sys.executable).parent / "spider-validate"), *args, *extra]


def invoke(lab: LabCluster, args: list[str], diagnostics: Path | None = None) -> Outcome:
    """The installed `spider-validate`, a process of its own, with a kubeconfig of the lab's API server: the code
    users run (the `kubernetes` client over TLS, watch and exec over the wire), not the in-process double."""
    proc = subprocess.run(command(lab, args, diagnostics), capture_output=True, text=True, timeout=900)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def invoke_in_process(lab: LabCluster, args: list[str], diagnostics: Path | None = None) -> Result:
    """The CLI in this process, connected to the double itself: for a test that wraps the double (the recording
    authorizer of test_rbac_file.py), which a process of its own cannot reach (docs/lab-apiserver.md)."""
    extra = ["--diagnostics-dir", str(diagnostics)] if diagnostics and args[0] == "run" else []
    with mock.patch.object(common, "connect", return_value=lab):
        return CliRunner().invoke(entry_point(), [*args, *extra], catch_exceptions=False)

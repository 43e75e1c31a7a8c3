"""pytest fixtures of the lab: one double for the whole session, faults reset around each test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from unittest import mock

import click
import pytest
from click.testing import CliRunner, Result
from spider_validate.cli import common

from tests.lab import netns
from tests.lab.cluster import LabCluster
from tests.lab.store import Faults


@pytest.fixture(scope="session")
def lab_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCluster]:
    netns.sweep_dead()  # what an interrupted earlier run left; never what a live one uses
    with LabCluster(tmp_path_factory.mktemp("lab")) as cluster:
        yield cluster
    assert netns.lab_namespaces(cluster.prefix) == []


@pytest.fixture
def lab(lab_session: LabCluster) -> Iterator[LabCluster]:
    lab_session.faults = Faults()
    yield lab_session
    lab_session.faults = Faults()


def assert_nothing_left(lab: LabCluster, run_prefix: str = "spider-validate-") -> None:
    """No pod namespace and no object of a run survives it. Deletion is asynchronous, as in Kubernetes
    (a pod being started finishes, then goes): allow it a few seconds."""
    expected = {f"{lab.prefix}-fab", *lab.node_ns.values()}

    def leftovers() -> list[object]:
        return [
            *sorted(set(netns.lab_namespaces(lab.prefix)) - expected),
            *[k for k in lab.objects if k[1].startswith(run_prefix)],
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


def invoke(lab: LabCluster, args: list[str], diagnostics: Path | None = None) -> Result:
    """The installed CLI, connected to the lab instead of a kubeconfig's API server."""
    extra = ["--diagnostics-dir", str(diagnostics)] if diagnostics and args[0] == "run" else []
    with mock.patch.object(common, "connect", return_value=lab):
        return CliRunner().invoke(entry_point(), [*args, *extra], catch_exceptions=False)

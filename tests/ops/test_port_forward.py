"""The cluster phase's SSM port forward with the AWS CLI and the Session Manager plugin replaced where they are
found (tests/ops/ssm_session.py, each behaviour cited from their source): open once the plugin says it listens,
forwarding to the API, and closed with no process left, whether the block ends well or not."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops import cluster
from tests.ops import ssm_session


@pytest.fixture
def api() -> Iterator[int]:
    """A TCP server on 127.0.0.1 standing for the instance's API port: it answers each connection with a line."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"the API\n")

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def plugin(tmp_path: Path, api: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-ins first on PATH, forwarding to `api`; the file each plugin start is recorded in."""
    record = tmp_path / "sessions.jsonl"
    for key, value in ssm_session.install(tmp_path / "bin", f"127.0.0.1:{api}", record).items():
        monkeypatch.setenv(key, value)
    return record


def through(port: int) -> bytes:
    with socket.create_connection(("localhost", port), timeout=10) as conn:
        return conn.makefile("rb").readline()


def test_the_forward_reaches_the_api_while_open_and_leaves_nothing_after(plugin: Path) -> None:
    port = free_port()
    with cluster.port_forward("us-east-1", "i-0abc", port):
        assert through(port) == b"the API\n"
        (pid,) = ssm_session.started(plugin)
        args = json.loads(plugin.read_text())["args"]
        assert json.loads(args[4])["Parameters"] == {"portNumber": ["6443"], "localPortNumber": [str(port)]}
    assert ssm_session.gone(pid)  # the plugin too, not only the AWS CLI that started it
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_the_forward_is_closed_when_the_phase_fails(plugin: Path) -> None:
    with pytest.raises(RuntimeError), cluster.port_forward("us-east-1", "i-0abc", free_port()):
        raise RuntimeError("the phase failed")
    (pid,) = ssm_session.started(plugin)
    assert ssm_session.gone(pid)


def test_a_port_another_program_holds_is_not_taken_for_the_forward(plugin: Path) -> None:
    """Something answering on the port (a local cluster's 6443) made the forward look open when it had failed."""
    with socket.create_server(("localhost", 0)) as other:
        port = other.getsockname()[1]
        with pytest.raises(cluster.ClusterNotReady) as failed, cluster.port_forward("us-east-1", "i-0abc", port):
            pass
    assert f"did not open localhost:{port}" in str(failed.value) and "Address already in use" in str(failed.value)
    assert all(ssm_session.gone(pid) for pid in ssm_session.started(plugin))

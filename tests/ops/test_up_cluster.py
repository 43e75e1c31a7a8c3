"""`up`'s cluster phase as users run it, the real `spiderpool-rdma up` process: the kubeconfig control-plane-0
publishes in SSM and the nodes' consoles from a moto server (its GetConsoleOutput), the SSM port forward through the
stand-ins for the AWS CLI and the Session Manager plugin (tests/ops/ssm_session.py) to the lab's API server, and
the nodes joining there. A Ctrl-C while the nodes are awaited closes the forward, plugin included; `up` again
finishes the phase and closes it too."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
import yaml
from spider_validate import names

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import wire
from tests.lab.kubelet import KUBELET_VERSION
from tests.ops import ssm_session
from tests.ops.deployed import deployed
from tests.terraform.emulator import MotoServer

pytestmark = [pytest.mark.synth, pytest.mark.slow]

#: Reached through the SSM port forward (no admin_cidr); the plan's nodes: control-plane-0 and worker-0.
CONFIG = {"name": "mine", "workers": {"instance_type": "m7i.large", "rdma": "none", "count": 1}}
PLANNED = ["control-plane-0", "worker-0"]
IMAGE = {
    "ami_id": "ami-00000000000000001",
    "name": "ubuntu-noble-24.04-amd64-server-20260101",
    "owner_id": "099720109477",
    "state": "available",
    "public": True,
    "image_location": "099720109477/ubuntu-noble-24.04-amd64-server-20260101",
    "root_device_type": "ebs",
    "root_device_name": "/dev/sda1",
    "image_type": "machine",
    "architecture": "x86_64",
    "virtualization_type": "hvm",
    "hypervisor": "xen",
    "creation_date": "2026-01-01T00:00:00.000Z",
}


@pytest.fixture
def account(tmp_path: Path) -> Iterator[tuple[MotoServer, dict[str, str]]]:
    """A moto server holding the cluster's nodes (running, tagged as the stack tags them) and its kubeconfig
    parameter as the stack creates it (the placeholder); the environment that points boto3 at it."""
    server = MotoServer.start(tmp_path / "moto", [IMAGE])
    env = {
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=server.url, **_keys())
    for node in PLANNED:
        tags = [{"Key": names.CLUSTER_TAG, "Value": "mine"}, {"Key": names.NODE_TAG, "Value": node}]
        ec2.run_instances(
            ImageId=IMAGE["ami_id"],
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
    ssm(server).put_parameter(
        Name=names.ssm_parameter("mine", names.KUBECONFIG), Value=names.PLACEHOLDER, Type="SecureString"
    )
    yield server, env
    server.stop()


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def ssm(server: MotoServer) -> Any:
    return boto3.client("ssm", region_name="us-east-1", endpoint_url=server.url, **_keys())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Up:
    """A running `spiderpool-rdma up`, its output read line by line as it comes."""

    running: ClassVar[list[Up]] = []

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        command = [str(Path(sys.executable).parent / "spiderpool-rdma"), "up", "--yes", *args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env}
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        Up.running.append(self)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, seconds: float = 600) -> None:
        deadline = time.monotonic() + seconds
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None and time.monotonic() < deadline, "\n".join(self.lines)
            time.sleep(0.1)

    def finish(self) -> int:
        code = self.process.wait(timeout=600)
        self.reader.join(timeout=30)  # the last lines, once stdout is closed
        Up.running.remove(self)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def join(lab: LabCluster, node: str) -> None:
    """A planned node registers as the kubelet registers it (tests/lab/kubelet.py's Node shape)."""
    lab.store.put(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}},
            "spec": {},
            "status": {
                "conditions": [{"type": "Ready", "status": "False"}],  # NotReady: the pod network comes with the chart
                "nodeInfo": {"kubeletVersion": KUBELET_VERSION},
            },
        }
    )


@pytest.fixture
def planned_nodes(lab: LabCluster) -> Iterator[None]:
    yield
    for up in list(Up.running):  # a failed test's `up`: interrupted as a user would, its forward closed
        up.process.send_signal(signal.SIGINT)
        up.finish()
    for node in PLANNED:  # the session's lab goes on without them
        lab.store.remove("Node", node, None)


def test_the_cluster_phase_waits_forwards_and_closes_also_when_interrupted(
    lab: LabCluster, tmp_path: Path, account: tuple[MotoServer, dict[str, str]], planned_nodes: None
) -> None:
    server, env = account
    record = tmp_path / "sessions.jsonl"
    lab_port = yaml.safe_load(wire(lab).read_text())["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1]
    env |= ssm_session.install(tmp_path / "bin", f"127.0.0.1:{lab_port}", record)
    port = free_port()
    args = [*deployed(tmp_path, CONFIG, wire(lab), ["infra"]), "--until", "cluster", "--api-port", str(port)]
    (tmp_path / "out" / "kubeconfig-mine").unlink()  # the cluster phase writes it

    first = Up(args, env)
    first.wait_for("waiting for control-plane-0 to publish the kubeconfig")
    first.wait_for("    worker-0: not started")  # each node's step from its console: moto's holds no step line
    # control-plane-0 publishes the admin kubeconfig (the lab's), as bootstrap/control-plane.sh does
    ssm(server).put_parameter(
        Name=names.ssm_parameter("mine", names.KUBECONFIG), Value=wire(lab).read_text(), Overwrite=True
    )
    first.wait_for("0/2 nodes joined; waiting for control-plane-0, worker-0")
    (pid,) = ssm_session.started(record)  # the forward is open: the nodes were read through it
    first.process.send_signal(signal.SIGINT)
    assert first.finish() != 0
    assert ssm_session.gone(pid), first.output  # closed on the interrupt, plugin included
    kubeconfig = yaml.safe_load((tmp_path / "out" / "kubeconfig-mine").read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://localhost:{port}"
    assert (tmp_path / "out" / "kubeconfig-mine").stat().st_mode & 0o777 == 0o600

    join(lab, "control-plane-0")
    again = Up(args, env)
    again.wait_for("1/2 nodes joined; waiting for worker-0")
    join(lab, "worker-0")
    assert again.finish() == 0, again.output
    assert "cluster: done in" in again.output and again.lines[-1].startswith("up to cluster in ")
    assert all(ssm_session.gone(p) for p in ssm_session.started(record)) and len(ssm_session.started(record)) == 2

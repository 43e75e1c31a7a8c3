"""`spiderpool-rdma status`: what carries the cluster's tag (a moto server), its nodes from the API (the lab's API
server over HTTPS), the chart's release from helm (the fake helm of the chart phase's tests, answering with what
the real helm prints), the last validation and the cost; an API out of reach is said, and the rest still shown."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from click.testing import CliRunner
from spider_validate import names

from ops.cli import main
from tests.lab.cluster import LabCluster
from tests.lab.fixtures import wire
from tests.lab.kubelet import KUBELET_VERSION
from tests.ops import helm
from tests.ops.deployed import deployed
from tests.terraform.emulator import MotoServer

#: Reached from a network outside the VPC: `status` talks to the API directly, without an SSM port forward.
CONFIG = {"name": "mine", "admin_cidr": "192.168.0.0/16"}


@pytest.fixture
def moto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """An emulated AWS account of its own (the moto server with the gaps the sweep needs filled), holding the
    cluster's VPC; boto3 reaches it by AWS_ENDPOINT_URL."""
    server = MotoServer.start(tmp_path / "moto", [])
    for key, value in {
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.client("ec2", region_name="us-east-1").create_vpc(
        CidrBlock="10.42.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": names.CLUSTER_TAG, "Value": "mine"}]}],
    )
    yield server
    server.stop()


def test_status_shows_the_nodes_the_release_and_the_last_validation(
    lab: LabCluster, tmp_path: Path, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = helm.real_status(tmp_path)
    helm.install(tmp_path, monkeypatch, status=shown)
    args = deployed(tmp_path, CONFIG, wire(lab), ["infra", "cluster", "chart", "validated"])
    (tmp_path / "out" / "validation-mine.html").write_text("<html></html>")

    out = CliRunner().invoke(main, ["status", *args], catch_exceptions=False)

    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any(line.startswith("  vpcs vpc-") for line in lines), out.output
    assert f"nodes ({len(lab.node_ns)}):" in lines
    for node in lab.node_ns:
        assert [line.split() for line in lines if line.split()[:1] == [node]] == [[node, "Ready", KUBELET_VERSION]]
    release = json.loads(shown.read_text())
    assert (
        f"chart release rdma in kube-system: revision {release['version']}, {release['info']['status']}, chart "
        f"spiderpool-rdma {release['chart']['metadata']['version']}" in lines
    )
    assert any(
        line.startswith("last validation (") and line.endswith(f"passed, report {tmp_path}/out/validation-mine.html")
        for line in lines
    ), out.output
    assert "USD/day" in out.output


def test_status_without_a_release_says_none(
    lab: LabCluster, tmp_path: Path, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    helm.install(tmp_path, monkeypatch)
    out = CliRunner().invoke(main, ["status", *deployed(tmp_path, CONFIG, wire(lab), ["infra", "cluster"])])
    assert out.exit_code == 0, out.output
    assert "chart release: none (rdma in kube-system is not installed)" in out.output.splitlines()


def test_an_unreachable_api_is_said_and_the_cloud_part_still_shown(
    tmp_path: Path, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    helm.install(tmp_path, monkeypatch)
    with socket.socket() as closed:  # a port nothing listens on: a dead port forward
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    out = CliRunner().invoke(main, ["status", *deployed(tmp_path, CONFIG, kubeconfig, ["infra", "cluster", "chart"])])
    assert out.exit_code == 0, out.output
    (said,) = [line for line in out.output.splitlines() if line.startswith("nodes and chart:")]
    assert f"cannot be reached: cannot reach the API server https://127.0.0.1:{port}" in said, said
    assert any(line.startswith("  vpcs vpc-") for line in out.output.splitlines()) and "USD/day" in out.output
    assert not (tmp_path / "helm.jsonl").exists()  # helm is not asked what the API cannot answer

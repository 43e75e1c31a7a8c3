"""Every object `spider-validate run` creates passes Kubernetes 1.33 (strict) and the Spiderpool CRD schemas."""

from __future__ import annotations

from typing import Literal

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner
from spider_validate import cli
from spider_validate.engine import manifests
from spider_validate.engine.params import Parameters

from tests.crds import is_custom, validate_custom


@pytest.mark.parametrize("attach", ["default", "secondary"])
@pytest.mark.parametrize("apps", [0, 3])
def test_run_objects_validate(attach: Literal["default", "secondary"], apps: int) -> None:
    params = Parameters(apps=apps, image_registry="mirror.example.com")
    network = manifests.Network("kube-system", "ipvlan-ens5", attach, ("pool-a",))
    objs = manifests.run_objects(
        "0101000000-abcd", "spider-validate-0101000000-abcd", ["worker-0", "worker-1"], network, params
    )
    assert len([o for o in objs if o["kind"] == "Pod"]) == 4 + 2 * apps
    for obj in objs:
        assert obj["metadata"]["labels"]["spider-validate/run"] == "0101000000-abcd"
        if is_custom(obj):
            validate_custom(obj)
        else:
            kubernetes_validate.validate(obj, "1.33", strict=True)
        for container in obj.get("spec", {}).get("containers", []):
            assert container["image"].startswith("mirror.example.com/")


def test_manifests_command_prints_what_run_creates() -> None:
    out = CliRunner().invoke(cli.main, ["manifests", "--nodes", "a,b", "--attach", "secondary"])
    assert out.exit_code == 0, out.output
    docs = list(yaml.safe_load_all(out.output))
    assert [d["kind"] for d in docs].count("Pod") == 4
    pod = next(d for d in docs if d["kind"] == "Pod")
    assert pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "kube-system/ipvlan-ens5"


def test_images_and_list_commands() -> None:
    out = CliRunner().invoke(cli.main, ["images", "--image", "client=registry.local/tools:1"])
    assert out.output.splitlines() == [
        "docker.io/nicolaka/netshoot:v0.14",
        "registry.k8s.io/e2e-test-images/agnhost:2.53@sha256:99c6b4bb4a1e1df3f0b3752168c89358794d02258ebebc26bf21c29399011a85",
        "registry.local/tools:1",
    ]  # no RDMA image without --image rdma=REF: it has no default (none published has what the tests need)
    rdma = CliRunner().invoke(cli.main, ["images", "--image", "rdma=registry.local/rdma-tools:1"]).output
    assert "registry.local/rdma-tools:1" in rdma.splitlines()
    listing = CliRunner().invoke(cli.main, ["list"]).output
    assert "connectivity/pod-to-pod-cross-node" in listing and "apps/http-identity" in listing


@pytest.mark.parametrize("command", ["run", "list", "images", "manifests", "cleanup", "kubeconfig"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    out = CliRunner().invoke(cli.main, [command, "--help"])
    assert out.exit_code == 0 and "Example" in out.output


def test_bad_usage_exits_2() -> None:
    assert CliRunner().invoke(cli.main, ["run", "--image", "nosuch=x"]).exit_code == 2
    assert CliRunner().invoke(cli.main, ["run", "--test", "nothing-matches-this"]).exit_code == 2

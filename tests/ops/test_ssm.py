"""The SSM transport of the day-two operations: the command a node runs (with the real `sh` SSM's AWS-RunShellScript
runs it with) and the Run Command calls (against moto's SSM and EC2)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from spider_validate import names

from ops import ssm
from ops.ssm import OperationError, SsmNodes

SCRIPT = '#!/usr/bin/env bash\nprintf "%s|" "$@"; echo; echo "shell: $BASH_VERSION" >&2; exit "${EXIT:-0}"\n'


@pytest.fixture
def bootstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "echo.sh").write_text(SCRIPT)
    monkeypatch.setattr(ssm, "BOOTSTRAP_DIR", tmp_path)
    return tmp_path


def test_the_command_runs_the_script_with_bash_from_sh_with_its_arguments_as_given(bootstrap: Path) -> None:
    line = ssm.command("echo.sh", ["a b", "it's", "", "$HOME"])
    proc = subprocess.run(["sh", "-c", line], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "a b|it's||$HOME|\n" and "shell: 5" in proc.stderr
    failing = subprocess.run(
        ["sh", "-c", line], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "EXIT": "3"}
    )
    assert failing.returncode == 3
    assert not list(Path("/root").glob("spiderpool-rdma-echo.sh.*"))  # removed, also after a failure


def test_the_script_travels_whole(bootstrap: Path) -> None:
    encoded = ssm.command("echo.sh", []).split("printf %s ", 1)[1].split(" ", 1)[0]
    assert base64.b64decode(encoded).decode() == SCRIPT


@mock_aws
def test_nodes_are_the_clusters_running_instances_and_a_run_is_one_run_command(bootstrap: Path) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def launch(cluster: str, node: str) -> str:
        tags = [{"Key": names.CLUSTER_TAG, "Value": cluster}, {"Key": names.NODE_TAG, "Value": node}]
        spec = [{"ResourceType": "instance", "Tags": tags}]
        return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=spec)["Instances"][0][
            "InstanceId"
        ]

    cp0 = launch("c1", "control-plane-0")
    launch("c1", "worker-0")
    launch("other", "control-plane-0")
    nodes = SsmNodes("c1", "us-east-1", poll=0)
    assert nodes.names() == ["control-plane-0", "worker-0"]
    result = nodes.run("control-plane-0", "echo.sh", ["x"], timeout=60)
    assert result.code == 0
    (sent,) = boto3.client("ssm", region_name="us-east-1").list_commands()["Commands"]
    # moto 5.2 adds every instance when a command names no Targets (moto/ssm/models.py, _get_instance_ids_from_targets
    # with no filter): the request named cp0 alone, which its invocation shows.
    assert sent["DocumentName"] == "AWS-RunShellScript" and cp0 in sent["InstanceIds"]
    assert sent["Parameters"]["commands"] == [ssm.command("echo.sh", ["x"])]
    with pytest.raises(OperationError, match="worker-9 is not a running instance of cluster c1"):
        nodes.run("worker-9", "echo.sh", [], timeout=60)
    with pytest.raises(OperationError, match="no running instance is tagged"):
        SsmNodes("gone", "us-east-1").names()

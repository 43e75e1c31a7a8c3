"""The cluster phase's node progress: each step's start and end as bootstrap/lib.sh's `log` writes them to the
console (its own function, run by bash), read back the way EC2's GetConsoleOutput returns them (base64, against
moto's EC2)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from unittest import mock

import boto3
from moto import mock_aws
from spider_validate import names

from ops import cluster
from tests.conftest import REPO


def console(tmp_path: Path, steps: list[tuple[str, str]]) -> str:
    """What the node's console shows: lib.sh's `log` for each (step, message), with the kernel's lines around."""
    script = 'source "$1"; shift; while (($#)); do SPR_STEP="$1" log "$2"; shift 2; done'
    args = [a for step in steps for a in step]
    run = subprocess.run(
        ["bash", "-c", script, "bash", str(REPO / "bootstrap" / "lib.sh"), *args],
        env={"SPR_LOG_DIR": str(tmp_path), "SPR_STATE": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return "[    0.000000] Linux version 6.8.0-1021-aws\n" + run.stderr + "[   42.1] cloud-init[812]: done\n"


def test_the_last_step_line_says_where_a_node_is(tmp_path: Path) -> None:
    assert cluster.bootstrap_step(console(tmp_path, [])) == "not started"
    text = console(tmp_path, [("packages", "start"), ("packages", "done"), ("containerd", "start")])
    assert cluster.bootstrap_step(text).startswith("containerd start (")
    failed = console(tmp_path, [("kubeadm-join", "start"), ("kubeadm-join", "FAILED: exit 1; see join.log")])
    assert cluster.bootstrap_step(failed).startswith("kubeadm-join failed: exit 1; see join.log (")


@mock_aws
def test_each_node_is_read_from_its_console_output(tmp_path: Path) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    for node in ("control-plane-0", "worker-0"):
        ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": names.CLUSTER_TAG, "Value": "mine"}, {"Key": names.NODE_TAG, "Value": node}],
                }
            ],
        )
    outputs = {
        "control-plane-0": console(tmp_path, [("kubeadm-init", "start")]),
        "worker-0": console(tmp_path, [("packages", "start")]),
    }
    real = ec2.get_console_output

    def output(InstanceId: str, Latest: bool) -> dict[str, str]:
        """moto's own answer, with the text this node's console holds (moto makes up a fixed one) as boto3 returns
        it: the API's base64 decoded by botocore (botocore/handlers.py, decode_console_output, after-call of
        ec2.GetConsoleOutput), as it decoded moto's sample."""
        answer = real(InstanceId=InstanceId, Latest=Latest)
        assert "\n" in answer["Output"]  # text, not base64
        tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [InstanceId]}])["Tags"]
        node = next(t["Value"] for t in tags if t["Key"] == names.NODE_TAG)
        return {**answer, "Output": outputs[node]}

    with mock.patch.object(ec2, "get_console_output", side_effect=output):
        progress = cluster.bootstrap_progress(ec2, "mine")
    assert sorted(progress) == ["control-plane-0", "worker-0"]
    assert progress["control-plane-0"].startswith("kubeadm-init start (")
    assert progress["worker-0"].startswith("packages start (")

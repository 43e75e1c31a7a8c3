"""`spider-validate kubeconfig` against moto's SSM and EC2 emulation, including its error cases."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from click.testing import CliRunner
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count
from spider_validate.cli import main

REGION = "eu-west-1"
ADMIN_CONF = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [
        {"name": "demo", "cluster": {"server": "https://api.demo.internal:6443", "certificate-authority-data": "Q0E="}}
    ],
    "contexts": [{"name": "kubernetes-admin@demo", "context": {"cluster": "demo", "user": "kubernetes-admin"}}],
    "current-context": "kubernetes-admin@demo",
    "users": [{"name": "kubernetes-admin", "user": {"client-certificate-data": "Y2VydA==", "client-key-data": "a2V5"}}],
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


def deploy(value: str, with_instance: bool = True) -> str:
    """What the stack and control-plane-0 leave in the account: the parameter and the tagged instance."""
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/spiderpool-rdma/demo/kubeconfig", Type="SecureString", Value=value, Tier="Advanced"
    )
    if not with_instance:
        return ""
    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    reply = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "spiderpool-rdma/cluster", "Value": "demo"},
                    {"Key": "spiderpool-rdma/node", "Value": "control-plane-0"},
                ],
            }
        ],
    )
    return str(reply["Instances"][0]["InstanceId"])


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["kubeconfig", "--cluster", "demo", "--region", REGION, "-o", str(tmp_path / "kc"), *args]
    )
    return result.exit_code, result.output


def test_writes_a_private_kubeconfig_through_the_port_forward(aws: None, tmp_path: Path) -> None:
    instance = deploy(yaml.safe_dump(ADMIN_CONF))
    code, out = run(tmp_path, "--local-port", "16443")
    assert code == 0, out
    written = yaml.safe_load((tmp_path / "kc").read_text())
    assert written["clusters"][0]["cluster"]["server"] == "https://localhost:16443"
    assert written["users"] == ADMIN_CONF["users"]
    assert stat.S_IMODE((tmp_path / "kc").stat().st_mode) == 0o600
    assert f"--target {instance}" in out and "AWS-StartPortForwardingSession" in out
    params = out.split("--parameters ")[1].splitlines()[0].strip("'")
    assert json.loads(params) == {"portNumber": ["6443"], "localPortNumber": ["16443"]}


def test_missing_parameter_says_what_to_check(aws: None, tmp_path: Path) -> None:
    code, out = run(tmp_path)
    assert code == 2
    assert "no kubeconfig for cluster 'demo' in eu-west-1" in out and "/spiderpool-rdma/demo/kubeconfig" in out
    assert not (tmp_path / "kc").exists()


def test_placeholder_means_the_control_plane_is_still_bootstrapping(aws: None, tmp_path: Path) -> None:
    deploy("pending")
    code, out = run(tmp_path)
    assert code == 2 and "has not published its kubeconfig yet" in out


@set_initial_no_auth_action_count(3)
def test_access_denied_names_the_missing_permissions(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy("pending", with_instance=False)  # one allowed call (the next two create a powerless user)
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="reader")
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # forget the admin credentials
    code, out = run(tmp_path)
    assert code == 2
    assert "access denied reading /spiderpool-rdma/demo/kubeconfig" in out and "ssm:GetParameter" in out


def test_an_existing_file_is_replaced_with_mode_0600(aws: None, tmp_path: Path) -> None:
    """os.open(O_CREAT, 0o600) keeps an existing file's mode: the admin credentials must never stay 0644."""
    deploy(yaml.safe_dump(ADMIN_CONF))
    target = tmp_path / "kc"
    target.write_text("old")
    target.chmod(0o644)
    code, out = run(tmp_path)
    assert code == 0, out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and "mode 0600" in out
    assert yaml.safe_load(target.read_text())["users"] == ADMIN_CONF["users"]
    assert [p.name for p in tmp_path.iterdir()] == ["kc"]  # no temporary file left


@set_initial_no_auth_action_count(4)
def test_denied_ec2_lookup_is_a_message(aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy(yaml.safe_dump(ADMIN_CONF), with_instance=False)  # one allowed call, then a user that may read SSM only
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="ssm-reader")
    iam.put_user_policy(
        UserName="ssm-reader",
        PolicyName="ssm",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="ssm-reader")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    code, out = run(tmp_path)
    assert code == 2, out
    assert "access denied looking up control-plane-0 (ec2:DescribeInstances)" in out and "Traceback" not in out
    assert not (tmp_path / "kc").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", ""], "--region '' is not an AWS region such as us-east-1"),
        (["--region", "us east 1"], "--region 'us east 1' is not an AWS region"),
        (["--profile", "nosuch"], "The config profile (nosuch) could not be found"),
        (["-o", "missing-dir/kc"], "directory missing-dir does not exist"),
    ],
    ids=["empty-region", "malformed-region", "unknown-profile", "missing-output-dir"],
)
def test_bad_aws_input_is_a_message(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))  # no profiles at all
    base = ["kubeconfig", "--cluster", "demo", "--region", REGION, "-o", "kc"]
    result = CliRunner().invoke(main, [*base, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert sorted(p.name for p in tmp_path.iterdir()) == []

"""What each node role may do, evaluated with IAM's rule (tests/iam_model.py) on the synthesized policies."""

from __future__ import annotations

import json
import tarfile
from typing import Any

import pytest
import yaml

from cdk.constructs.iam import role_name_prefix
from tests.conftest import REPO, SHARED, VARIANTS, Synthesized
from tests.iam_model import ACCOUNT, MANAGED, allows, key_allows, resolve, resource_arn, role_policies

pytestmark = pytest.mark.synth

#: What the SSM agent needs: Session Manager ("Create a custom IAM role for Session Manager", Systems Manager user
#: guide, getting-started-create-iam-instance-profile.html: ssm:UpdateInstanceInformation and the ssmmessages
#: actions) and Run Command (the ec2messages actions), as AmazonSSMManagedInstanceCore grants them.
AGENT_ACTIONS = ["ssm:UpdateInstanceInformation"] + [
    action
    for statement in MANAGED["AmazonSSMManagedInstanceCore"]["Statement"]
    for action in statement["Action"]
    if action.startswith(("ssmmessages:", "ec2messages:"))
]
#: The repository of the EFA device plugin image, from the chart's own values (aws/eks-charts).
EFA_IMAGE = yaml.safe_load((SHARED / "upstream" / "aws-efa-k8s-device-plugin" / "values.yaml").read_text())["image"][
    "repository"
]
#: ... and the one the umbrella chart's EFA profile deploys.
PROFILE_IMAGE = yaml.safe_load((REPO / "charts" / "spiderpool-rdma" / "values-aws-efa.yaml").read_text())[
    "aws-efa-k8s-device-plugin"
]["image"]["repository"]
#: The repository of dranet's image, from the aws-dranet chart's own values (aws/eks-charts, the packaged chart).
with tarfile.open(SHARED / "upstream" / "charts" / "aws-dranet-1.0.0.tgz") as _chart:
    DRANET_IMAGE = yaml.safe_load(_chart.extractfile("aws-dranet/values.yaml").read())["image"]["repository"]  # type: ignore[union-attr]
ECR_PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]


def parameter_arn(s: Synthesized, name: str) -> str:
    return f"arn:aws:ssm:{s.config.region}:{ACCOUNT}:parameter{s.config.ssm_path}/{name}"


def repository_arn(image: str) -> str:
    """`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO` -> the repository's ARN (ECR resource types)."""
    host, repo = image.split("/", 1)
    account, _, _, region = host.split(".")[:4]
    return f"arn:aws:ecr:{region}:{account}:repository/{repo}"


@pytest.fixture(params=list(VARIANTS))
def variant(request: pytest.FixtureRequest, synthesized: dict[str, Synthesized]) -> Synthesized:
    return synthesized[request.param]


def test_workers_read_only_the_worker_join_command(variant: Synthesized) -> None:
    worker = role_policies(variant.stack, variant.config.region, "worker")
    assert allows(worker, "ssm:GetParameter", parameter_arn(variant, "join-worker"))
    for name in ("join-control-plane", "kubeconfig"):
        for action in ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"):
            assert not allows(worker, action, parameter_arn(variant, name)), (action, name)
    assert allows(worker, "ssm:GetParameter", parameter_arn(variant, "kubernetes-version"))  # the version to install
    assert not allows(worker, "ssm:PutParameter", parameter_arn(variant, "join-worker"))
    assert not allows(worker, "ssm:GetParameter", f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/other/secret")


def test_control_planes_publish_the_parameters_and_read_only_what_joining_needs(variant: Synthesized) -> None:
    cp = role_policies(variant.stack, variant.config.region, "control-plane")
    for name in ("join-worker", "join-control-plane", "kubeconfig", "kubernetes-version"):
        assert allows(cp, "ssm:PutParameter", parameter_arn(variant, name))
    for name in ("join-control-plane", "kubernetes-version"):  # joining, the version to install; withdrawing
        assert allows(cp, "ssm:GetParameter", parameter_arn(variant, name))
    assert not allows(cp, "ssm:GetParameter", parameter_arn(variant, "kubeconfig"))
    assert not allows(cp, "ssm:GetParameter", f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/other/secret")


def test_only_control_planes_ask_for_and_answer_a_member_replacement(variant: Synthesized) -> None:
    """The rights a replaced control-plane-0's etcd member removal adds (bootstrap/replace-member.sh): reading and
    writing one parameter of the cluster, for the control-plane role only, whose nodes hold etcd's client certificates
    anyway; no node may send commands to another (ssm:SendCommand) or read any other parameter by it."""
    arn = parameter_arn(variant, "etcd-member-replacement")
    cp = role_policies(variant.stack, variant.config.region, "control-plane")
    worker = role_policies(variant.stack, variant.config.region, "worker")
    assert allows(cp, "ssm:GetParameter", arn) and allows(cp, "ssm:PutParameter", arn)
    assert not allows(cp, "ssm:DeleteParameter", arn)
    for action in ("ssm:GetParameter", "ssm:PutParameter", "ssm:GetParametersByPath"):
        assert not allows(worker, action, arn), action
    document = f"arn:aws:ssm:{variant.config.region}::document/AWS-RunShellScript"
    instance = f"arn:aws:ec2:{variant.config.region}:{ACCOUNT}:instance/i-0123456789abcdef0"
    for policies in (cp, worker):
        assert not allows(policies, "ssm:SendCommand", document) and not allows(policies, "ssm:SendCommand", instance)


@pytest.mark.parametrize("role", ["control-plane", "worker"])
def test_every_node_runs_the_ssm_agent(variant: Synthesized, role: str) -> None:
    policies = role_policies(variant.stack, variant.config.region, role)
    assert [a for a in AGENT_ACTIONS if not allows(policies, a, "*")] == []
    assert not variant.resources("aws_iam_role_policy_attachment"), "managed policies grant more than the agent needs"


def test_efa_workers_pull_the_image_of_their_device_driver_and_nothing_else(variant: Synthesized) -> None:
    """The device plugin's image in plugin mode, dranet's in DRA mode: never both, never another repository."""
    worker = role_policies(variant.stack, variant.config.region, "worker")
    efa = variant.config.workers.rdma.value == "efa"
    dra = variant.config.workers.rdma_devices.value == "dra"
    # GetAuthorizationToken has no resource type: "*" is its only resource (ECR API permissions reference).
    assert allows(worker, "ecr:GetAuthorizationToken", "*") == efa
    for action in ECR_PULL:
        for image in (EFA_IMAGE, PROFILE_IMAGE):
            assert allows(worker, action, repository_arn(image)) == (efa and not dra), (action, image)
        assert allows(worker, action, repository_arn(DRANET_IMAGE)) == (efa and dra), action
        assert not allows(worker, action, "arn:aws:ecr:us-west-2:999999999999:repository/eks/aws-efa-k8s-device-plugin")
        assert not allows(worker, action, "arn:aws:ecr:us-west-2:999999999999:repository/eks/dranet")
        assert not allows(worker, action, "arn:aws:ecr:us-west-2:602401143452:repository/eks/coredns")
    cp = role_policies(variant.stack, variant.config.region, "control-plane")
    assert not allows(cp, "ecr:BatchGetImage", repository_arn(EFA_IMAGE))
    assert not allows(cp, "ecr:BatchGetImage", repository_arn(DRANET_IMAGE))


def test_a_variant_covers_each_efa_device_mode() -> None:
    modes = {data.get("workers", {}).get("rdma_devices", "plugin") for data in VARIANTS.values()}
    assert modes == {"plugin", "dra"}


#: The key's uses by SSM for a SecureString (standard tier: Encrypt, Decrypt; advanced: GenerateDataKey, Decrypt,
#: "How AWS Systems Manager Parameter Store uses AWS KMS", systems-manager-parameter-store.html) and others it grants.
KMS_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:CreateGrant"]


@pytest.mark.parametrize("role", ["control-plane", "worker"])
def test_the_cluster_key_is_usable_only_through_ssm(variant: Synthesized, role: str) -> None:
    """kms:ViaService is the endpoint of the service that calls KMS on the principal's behalf (AWS KMS developer
    guide, conditions-kms.html, "kms:ViaService"): with SSM's, the node reads (and a control plane writes) its
    parameters; with S3's, a control plane writes and reads etcd's snapshots; a direct call (no such key) or one through
    another service is refused: a node's credentials alone cannot decrypt what the key protects."""
    policies = role_policies(variant.stack, variant.config.region, role)
    region = variant.config.region
    (key,) = variant.resources("aws_kms_key")
    key_arn = resource_arn(variant.stack, region, "aws_kms_key", key)
    ssm = {"kms:ViaService": f"ssm.{region}.amazonaws.com"}
    writes = role == "control-plane"
    assert allows(policies, "kms:Decrypt", key_arn, ssm)
    assert (
        allows(policies, "kms:Encrypt", key_arn, ssm) == allows(policies, "kms:GenerateDataKey", key_arn, ssm) == writes
    )
    others = [{"kms:ViaService": f"{service}.{region}.amazonaws.com"} for service in ("secretsmanager", "s3")]
    # A control plane also encrypts and reads back etcd's snapshots in the backup bucket (tests/cdk/test_backups.py).
    backups = {"kms:GenerateDataKey", "kms:Decrypt"} if writes else set()
    for context in [{}, *others]:
        allowed = {a for a in KMS_ACTIONS if allows(policies, a, key_arn, context)}
        assert allowed == (backups if context.get("kms:ViaService", "").startswith("s3.") else set()), context


#: An account administrator's IAM policy (AdministratorAccess: every action on every resource).
ADMINISTRATOR = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]


def key(variant: Synthesized) -> tuple[dict[str, Any], str]:
    (name, body), *_ = variant.resources("aws_kms_key").items()
    return json.loads(resolve(variant.stack, variant.config.region, body["policy"])), resource_arn(
        variant.stack, variant.config.region, "aws_kms_key", name
    )


def test_who_decrypts_the_clusters_secrets(variant: Synthesized) -> None:
    """Without `secret_readers` the account's IAM decides: anyone whose IAM policies allow kms:Decrypt on the key
    (an administrator, a power user) can read the admin kubeconfig from SSM. With it, only the named readers decrypt,
    and the node roles through SSM; an administrator still administers the key (and could change its policy)."""
    policy, arn = key(variant)
    readers = variant.config.secret_readers
    admin = f"arn:aws:iam::{ACCOUNT}:role/Admin"
    ssm = {"kms:ViaService": f"ssm.{variant.config.region}.amazonaws.com"}
    assert key_allows(policy, admin, ADMINISTRATOR, "kms:Decrypt", arn) == (not readers)
    assert key_allows(policy, admin, ADMINISTRATOR, "kms:PutKeyPolicy", arn)
    assert key_allows(policy, admin, ADMINISTRATOR, "kms:Encrypt", arn, ssm)  # Terraform's placeholders
    assert key_allows(policy, admin, ADMINISTRATOR, "kms:CreateGrant", arn) == (not readers)
    assert not key_allows(policy, f"arn:aws:iam::{ACCOUNT}:role/nobody", [], "kms:Decrypt", arn, ssm)
    for reader in readers:
        assert key_allows(policy, reader, [], "kms:Decrypt", arn)
    for role in ("worker", "control-plane"):
        node = f"arn:aws:iam::{ACCOUNT}:role/{role_name_prefix(variant.config.name, role)}20261207000000001"
        node_policies = role_policies(variant.stack, variant.config.region, role)
        assert key_allows(policy, node, node_policies, "kms:Decrypt", arn, ssm)
        assert not key_allows(policy, node, node_policies, "kms:Decrypt", arn)  # only through SSM (and S3, below)
        s3 = {"kms:ViaService": f"s3.{variant.config.region}.amazonaws.com"}  # etcd's backups (test_backups.py)
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            assert key_allows(policy, node, node_policies, action, arn, s3) == (role == "control-plane")


def test_node_roles_write_session_logs_to_the_session_group_only(variant: Synthesized) -> None:
    """A logged Session Manager shell: the agent checks the group (DescribeLogGroups takes no resource) and streams to
    it; the flow log group and any other group stay out of a node's reach."""
    region, name = variant.config.region, variant.config.name
    group = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/spiderpool-rdma/{name}"
    for role in ("worker", "control-plane"):
        policies = role_policies(variant.stack, region, role)
        assert allows(policies, "logs:DescribeLogGroups", "*")
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            assert allows(policies, action, f"{group}/sessions:log-stream:alice-0123456789abcdef0")
            assert not allows(policies, action, f"{group}/vpc-flow-logs:log-stream:eni-0123")
            assert not allows(policies, action, f"arn:aws:logs:{region}:{ACCOUNT}:log-group:other:log-stream:x")
        assert not allows(policies, "logs:DeleteLogGroup", f"{group}/sessions")

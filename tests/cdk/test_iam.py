"""What each node role may do, evaluated with IAM's rule (tests/iam_model.py) on the synthesized policies."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import REPO, SHARED, VARIANTS, Synthesized
from tests.iam_model import ACCOUNT, MANAGED, allows, resource_arn, role_policies

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


@pytest.mark.parametrize("role", ["control-plane", "worker"])
def test_every_node_runs_the_ssm_agent(variant: Synthesized, role: str) -> None:
    policies = role_policies(variant.stack, variant.config.region, role)
    assert [a for a in AGENT_ACTIONS if not allows(policies, a, "*")] == []
    assert not variant.resources("aws_iam_role_policy_attachment"), "managed policies grant more than the agent needs"


def test_efa_workers_pull_the_device_plugin_image_and_nothing_else(variant: Synthesized) -> None:
    worker = role_policies(variant.stack, variant.config.region, "worker")
    efa = variant.config.workers.rdma.value == "efa"
    # GetAuthorizationToken has no resource type: "*" is its only resource (ECR API permissions reference).
    assert allows(worker, "ecr:GetAuthorizationToken", "*") == efa
    for action in ECR_PULL:
        for image in (EFA_IMAGE, PROFILE_IMAGE):
            assert allows(worker, action, repository_arn(image)) == efa, (action, image)
        assert not allows(worker, action, "arn:aws:ecr:us-west-2:999999999999:repository/eks/aws-efa-k8s-device-plugin")
        assert not allows(worker, action, "arn:aws:ecr:us-west-2:602401143452:repository/eks/coredns")
    cp = role_policies(variant.stack, variant.config.region, "control-plane")
    assert not allows(cp, "ecr:BatchGetImage", repository_arn(EFA_IMAGE))


#: The key's uses by SSM for a SecureString (standard tier: Encrypt, Decrypt; advanced: GenerateDataKey, Decrypt,
#: "How AWS Systems Manager Parameter Store uses AWS KMS", systems-manager-parameter-store.html) and others it grants.
KMS_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:CreateGrant"]


@pytest.mark.parametrize("role", ["control-plane", "worker"])
def test_the_cluster_key_is_usable_only_through_ssm(variant: Synthesized, role: str) -> None:
    """kms:ViaService is the endpoint of the service that calls KMS on the principal's behalf (AWS KMS developer
    guide, conditions-kms.html, "kms:ViaService"): with SSM's, the node reads (and a control plane writes) its
    parameters; a direct call (no such key) or one through another service is refused: a node's credentials alone
    cannot decrypt what the key protects."""
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
    for context in [{}, *others]:
        assert [a for a in KMS_ACTIONS if allows(policies, a, key_arn, context)] == [], context

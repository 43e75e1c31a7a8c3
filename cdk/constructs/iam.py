"""Instance roles: SSM Session Manager, and exactly the cluster's SSM parameters (writes only for control planes)."""

from __future__ import annotations

import json

from cdktn_provider_aws.iam_instance_profile import IamInstanceProfile
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

from cdk.config import ClusterConfig
from cdk.constructs.secrets import ClusterSecrets

READ_ACTIONS = ["ssm:GetParameter"]
WRITE_ACTIONS = ["ssm:PutParameter"]


def assume_role_policy(service: str, condition: dict[str, object] | None = None) -> str:
    """The trust policy that lets one AWS service assume a role (optionally only under a condition)."""
    statement: dict[str, object] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def parameter_policy(parameter_arns: list[str], key_arn: str, *, write: bool) -> dict[str, object]:
    """Read (and for control planes, write) the cluster's own parameters, and use its key for them only."""
    kms = ["kms:Decrypt"] + (["kms:Encrypt", "kms:GenerateDataKey"] if write else [])
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ClusterParameters",
                "Effect": "Allow",
                "Action": READ_ACTIONS + (WRITE_ACTIONS if write else []),
                "Resource": parameter_arns,
            },
            {
                "Sid": "ClusterKeyThroughSsm",
                "Effect": "Allow",
                "Action": kms,
                "Resource": key_arn,
                "Condition": {"StringLike": {"kms:ViaService": "ssm.*.amazonaws.com"}},
            },
        ],
    }


class NodeRoles(Construct):
    """One role and instance profile per node role (control-plane, worker)."""

    def __init__(self, scope: Construct, id_: str, *, config: ClusterConfig, secrets: ClusterSecrets) -> None:
        super().__init__(scope, id_)
        assume = assume_role_policy("ec2.amazonaws.com")
        arns = [p.arn for p in secrets.parameters.values()]
        self.profiles: dict[str, IamInstanceProfile] = {}
        self.policies: dict[str, IamRolePolicy] = {}  # the role's inline policy, which instances wait for
        for role_name in ("control-plane", "worker"):
            role = IamRole(
                self,
                f"{role_name}-role",
                name_prefix=f"{config.name[:20]}-{role_name}-"[:38],
                assume_role_policy=assume,
            )
            IamRolePolicyAttachment(
                self,
                f"{role_name}-ssm-core",
                role=role.name,
                policy_arn=f"arn:{secrets.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
            )
            self.policies[role_name] = IamRolePolicy(
                self,
                f"{role_name}-parameters",
                role=role.id,
                policy=json.dumps(parameter_policy(arns, secrets.key.arn, write=role_name == "control-plane")),
            )
            self.profiles[role_name] = IamInstanceProfile(
                self,
                f"{role_name}-profile",
                name_prefix=f"{config.name[:20]}-{role_name}-"[:38],
                role=role.name,
            )

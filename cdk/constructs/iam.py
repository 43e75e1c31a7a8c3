"""Instance roles: the SSM agent, exactly the parameters each role needs, and ECR for the EFA device's driver."""

from __future__ import annotations

import json

from cdktn_provider_aws.iam_instance_profile import IamInstanceProfile
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct
from spider_validate import names

from cdk.constructs.secrets import ClusterSecrets
from cdk.ipplan import Role

#: The SSM agent's own calls: Session Manager ("Create a custom IAM role for Session Manager", Systems Manager user
#: guide, getting-started-create-iam-instance-profile.html) and Run Command (ec2messages, as in the managed
#: AmazonSSMManagedInstanceCore, which would also let every node read every parameter of the account).
SSM_AGENT_ACTIONS = [
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
]
#: What the SSM agent does in a logged session's log group.
SESSION_LOG_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
#: The EFA device plugin's image: `602401143452.dkr.ecr.<region>.amazonaws.com/eks/aws-efa-k8s-device-plugin`
#: (aws/eks-charts stable/aws-efa-k8s-device-plugin values.yaml; the chart's default region is us-west-2, and EKS
#: serves the same repository from this account in most regions: "View Amazon container image registries for
#: Amazon EKS add-ons"). Pulling needs what the EKS node policy grants (AmazonEC2ContainerRegistryReadOnly), here
#: scoped to that one repository in any region.
EFA_PLUGIN_REPOSITORY = ("602401143452", "eks/aws-efa-k8s-device-plugin")
#: In DRA mode (`rdma_devices: dra`) the EFA device plugin is off and aws-dranet serves EFA instead: its image is
#: `602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/dranet` (aws/eks-charts stable/aws-dranet values.yaml), the
#: same account's registry.
DRANET_REPOSITORY = ("602401143452", "eks/dranet")
ECR_PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
#: Which of the cluster's parameters (cdk/constructs/secrets.py) each role reads and writes: workers read their
#: join command and the version to install; control planes publish them all and read what joining one needs. The
#: member-replacement request (bootstrap/replace-member.sh) is the control planes' own: a replaced control-plane-0 asks
#: and a live control plane answers there. Whoever can write it holds the control-plane role, whose nodes hold etcd's
#: client certificates anyway (a control plane can remove members itself); no worker reads or writes it.
PARAMETER_ACCESS: dict[Role, dict[str, list[str]]] = {
    "worker": {"read": [names.JOIN_WORKER, names.KUBERNETES_VERSION], "write": []},
    "control-plane": {
        "read": [
            names.JOIN_CONTROL_PLANE,
            names.KUBERNETES_VERSION,
            names.ENCRYPTION_CONFIG,
            names.ETCD_MEMBER_REPLACEMENT,
        ],
        "write": [
            names.JOIN_WORKER,
            names.JOIN_CONTROL_PLANE,
            names.KUBECONFIG,
            names.KUBERNETES_VERSION,
            names.ENCRYPTION_CONFIG,
            names.ETCD_MEMBER_REPLACEMENT,
        ],
    },
}


def role_name_prefix(cluster_name: str, role: Role) -> str:
    """The name prefix of a node role and its instance profile (AWS appends a unique suffix)."""
    return f"{cluster_name[:20]}-{role}-"[:38]


def assume_role_policy(service: str, condition: dict[str, object] | None = None) -> str:
    """The trust policy that lets one AWS service assume a role (optionally only under a condition)."""
    statement: dict[str, object] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def node_policy(
    reads: list[str],
    writes: list[str],
    key_arn: str,
    session_log_group: str,
    *,
    partition: str,
    pull_repository: tuple[str, str] | None,
) -> dict[str, object]:
    """The SSM agent, the cluster's own parameters through its key, and (EFA workers) the one image repository,
    (account, name), of what gives pods the EFA device: the device plugin or dranet."""
    statements: list[dict[str, object]] = [
        {"Sid": "SsmAgent", "Effect": "Allow", "Action": SSM_AGENT_ACTIONS, "Resource": "*"},
        # A logged session (constructs/sessions.py): the agent checks the group's encryption (DescribeLogGroups takes
        # no resource), then streams to it ("Create a custom IAM role for Session Manager", the logging policy).
        {"Sid": "SessionLogGroupCheck", "Effect": "Allow", "Action": ["logs:DescribeLogGroups"], "Resource": "*"},
        {
            "Sid": "SessionLogs",
            "Effect": "Allow",
            "Action": SESSION_LOG_ACTIONS,
            "Resource": [session_log_group, f"{session_log_group}:*"],
        },
        {"Sid": "ReadClusterParameters", "Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": reads},
    ]
    if writes:
        statements.append(
            {"Sid": "WriteClusterParameters", "Effect": "Allow", "Action": ["ssm:PutParameter"], "Resource": writes}
        )
    statements.append(
        {
            "Sid": "ClusterKeyThroughSsm",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"] + (["kms:Encrypt", "kms:GenerateDataKey"] if writes else []),
            "Resource": key_arn,
            "Condition": {"StringLike": {"kms:ViaService": "ssm.*.amazonaws.com"}},
        }
    )
    if pull_repository:
        account, repository = pull_repository
        statements += [
            # GetAuthorizationToken has no resource type: "*" is the only resource it takes.
            {"Sid": "EcrToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
            {
                "Sid": "EfaDriverImage",
                "Effect": "Allow",
                "Action": ECR_PULL_ACTIONS,
                "Resource": f"arn:{partition}:ecr:*:{account}:repository/{repository}",
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


class NodeRoles(Construct):
    """One role and instance profile per node role (control-plane, worker)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,  # the roles' and profiles' name prefix (its first 20 characters)
        secrets: ClusterSecrets,  # the parameters each role reads or writes, and the key that encrypts them
        # The (account, repository) whose images workers pull: EFA_PLUGIN_REPOSITORY or DRANET_REPOSITORY for EFA
        # workers, by rdma_devices; None for other workers (nothing to pull from a private registry).
        worker_repository: tuple[str, str] | None,
    ) -> None:
        super().__init__(scope, id_)
        assume = assume_role_policy("ec2.amazonaws.com")
        arns = {name: p.arn for name, p in secrets.parameters.items()}
        self.roles: dict[Role, IamRole] = {}
        self.profiles: dict[Role, IamInstanceProfile] = {}
        #: the role's inline policies, which its instances wait for (EtcdBackups adds the control planes' second one)
        self.policies: dict[Role, list[IamRolePolicy]] = {}
        for role_name, access in PARAMETER_ACCESS.items():
            role = self.roles[role_name] = IamRole(
                self,
                f"{role_name}-role",
                name_prefix=role_name_prefix(cluster_name, role_name),
                assume_role_policy=assume,
            )
            policy = node_policy(
                [arns[n] for n in access["read"]],
                [arns[n] for n in access["write"]],
                secrets.key.arn,
                secrets.log_group_arn(secrets.session_log_group_name),
                partition=secrets.partition,
                pull_repository=worker_repository if role_name == "worker" else None,
            )
            self.policies[role_name] = [
                IamRolePolicy(self, f"{role_name}-node", role=role.id, policy=json.dumps(policy))
            ]
            self.profiles[role_name] = IamInstanceProfile(
                self,
                f"{role_name}-profile",
                name_prefix=role_name_prefix(cluster_name, role_name),
                role=role.name,
            )

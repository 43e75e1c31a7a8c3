"""The cluster's KMS key and the SSM SecureString parameters that carry join data and the kubeconfig."""

from __future__ import annotations

import json

from cdktn_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktn_provider_aws.data_aws_partition import DataAwsPartition
from cdktn_provider_aws.kms_alias import KmsAlias
from cdktn_provider_aws.kms_key import KmsKey
from cdktn_provider_aws.ssm_parameter import SsmParameter
from constructs import Construct
from spider_validate import names

#: Parameters under the cluster's SSM path. Terraform creates them with a placeholder through the
#: write-only `value_wo` (never stored in the state) so that destroy removes them; the control planes
#: overwrite them, workers and other control planes read them.
#: Each with the tier the control planes write it with (bootstrap/control-plane.sh): the admin kubeconfig exceeds the
#: standard tier's 4 KB. The tier must match: a different one would be a change for Terraform's next plan.
PARAMETERS = {
    names.JOIN_WORKER: ("kubeadm join command for workers (token and CA certificate hash)", "Standard"),
    names.JOIN_CONTROL_PLANE: (
        "kubeadm join command for further control planes (adds the certificate key), while one is missing",
        "Standard",
    ),
    names.KUBECONFIG: ("admin kubeconfig of the cluster", "Advanced"),
    names.KUBERNETES_VERSION: ("the exact Kubernetes version every node installs", "Standard"),
    names.ENCRYPTION_CONFIG: (
        "the API servers' EncryptionConfiguration (the key of Secrets in etcd), while a control plane is missing",
        "Standard",
    ),
    names.ETCD_MEMBER_REPLACEMENT: (
        "a replaced control-plane-0's request that its dead etcd member leave etcd, and the live ones' answer",
        "Standard",
    ),
}


#: Administering the key, as AWS's default key policy lets key administrators (KMS developer guide,
#: key-policy-default.html), with kms:Create* narrowed to CreateAlias (a grant, kms:CreateGrant, could give Decrypt);
#: writing SecureStrings (Terraform's placeholders) and the tags the provider sets.
KEY_ADMINISTRATION = [
    *("kms:CreateAlias", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*"),
    *("kms:Disable*", "kms:Get*", "kms:Delete*", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"),
    *("kms:RotateKeyOnDemand", "kms:TagResource", "kms:UntagResource", "kms:Encrypt", "kms:GenerateDataKey*"),
]
#: What SSM asks of the key for a SecureString on a node's behalf (standard tier: Encrypt, Decrypt; advanced:
#: GenerateDataKey, Decrypt; "How AWS Systems Manager Parameter Store uses AWS KMS").
SSM_USES = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]


class ClusterSecrets(Construct):
    """One customer-managed KMS key (flow and session logs, SSM parameters) and the cluster's SSM parameters."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,  # names the key's alias, the parameters' path and the flow log group
        region: str,  # the flow log group's region, whose CloudWatch Logs may use the key
        readers: list[str],  # IAM role or user ARNs that alone may decrypt; empty: the account's IAM decides
        node_roles: list[str],  # the node roles' name prefixes: with readers, they decrypt through SSM only
        backup_writers: list[str],  # the control planes' role name prefix: with readers, they use the key through S3
    ) -> None:
        super().__init__(scope, id_)
        self.partition = DataAwsPartition(self, "partition").partition
        self.account_id = DataAwsCallerIdentity(self, "account").account_id
        self.log_group_name = f"/spiderpool-rdma/{cluster_name}/vpc-flow-logs"
        self.session_log_group_name = f"/spiderpool-rdma/{cluster_name}/sessions"  # constructs/sessions.py
        self.region = region
        self.key = KmsKey(
            self,
            "key",
            description=f"{cluster_name}: VPC flow logs, session logs and SSM parameters",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=json.dumps(self._key_policy(region, readers, node_roles, backup_writers)),
        )
        alias = KmsAlias(self, "alias", name=names.kms_alias(cluster_name), target_key_id=self.key.key_id)
        self.parameters = {
            name: SsmParameter(
                self,
                f"param-{name}",
                name=names.ssm_parameter(cluster_name, name),
                description=description,
                type="SecureString",
                # The alias, the one form of the key that the nodes give SSM too (SPR_KMS_KEY): SSM records the KeyId
                # as given and the provider reads it back into `key_id` (terraform-provider-aws
                # internal/service/ssm/parameter.go, resourceParameterRead: `d.Set(names.AttrKeyID, detail.KeyId)`):
                # an ARN here and an alias on the node would be a change at every plan after the first boot, and the
                # provider's update would then send the empty `value` instead of the write-only one.
                key_id=alias.name,
                tier=tier,
                value_wo=names.PLACEHOLDER,
                value_wo_version=1,
            )
            for name, (description, tier) in PARAMETERS.items()
        }

    def _key_policy(
        self, region: str, readers: list[str], node_roles: list[str], backup_writers: list[str]
    ) -> dict[str, object]:
        """Without readers, the account's IAM policies decide who may use the key (the account's root is given
        kms:*, which delegates to them). With readers, the account only administers it and writes with it: decrypting
        is for the readers, for the node roles through SSM, and for the control planes through S3 (etcd's backups,
        cdk/constructs/backups.py)."""
        root = f"arn:{self.partition}:iam::{self.account_id}:root"
        account: dict[str, object] = {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": root}}
        statements: list[dict[str, object]] = [{**account, "Action": "kms:*", "Resource": "*"}]
        if readers:
            roles = [f"arn:{self.partition}:iam::{self.account_id}:role/{prefix}*" for prefix in node_roles]
            statements = [
                {**account, "Action": KEY_ADMINISTRATION, "Resource": "*"},
                {
                    "Sid": "NamedReadersDecrypt",
                    "Effect": "Allow",
                    "Principal": {"AWS": readers},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                },
                {
                    "Sid": "NodeRolesThroughSsm",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": SSM_USES,
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"kms:CallerAccount": self.account_id},
                        "StringLike": {"kms:ViaService": "ssm.*.amazonaws.com"},
                        "ArnLike": {"aws:PrincipalArn": roles},
                    },
                },
                {
                    "Sid": "ControlPlanesThroughS3",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"kms:CallerAccount": self.account_id},
                        "StringLike": {"kms:ViaService": "s3.*.amazonaws.com"},
                        "ArnLike": {
                            "aws:PrincipalArn": [
                                f"arn:{self.partition}:iam::{self.account_id}:role/{prefix}*"
                                for prefix in backup_writers
                            ]
                        },
                    },
                },
            ]
        return {
            "Version": "2012-10-17",
            "Statement": [
                *statements,
                {
                    "Sid": "LogGroupsEncrypt",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "ArnEquals": {
                            "kms:EncryptionContext:aws:logs:arn": [
                                self.log_group_arn(self.log_group_name),
                                self.log_group_arn(self.session_log_group_name),
                            ]
                        }
                    },
                },
            ],
        }

    def log_group_arn(self, name: str) -> str:
        """A log group of the cluster's account and region, as CloudWatch Logs names it in the encryption context."""
        return f"arn:{self.partition}:logs:{self.region}:{self.account_id}:log-group:{name}"

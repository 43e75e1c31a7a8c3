"""Where the control planes keep etcd's snapshots: an S3 bucket only they write and only named principals read."""

from __future__ import annotations

import json

from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from cdktn_provider_aws.s3_bucket import S3Bucket
from cdktn_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktn_provider_aws.s3_bucket_ownership_controls import S3BucketOwnershipControls, S3BucketOwnershipControlsRule
from cdktn_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktn_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktn_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktn_provider_aws.s3_bucket_versioning import S3BucketVersioningA, S3BucketVersioningVersioningConfiguration
from cdktn_provider_aws.ssm_parameter import SsmParameter
from constructs import Construct
from spider_validate import names

from cdk.checkov import checkov_skip
from cdk.constructs.secrets import ClusterSecrets

#: What a reader may do: list the snapshots and their versions, and download them.
READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions"]


def bucket_policy(bucket_arn: str, writer: str, readers: list[str]) -> dict[str, object]:
    """TLS only; the writer alone puts objects; the writer (which restores) and the readers alone get them.

    The denials name who may, by `aws:PrincipalArn` (the role's ARN for any of its sessions: IAM user guide, "AWS
    global condition context keys"), so that nobody else in the account reads a snapshot whatever their own IAM
    policies say: an explicit deny wins over any allow ("Policy evaluation logic"). The allows grant the same
    principals what they do, so that no identity policy needs to name the bucket. Nobody may delete: a version is
    removed by the lifecycle rule, or with the bucket by `destroy` (which deletes every version first).
    """
    objects = f"{bucket_arn}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, objects],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "OnlyTheControlPlanesWrite",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": writer}},
            },
            {
                "Sid": "OnlyNamedPrincipalsRead",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": objects,
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [writer, *readers]}},
            },
            {
                "Sid": "ControlPlanesBackUpAndRestore",
                "Effect": "Allow",
                "Principal": {"AWS": writer},
                "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
                "Resource": [bucket_arn, objects],
            },
            *(
                [
                    {
                        "Sid": "NamedReadersRead",
                        "Effect": "Allow",
                        "Principal": {"AWS": readers},
                        "Action": READ_ACTIONS,
                        "Resource": [bucket_arn, objects],
                    }
                ]
                if readers
                else []
            ),
        ],
    }


def writer_policy(key_arn: str, bucket_parameter_arn: str) -> dict[str, object]:
    """What the bucket policy cannot grant the control planes: the bucket's name (an SSM parameter) and the cluster
    key, through S3 only, to encrypt a snapshot (GenerateDataKey) and read it back (Decrypt)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "BackupBucketName",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter"],
                "Resource": bucket_parameter_arn,
            },
            {
                "Sid": "ClusterKeyThroughS3",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": key_arn,
                "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
            },
        ],
    }


class EtcdBackups(Construct):
    """A versioned bucket encrypted with the cluster key, public access blocked, snapshots expiring after
    `retention_days`, and the SSM parameter that tells the control planes its name."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,  # the bucket's name prefix and the parameter's path
        secrets: ClusterSecrets,  # the key the bucket encrypts with
        writer: IamRole,  # the control planes' role: the one principal that writes (and restores)
        readers: list[str],  # the other principals that may read the snapshots (IAM ARNs)
        retention_days: int,  # how long a snapshot is kept (current and overwritten versions alike)
    ) -> None:
        super().__init__(scope, id_)
        # Bucket names are global: a prefix and Terraform's unique suffix, never a name another account can take
        # first. `destroy` deletes the snapshots with the bucket: they are encrypted with the cluster key, which
        # destroy schedules for deletion as well.
        self.bucket = S3Bucket(self, "bucket", bucket_prefix=f"{cluster_name}-etcd-"[:37], force_destroy=True)
        checkov_skip(
            self.bucket,
            "CKV_AWS_18",
            "a log bucket per cluster is not made here; audit reads with CloudTrail S3 data events (README)",
        )
        checkov_skip(
            self.bucket, "CKV_AWS_144", "one-region cluster: a replica would hold the cluster's CA keys elsewhere"
        )
        checkov_skip(self.bucket, "CKV2_AWS_62", "nothing consumes events of this bucket")
        S3BucketOwnershipControls(
            self,
            "ownership",
            bucket=self.bucket.id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )
        S3BucketPublicAccessBlock(
            self,
            "public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketVersioningA(
            self,
            "versioning",
            bucket=self.bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=self.bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=(
                        S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                            sse_algorithm="aws:kms", kms_master_key_id=secrets.key.arn
                        )
                    ),
                    bucket_key_enabled=True,  # one data key per bucket and period: fewer KMS requests
                )
            ],
        )
        S3BucketLifecycleConfiguration(
            self,
            "retention",
            bucket=self.bucket.id,
            rule=[
                S3BucketLifecycleConfigurationRule(
                    id="retention",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter()],  # the whole bucket: it holds nothing else
                    expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=retention_days)],
                    noncurrent_version_expiration=[
                        S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=retention_days)
                    ],
                    abort_incomplete_multipart_upload=[
                        S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=1)
                    ],
                )
            ],
        )
        S3BucketPolicy(
            self,
            "policy",
            bucket=self.bucket.id,
            policy=json.dumps(bucket_policy(self.bucket.arn, writer.arn, readers)),
        )
        self.parameter = SsmParameter(
            self,
            "name",
            name=names.ssm_parameter(cluster_name, names.ETCD_BACKUP_BUCKET),
            description="the S3 bucket of the cluster's etcd snapshots",
            type="String",
            value=self.bucket.id,
        )
        checkov_skip(self.parameter, "CKV2_AWS_34", "a bucket name, no secret: readable by the control planes only")
        self.writer_policy = IamRolePolicy(
            self,
            "writer",
            role=writer.id,
            policy=json.dumps(writer_policy(secrets.key.arn, self.parameter.arn)),
        )

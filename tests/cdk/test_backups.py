"""The etcd backup bucket: who may write and read its snapshots, evaluated with IAM's rule for requests within one
account (tests/iam_model.py allows_in_account) on the synthesized bucket policy and the node roles' policies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cdk.constructs.backups import bucket_policy
from tests.conftest import Synthesized
from tests.iam_model import ACCOUNT, allows, allows_in_account, resolve, role_policies

pytestmark = pytest.mark.synth

ADMIN = f"arn:aws:iam::{ACCOUNT}:role/admin"  # anyone else of the account, whatever its own policies allow
READER = f"arn:aws:iam::{ACCOUNT}:role/restore-drill"
EVERYTHING = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]


def only(stack: dict[str, Any], rtype: str) -> tuple[str, dict[str, Any]]:
    ((name, body),) = stack["resource"][rtype].items()
    return name, body


def role_arn(stack: dict[str, Any], role: str) -> str:
    (name,) = [n for n in stack["resource"]["aws_iam_role"] if f"_{role}-role_" in n]
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


@pytest.fixture
def default(synthesized: dict[str, Synthesized]) -> Synthesized:
    return synthesized["default-efa"]


def test_the_bucket_is_versioned_encrypted_with_the_cluster_key_private_and_expires_snapshots(
    default: Synthesized,
) -> None:
    stack = default.stack
    bucket, body = only(stack, "aws_s3_bucket")
    ref = f"${{aws_s3_bucket.{bucket}.id}}"
    assert body["bucket_prefix"] == "spiderpool-rdma-etcd-" and body["force_destroy"] is True
    assert only(stack, "aws_s3_bucket_versioning")[1]["versioning_configuration"] == {"status": "Enabled"}
    (rule,) = only(stack, "aws_s3_bucket_server_side_encryption_configuration")[1]["rule"]
    key = next(iter(stack["resource"]["aws_kms_key"]))
    assert rule["apply_server_side_encryption_by_default"] == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": f"${{aws_kms_key.{key}.arn}}",
    }
    block = only(stack, "aws_s3_bucket_public_access_block")[1]
    assert all(
        block[k] is True
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    (lifecycle,) = only(stack, "aws_s3_bucket_lifecycle_configuration")[1]["rule"]
    days = default.config.etcd_backups.retention_days
    assert lifecycle["expiration"] == [{"days": days}] and lifecycle["noncurrent_version_expiration"] == [
        {"noncurrent_days": days}
    ]
    for rtype in ("aws_s3_bucket_policy", "aws_s3_bucket_versioning", "aws_s3_bucket_lifecycle_configuration"):
        assert only(stack, rtype)[1]["bucket"] == ref


def test_only_the_control_planes_write_and_read_the_snapshots(default: Synthesized) -> None:
    stack, region = default.stack, default.config.region
    bucket = next(iter(stack["resource"]["aws_s3_bucket"]))
    policy = json.loads(resolve(stack, region, only(stack, "aws_s3_bucket_policy")[1]["policy"]))
    snapshot = f"arn:aws:s3:::{bucket}/etcd/control-plane-0/20261207T010000Z.tar.gz"
    control_plane, worker = role_arn(stack, "control-plane"), role_arn(stack, "worker")
    cp_policies = role_policies(stack, region, "control-plane")
    for action in ("s3:PutObject", "s3:GetObject"):
        assert allows_in_account(cp_policies, policy, control_plane, action, snapshot)
        assert not allows_in_account(role_policies(stack, region, "worker"), policy, worker, action, snapshot)
        assert not allows_in_account(EVERYTHING, policy, ADMIN, action, snapshot)  # an explicit deny beats any allow
    assert allows_in_account(cp_policies, policy, control_plane, "s3:ListBucket", f"arn:aws:s3:::{bucket}")
    assert not allows_in_account(cp_policies, policy, control_plane, "s3:DeleteObject", snapshot)  # nodes never delete
    plain_http = {"aws:SecureTransport": "false"}
    assert not allows_in_account(cp_policies, policy, control_plane, "s3:PutObject", snapshot, plain_http)


def test_the_control_planes_use_the_cluster_key_through_s3_only_and_read_the_buckets_name(default: Synthesized) -> None:
    stack, region = default.stack, default.config.region
    cp = role_policies(stack, region, "control-plane")
    key = next(iter(stack["resource"]["aws_kms_key"]))
    key_arn = f"arn:aws:kms:{region}:{ACCOUNT}:key/{key}"
    via_s3 = {"kms:ViaService": f"s3.{region}.amazonaws.com"}
    assert allows(cp, "kms:GenerateDataKey", key_arn, via_s3) and allows(cp, "kms:Decrypt", key_arn, via_s3)
    assert not allows(cp, "kms:GenerateDataKey", key_arn)  # a direct call: not for S3's sake
    parameter = f"arn:aws:ssm:{region}:{ACCOUNT}:parameter{default.config.ssm_path}/etcd-backup-bucket"
    assert allows(cp, "ssm:GetParameter", parameter)
    assert not allows(role_policies(stack, region, "worker"), "ssm:GetParameter", parameter)
    assert not allows(role_policies(stack, region, "worker"), "kms:GenerateDataKey", key_arn, via_s3)


def test_named_readers_read_and_nobody_else() -> None:
    bucket = "arn:aws:s3:::b"
    writer = f"arn:aws:iam::{ACCOUNT}:role/cp"
    policy = bucket_policy(bucket, writer, [READER])
    snapshot = f"{bucket}/etcd/control-plane-0/x.tar.gz"
    assert allows_in_account([], policy, READER, "s3:GetObject", snapshot)
    assert allows_in_account([], policy, READER, "s3:ListBucket", bucket)
    assert not allows_in_account(EVERYTHING, policy, READER, "s3:PutObject", snapshot)
    assert not allows_in_account(EVERYTHING, policy, ADMIN, "s3:GetObject", snapshot)
    assert not allows_in_account([], bucket_policy(bucket, writer, []), READER, "s3:GetObject", snapshot)

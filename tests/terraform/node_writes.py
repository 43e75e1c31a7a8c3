"""The SSM writes control-plane-0 makes after boot, read from its own user data, to replay against the emulator.

A second plan right after apply only proves the stack agrees with itself; the deployed cluster's next plan runs
after control-plane-0 has overwritten its parameters (`bootstrap/lib.sh` `ssm_put`, called by `control-plane.sh`).
Everything here comes from the instance's user data as synthesized: the values of its `node.env`, the
`ssm_put NAME TIER` calls of its `control-plane.sh`, and the `put-parameter` options of its `lib.sh`, whose form is
checked so that a change of it shows here instead of being replayed wrongly.
"""

from __future__ import annotations

import base64
import email
import gzip
import re
import shlex
from dataclasses import dataclass
from typing import Any

import yaml

LIB = "/usr/local/lib/spiderpool-rdma"
NODE_ENV = "/etc/spiderpool-rdma/node.env"
#: The put-parameter command of `ssm_put` in bootstrap/lib.sh, as this replay performs it.
PUT_FORM = re.compile(
    r'ssm put-parameter --region "\$\{SPR_REGION\}" --name "\$\{SPR_SSM_PATH\}/\$1" --type SecureString \\\n'
    r'\s+--key-id "\$\{SPR_KMS_KEY\}" --tier "\$2" --overwrite --value "file://\$\{tmp\}"'
)
CALL = re.compile(r"\bssm_put (\S+) (Standard|Advanced|Intelligent-Tiering)\b")


@dataclass(frozen=True)
class Write:
    """One PutParameter call, with the arguments the node gives it."""

    region: str
    name: str
    key_id: str
    tier: str

    def apply(self, ssm: Any) -> None:
        ssm.put_parameter(
            Name=self.name,
            Type="SecureString",
            KeyId=self.key_id,
            Tier=self.tier,
            Overwrite=True,
            Value="kubeadm join 10.0.0.1:6443 --token published.by-the-node",
        )


def files(instance: dict[str, Any]) -> dict[str, str]:
    """path -> content of the cloud-config `write_files` in an instance's gzipped MIME user data."""
    message = email.message_from_bytes(gzip.decompress(base64.b64decode(instance["user_data_base64"])))
    out: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_type() == "text/cloud-config":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            for entry in yaml.safe_load(payload).get("write_files", []):
                out[entry["path"]] = entry["content"]
    return out


def node_env(text: str) -> dict[str, str]:
    """The NAME=value assignments of node.env, unquoted as bash reads them."""
    env = {}
    for line in text.splitlines():
        match = re.match(r"^(SPR_\w+)=(.*)$", line)
        if match:
            env[match[1]] = shlex.split(match[2])[0] if match[2] else ""
    return env


def control_plane_writes(stack: dict[str, Any]) -> list[Write]:
    """The writes of the node whose role initializes the cluster (`SPR_ROLE=control-plane-init`)."""
    for instance in stack["resource"].get("aws_instance", {}).values():
        written = files(instance)
        env = node_env(written[NODE_ENV])
        if env["SPR_ROLE"] != "control-plane-init":
            continue
        assert PUT_FORM.search(written[f"{LIB}/lib.sh"]), "ssm_put in lib.sh changed: update this replay"
        # what every control plane publishes, and the member-replacement request (role.sh: init.sh) and its answer
        scripts = (f"{LIB}/control-plane.sh", f"{LIB}/role.sh", f"{LIB}/replace-member.sh")
        calls = {name: tier for script in scripts for name, tier in CALL.findall(written[script])}
        assert calls, "control-plane.sh publishes nothing with ssm_put"
        return [
            Write(env["SPR_REGION"], f"{env['SPR_SSM_PATH']}/{name}", env["SPR_KMS_KEY"], tier)
            for name, tier in sorted(calls.items())
        ]
    raise AssertionError("no instance has SPR_ROLE=control-plane-init")


#: The upload of bootstrap/etcd-backup.sh, as this replay performs it: to the bucket whose name Terraform put in SSM.
UPLOAD_FORM = re.compile(
    r'"\$\{AWS\}" s3 cp --region "\$\{SPR_REGION\}" --only-show-errors "\$\{work\}/backup.tar.gz" "s3://\$\{bucket\}/\$\{key\}"'
)


def backup_upload(stack: dict[str, Any], ssm: Any, s3: Any) -> None:
    """What a control plane's hourly backup leaves in the bucket: read the bucket's name from SSM as etcd-backup.sh does
    and upload one archive twice (two versions), so that destroy has versions to delete.

    moto 5.2 applies a bucket policy's Deny statements without their Principal and Condition (moto/s3/models.py
    FakeBucket.get_permission, IAMPolicy.is_action_permitted): the policy's conditional denials refuse every writer,
    the control planes' role too. The replay lifts the policy for its uploads and puts it back as it was; the plan
    after it shows that it is the stack's. Who may write and read is evaluated with IAM's rule in
    tests/cdk/test_backups.py instead."""
    for instance in stack["resource"].get("aws_instance", {}).values():
        written = files(instance)
        env = node_env(written[NODE_ENV])
        if env["SPR_ROLE"] != "control-plane-init":
            continue
        assert UPLOAD_FORM.search(written[f"{LIB}/etcd-backup.sh"]), "the upload in etcd-backup.sh changed: update this"
        bucket = ssm.get_parameter(Name=f"{env['SPR_SSM_PATH']}/etcd-backup-bucket")["Parameter"]["Value"]
        policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
        s3.delete_bucket_policy(Bucket=bucket)
        for body in (b"first", b"second"):
            s3.put_object(Bucket=bucket, Key=f"etcd/{env['SPR_NODE_NAME']}/20261207T000000Z.tar.gz", Body=body)
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
        return
    raise AssertionError("no instance has SPR_ROLE=control-plane-init")

"""Running one of bootstrap/'s scripts on a node of a cluster, the way every operation reaches the nodes.

`Nodes` is the narrow interface the operations use; `SsmNodes` implements it with SSM Run Command (the document
AWS-RunShellScript, which runs its commands with `sh` as root on the instance): the script travels in the command,
base64-encoded, so that the node runs exactly the repository's version beside its own library (lib.sh, etcd.sh, its
node.env). Tests stand in for it with the bootstrap sandbox (tests/ops/).
"""

from __future__ import annotations

import base64
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from spider_validate import names

BOOTSTRAP_DIR = Path(__file__).resolve().parents[1] / "bootstrap"
#: GetCommandInvocation's statuses after which nothing changes (SSM API reference, GetCommandInvocation).
FINAL = {"Success", "Cancelled", "TimedOut", "Failed", "Cancelling"}


class OperationError(Exception):
    """An operation that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Result:
    code: int
    output: str  # stdout: what a step answers
    errors: str = ""  # stderr: its log


class Nodes(Protocol):
    """The cluster's nodes by name (control-plane-0, worker-1, ...)."""

    def names(self) -> list[str]: ...

    def run(self, node: str, script: str, args: Sequence[str], timeout: float) -> Result: ...


def command(script: str, args: Sequence[str]) -> str:
    """The one shell command that runs bootstrap/SCRIPT with ARGS on a node: written to a private file (the script is
    too long and too quoted for a command line of its own), run with bash, removed. POSIX sh, as SSM runs it."""
    payload = base64.b64encode((BOOTSTRAP_DIR / script).read_bytes()).decode()
    quoted = " ".join(shlex.quote(a) for a in args)
    return (
        f'f="$(mktemp /root/spiderpool-rdma-{script}.XXXXXX)" && printf %s {payload} | base64 -d >"$f" && '
        f'bash "$f" {quoted}; rc=$?; rm -f "$f"; exit "$rc"'
    ).replace(" ;", ";")


class SsmNodes:
    """The running instances tagged with the cluster, by their node tag; each call bounded by its timeout."""

    def __init__(self, cluster: str, region: str, client: Any = None, poll: float = 2.0) -> None:
        import boto3

        session = client or boto3
        self.cluster = cluster
        self.ec2 = session.client("ec2", region_name=region)
        self.ssm = session.client("ssm", region_name=region)
        self.poll = poll
        self._instances: dict[str, str] | None = None

    def instances(self) -> dict[str, str]:
        if self._instances is None:
            filters = [
                {"Name": f"tag:{names.CLUSTER_TAG}", "Values": [self.cluster]},
                {"Name": "instance-state-name", "Values": ["running"]},
            ]
            found: dict[str, str] = {}
            for page in self.ec2.get_paginator("describe_instances").paginate(Filters=filters):
                for reservation in page["Reservations"]:
                    for instance in reservation["Instances"]:
                        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                        if names.NODE_TAG in tags:
                            found[tags[names.NODE_TAG]] = instance["InstanceId"]
            if not found:
                raise OperationError(f"no running instance is tagged {names.CLUSTER_TAG}={self.cluster}")
            self._instances = found
        return self._instances

    def names(self) -> list[str]:
        return sorted(self.instances())

    def run(self, node: str, script: str, args: Sequence[str], timeout: float) -> Result:
        instance = self.instances().get(node)
        if instance is None:
            raise OperationError(f"{node} is not a running instance of cluster {self.cluster}")
        sent = self.ssm.send_command(
            InstanceIds=[instance],
            DocumentName="AWS-RunShellScript",
            Comment=f"spiderpool-rdma {script} {' '.join(args)}"[:100],
            Parameters={"commands": [command(script, args)], "executionTimeout": [str(int(timeout))]},
            TimeoutSeconds=60,  # to be delivered: the agent of a running instance picks it up at once
        )
        command_id = sent["Command"]["CommandId"]
        deadline = time.monotonic() + timeout + 60
        while True:
            try:
                got = self.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
            except self.ssm.exceptions.InvocationDoesNotExist:  # not registered yet, just after sending
                got = {"Status": "Pending"}
            if got["Status"] in FINAL:
                code = got.get("ResponseCode", -1)
                return Result(
                    0 if got["Status"] == "Success" else code if code > 0 else 1,
                    got.get("StandardOutputContent", ""),
                    got.get("StandardErrorContent", ""),
                )
            if time.monotonic() > deadline:
                raise OperationError(f"{script} on {node} ({instance}) did not end within {timeout:g}s: {command_id}")
            time.sleep(self.poll)

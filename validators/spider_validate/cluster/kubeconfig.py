"""The admin kubeconfig from the cluster's SSM parameter, pointed at a local SSM port forward."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError

from spider_validate import names

REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")  # us-east-1, us-gov-west-1, ap-southeast-2


class KubeconfigError(Exception):
    """Something the user can fix; the message says what."""


def clients(region: str, profile: str | None) -> tuple[Any, Any]:
    """SSM and EC2 clients of the region and profile; KubeconfigError for a malformed region or unknown profile."""
    if not REGION.fullmatch(region):
        raise KubeconfigError(f"--region {region!r} is not an AWS region such as us-east-1")
    try:
        session = boto3.Session(profile_name=profile or None, region_name=region)
        return session.client("ssm"), session.client("ec2")
    except BotoCoreError as exc:  # ProfileNotFound, a broken ~/.aws/config
        raise KubeconfigError(str(exc)) from exc


def _denied_or_failed(exc: ClientError, what: str, needs: str) -> KubeconfigError:
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", code)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"} or status == 403:
        return KubeconfigError(f"access denied {what}: your AWS identity needs {needs} ({message})")
    return KubeconfigError(f"{what} failed: {code}: {message}")


def fetch(ssm: Any, cluster: str, region: str) -> dict[str, Any]:
    name = names.ssm_parameter(cluster, names.KUBECONFIG)
    try:
        value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ParameterNotFound":
            raise KubeconfigError(
                f"no kubeconfig for cluster {cluster!r} in {region}: parameter {name} does not exist. "
                "Is the cluster deployed in this region and account (cdktn deploy), and is the name right?"
            ) from exc
        raise _denied_or_failed(
            exc, f"reading {name}", f"ssm:GetParameter on it and kms:Decrypt on {names.kms_alias(cluster)}"
        ) from exc
    except BotoCoreError as exc:
        raise KubeconfigError(f"cannot reach SSM in {region}: {exc}") from exc
    if value.strip() == names.PLACEHOLDER:
        raise KubeconfigError(
            f"cluster {cluster!r} has not published its kubeconfig yet: {names.FIRST_CONTROL_PLANE} is still "
            "bootstrapping (see README, Troubleshooting: /var/log/spiderpool-rdma/ on the node)"
        )
    try:
        config = yaml.safe_load(value)
        assert isinstance(config, dict) and config.get("clusters")
    except (yaml.YAMLError, AssertionError) as exc:
        raise KubeconfigError(f"parameter {name} does not hold a kubeconfig") from exc
    return config


def through_local_port(config: dict[str, Any], port: int) -> dict[str, Any]:
    """Point every cluster entry at localhost (the API certificate names it) on the forwarded port."""
    clusters = [{**c, "cluster": {**c["cluster"], "server": f"https://localhost:{port}"}} for c in config["clusters"]]
    return {**config, "clusters": clusters}


def control_plane_instance(ec2: Any, cluster: str, region: str) -> str:
    try:
        reply = ec2.describe_instances(
            Filters=[
                {"Name": f"tag:{names.CLUSTER_TAG}", "Values": [cluster]},
                {"Name": f"tag:{names.NODE_TAG}", "Values": [names.FIRST_CONTROL_PLANE]},
                {"Name": "instance-state-name", "Values": ["running"]},
            ]
        )
    except ClientError as exc:
        raise _denied_or_failed(
            exc, f"looking up {names.FIRST_CONTROL_PLANE} (ec2:DescribeInstances)", "ec2:DescribeInstances"
        ) from exc
    except BotoCoreError as exc:
        raise KubeconfigError(f"cannot reach EC2 in {region}: {exc}") from exc
    ids = [i["InstanceId"] for r in reply["Reservations"] for i in r["Instances"]]
    if len(ids) != 1:
        raise KubeconfigError(
            f"expected one running {names.FIRST_CONTROL_PLANE} of cluster {cluster!r}, found {len(ids)}"
        )
    return str(ids[0])


def port_forward_command(region: str, instance_id: str, port: int) -> str:
    params = json.dumps({"portNumber": ["6443"], "localPortNumber": [str(port)]}, separators=(",", ":"))
    return shlex.join(
        [
            "aws",
            "ssm",
            "start-session",
            "--region",
            region,
            "--target",
            instance_id,
            "--document-name",
            "AWS-StartPortForwardingSession",
            "--parameters",
            params,
        ]
    )

"""After control-plane-0 overwrites the SSM parameters, Terraform's next plan must not see a change in them.

The AWS provider (hashicorp/terraform-provider-aws internal/service/ssm/parameter.go, commit 0073593e):
- Create sends PutParameter with the configured Type, KeyId (SecureString), Description, Tier and the write-only
  value (resourceParameterCreate);
- Read sets key_id, tier and description from DescribeParameters (resourceParameterRead ->
  findParameterMetadataByName), and `value` to null while `has_value_wo` is set;
- Update sends PutParameter with `value = d.Get("value")` and replaces it by `value_wo` only
  `if d.HasChanges("value_wo_version")` (resourceParameterUpdate): with a write-only value, any other change
  (key_id, tier, description) would overwrite the node's join command or kubeconfig with an empty value.
So every attribute the nodes' PutParameter touches must read back exactly as configured. The node side is
bootstrap/lib.sh `ssm_put` (`--type SecureString --key-id "$SPR_KMS_KEY" --tier TIER --overwrite`, no
description) with the tiers bootstrap/control-plane.sh passes; moto keeps KeyId as given, as SSM does.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import boto3
import moto
import pytest

from cdk import userdata
from tests.conftest import REPO, Synthesized

pytestmark = pytest.mark.synth


def node_env(s: Synthesized) -> dict[str, str]:
    cp0 = s.plan.control_planes[0]
    text = userdata.node_files(s.config, s.plan, cp0)["/etc/spiderpool-rdma/node.env"]
    return dict(tok.split("=", 1) for line in text.splitlines() if line.startswith("SPR_") for tok in shlex.split(line))


def node_tiers() -> dict[str, str]:
    """The tier the control planes write each parameter with: `... | ssm_put NAME TIER` in control-plane.sh, and the
    member-replacement request's in init.sh and replace-member.sh."""
    scripts = [(REPO / "bootstrap" / name).read_text() for name in ("control-plane.sh", "init.sh", "replace-member.sh")]
    return dict(t for script in scripts for t in re.findall(r"ssm_put ([a-z-]+) (Standard|Advanced)", script))


def resolve_key(stack: dict[str, Any], ref: str, key: dict[str, Any]) -> str:
    match = re.fullmatch(r"\$\{(aws_kms_\w+)\.([\w-]+)\.(\w+)\}", ref)
    if match is None:
        return ref
    rtype, name, attr = match.groups()
    if rtype == "aws_kms_alias":
        assert attr == "name"
        return str(stack["resource"]["aws_kms_alias"][name]["name"])
    return str({"arn": key["Arn"], "key_id": key["KeyId"], "id": key["KeyId"]}[attr])


@pytest.mark.parametrize("name", ["default-efa", "ha"])
def test_parameters_overwritten_by_the_control_plane_read_back_as_configured(
    name: str, synthesized: dict[str, Synthesized], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = synthesized[name]
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    env, tiers = node_env(s), node_tiers()
    # what the nodes overwrite (Terraform's own value, the backup bucket's name, no node writes)
    params = {n: p for n, p in s.resources("aws_ssm_parameter").items() if "value_wo" in p}
    assert {p["name"].rsplit("/", 1)[-1] for p in params.values()} == set(tiers)
    with moto.mock_aws():
        kms = boto3.client("kms", region_name=s.config.region)
        ssm = boto3.client("ssm", region_name=s.config.region)
        key = kms.create_key()["KeyMetadata"]
        (alias,) = s.resources("aws_kms_alias").values()
        kms.create_alias(AliasName=alias["name"], TargetKeyId=key["KeyId"])
        for p in params.values():  # terraform apply: resourceParameterCreate
            create: dict[str, Any] = {"Name": p["name"], "Type": p["type"], "Value": p["value_wo"], "Overwrite": False}
            create |= {"KeyId": resolve_key(s.stack, p["key_id"], key)}
            create |= {k: p[a] for k, a in (("Description", "description"), ("Tier", "tier")) if a in p}
            ssm.put_parameter(**create)
        for p in params.values():  # control-plane-0: ssm_put in bootstrap/lib.sh
            short = p["name"].rsplit("/", 1)[-1]
            ssm.put_parameter(
                Name=p["name"],
                Type="SecureString",
                KeyId=env["SPR_KMS_KEY"],
                Tier=tiers[short],
                Overwrite=True,
                Value=f"{short} as the node writes it",
            )
        for p in params.values():  # the next plan: resourceParameterRead, then the diff against the configuration
            (meta,) = ssm.describe_parameters(
                ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [p["name"]]}]
            )["Parameters"]
            assert meta["KeyId"] == resolve_key(s.stack, p["key_id"], key), p["name"]
            assert meta["Tier"] == p.get("tier", meta["Tier"]), p["name"]
            assert meta.get("Description", "") == p.get("description", ""), p["name"]

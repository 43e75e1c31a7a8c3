"""Whether a node role's identity policies allow an action on a resource, as IAM evaluates Allow statements.

From the IAM user guide: "Policy evaluation logic" (reference_policies_evaluation-logic.html: an action is allowed
only when an Allow statement matches and nothing denies it; these roles have no Deny), "IAM JSON policy elements:
Action" (action names are case-insensitive, `*` matches any characters) and "Resource" (ARNs case-sensitive, `*`
and `?` wildcards within the ARN). Conditions are not evaluated: a statement with a Condition counts as allowing,
the conservative reading for a test that asks what a role can reach. Managed policies are read from AWS's
published documents (MANAGED), so an attachment counts with what it really allows.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

ACCOUNT = "123456789012"
#: AmazonSSMManagedInstanceCore v2, as published in the AWS managed policy reference
#: (aws-managed-policy/latest/reference/AmazonSSMManagedInstanceCore.html).
MANAGED: dict[str, dict[str, Any]] = {
    "AmazonSSMManagedInstanceCore": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "ssm:DescribeAssociation",
                    "ssm:GetDeployablePatchSnapshotForInstance",
                    "ssm:GetDocument",
                    "ssm:DescribeDocument",
                    "ssm:GetManifest",
                    "ssm:GetParameter",
                    "ssm:GetParameters",
                    "ssm:ListAssociations",
                    "ssm:ListInstanceAssociations",
                    "ssm:PutInventory",
                    "ssm:PutComplianceItems",
                    "ssm:PutConfigurePackageResult",
                    "ssm:UpdateAssociationStatus",
                    "ssm:UpdateInstanceAssociationStatus",
                    "ssm:UpdateInstanceInformation",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "ssmmessages:CreateControlChannel",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel",
                    "ssmmessages:OpenDataChannel",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "ec2messages:AcknowledgeMessage",
                    "ec2messages:DeleteMessage",
                    "ec2messages:FailMessage",
                    "ec2messages:GetEndpoint",
                    "ec2messages:GetMessages",
                    "ec2messages:SendReply",
                ],
                "Resource": "*",
            },
        ],
    }
}
_REF = re.compile(r"\$\{([^}]+)\}")


def _as_list(v: str | list[str]) -> list[str]:
    return [v] if isinstance(v, str) else v


def resolve(stack: dict[str, Any], region: str, text: str) -> str:
    """Replace the Terraform references the policies use by the values AWS would give them."""

    def value(match: re.Match[str]) -> str:
        parts = match.group(1).split(".")
        if parts[0] == "data":
            return {"partition": "aws", "account_id": ACCOUNT}[parts[-1]]
        rtype, name, attr = parts
        body = stack["resource"][rtype][name]
        if rtype == "aws_ssm_parameter" and attr == "arn":
            return f"arn:aws:ssm:{region}:{ACCOUNT}:parameter{body['name']}"
        if rtype == "aws_kms_key" and attr == "arn":
            return f"arn:aws:kms:{region}:{ACCOUNT}:key/{name}"
        raise AssertionError(f"unresolved reference {match.group(0)}")

    return _REF.sub(value, text)


def role_policies(stack: dict[str, Any], region: str, role: str) -> list[dict[str, Any]]:
    """Every policy document of the IAM role whose Terraform name contains `role`."""
    resources = stack["resource"]
    (role_name,) = [n for n in resources["aws_iam_role"] if f"_{role}-role_" in n]
    docs = [
        json.loads(resolve(stack, region, p["policy"]))
        for p in resources.get("aws_iam_role_policy", {}).values()
        if p["role"] == f"${{aws_iam_role.{role_name}.id}}"
    ]
    for a in resources.get("aws_iam_role_policy_attachment", {}).values():
        if a["role"] == f"${{aws_iam_role.{role_name}.name}}":
            docs.append(MANAGED[a["policy_arn"].rsplit("/", 1)[-1]])
    return docs


def allows(policies: list[dict[str, Any]], action: str, resource: str) -> bool:
    for doc in policies:
        for st in doc["Statement"]:
            if st["Effect"] != "Allow":
                continue
            if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(st["Action"])):
                continue
            if any(fnmatch.fnmatchcase(resource, r) for r in _as_list(st["Resource"])):
                return True
    return False

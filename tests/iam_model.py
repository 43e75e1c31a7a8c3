"""Whether a node role's identity policies allow an action on a resource in a request context, as IAM decides.

From the IAM user guide: "Policy evaluation logic" (reference_policies_evaluation-logic.html: an action is allowed
only when an Allow statement matches and no Deny statement does), "IAM JSON policy elements: Action" (action names
are case-insensitive, `*` matches any characters), "Resource" (ARNs case-sensitive, `*` and `?` wildcards within
the ARN), "Condition operators" (reference_policies_elements_condition_operators.html) and "Conditions with multiple
context keys or values" (reference_policies_multi-value-conditions.html): every operator of a Condition block and
every key under an operator must hold; the values of one key are ORed, NORed for a negated operator; a key absent
from the request fails the condition, except for a negated operator, `...IfExists` and `Null`. The string, ARN,
Bool, Null, `...IfExists` and `ForAllValues:`/`ForAnyValue:` operators are evaluated (tests/cdk/test_iam_model.py
holds the guide's own examples); any other operator, a policy variable, NotAction or NotResource is refused
(NotImplementedError) rather than guessed. Managed policies are read from AWS's published documents (MANAGED), so
an attachment counts with what it really allows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
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


def resource_arn(stack: dict[str, Any], region: str, rtype: str, name: str) -> str:
    """The ARN AWS gives the stack's resource `rtype.name` (a KMS key's id stands for itself: its Terraform name)."""
    if rtype == "aws_ssm_parameter":
        return f"arn:aws:ssm:{region}:{ACCOUNT}:parameter{stack['resource'][rtype][name]['name']}"
    if rtype == "aws_kms_key":
        return f"arn:aws:kms:{region}:{ACCOUNT}:key/{name}"
    if rtype == "aws_s3_bucket":  # its name is chosen at apply (bucket_prefix): the Terraform name stands for it
        return f"arn:aws:s3:::{name}"
    if rtype == "aws_iam_role":  # likewise (name_prefix)
        return f"arn:aws:iam::{ACCOUNT}:role/{name}"
    raise AssertionError(f"no ARN rule for {rtype}")


def resolve(stack: dict[str, Any], region: str, text: str) -> str:
    """Replace the Terraform references the policies use by the values AWS would give them."""

    def value(match: re.Match[str]) -> str:
        parts = match.group(1).split(".")
        if parts[0] == "data":
            return {"partition": "aws", "account_id": ACCOUNT}[parts[-1]]
        rtype, name, attr = parts
        assert attr == "arn", f"unresolved reference {match.group(0)}"
        return resource_arn(stack, region, rtype, name)

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


#: A request's condition keys: a single value, or the values of a multivalued key (for the set operators).
Context = Mapping[str, str | list[str]]


def like(pattern: str, value: str) -> bool:
    """IAM's wildcards: `*` any run of characters, `?` any one; nothing else is special (unlike fnmatch's `[...]`)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def arn_like(pattern: str, value: str) -> bool:
    """ArnLike and ArnEquals: "each of the six colon-delimited components of the ARN is checked separately"."""
    wanted, got = pattern.split(":", 5), value.split(":", 5)
    return len(wanted) == len(got) == 6 and all(like(w, g) for w, g in zip(wanted, got, strict=True))


#: The operators that match (the guide's tables), and each negated one with the operator it negates.
MATCH: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": like,
    "ArnEquals": arn_like,
    "ArnLike": arn_like,
    "Bool": lambda p, v: p.lower() == v.lower(),
}
NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _text(value: object) -> str:
    """A condition value as IAM reads it: JSON's true/false are the strings "true"/"false"."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def condition_holds(operator: str, key: str, policy_values: object, context: Context) -> bool:
    """One operator's test of one context key against the policy's values for it."""
    qualifier, _, op = operator.rpartition(":")
    wanted = [_text(v) for v in (policy_values if isinstance(policy_values, list) else [policy_values])]
    if any("${" in w for w in wanted):
        raise NotImplementedError(f"policy variables ({operator} {key}) are not evaluated by tests/iam_model.py")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    present = key in context
    if op == "Null":  # true: the key is absent; false: it is present
        return any((not present) == (w.lower() == "true") for w in wanted)
    negated = op in NEGATED
    match = MATCH.get(NEGATED.get(op, op))
    if match is None or qualifier not in {"", "ForAllValues", "ForAnyValue"}:
        raise NotImplementedError(f"{operator} is not evaluated by tests/iam_model.py")
    if if_exists and not present:
        return True

    def hit(value: str) -> bool:  # OR over the policy's values; NOR for a negated operator
        found = any(match(w, value) for w in wanted)
        return not found if negated else found

    values = context.get(key)
    if qualifier:  # a multivalued key; absent, it is an empty set
        request = [] if values is None else [values] if isinstance(values, str) else values
        return all(map(hit, request)) if qualifier == "ForAllValues" else any(map(hit, request))
    if values is None:
        return negated
    assert isinstance(values, str), f"{key} has several values: a set operator (ForAllValues:, ForAnyValue:) tests it"
    return hit(values)


def conditions_hold(block: dict[str, dict[str, object]], context: Context) -> bool:
    """A statement's Condition block: every operator, and every key under it, must hold."""
    return all(
        condition_holds(operator, key, values, context)
        for operator, keys in block.items()
        for key, values in keys.items()
    )


def _matches(st: dict[str, Any], action: str, resource: str, context: Context) -> bool:
    if "NotAction" in st or "NotResource" in st:
        raise NotImplementedError("NotAction and NotResource are not evaluated by tests/iam_model.py")
    return (
        any(like(a.lower(), action.lower()) for a in _as_list(st["Action"]))
        and any(like(r, resource) for r in _as_list(st["Resource"]))
        and conditions_hold(st.get("Condition", {}), context)
    )


def allows(policies: list[dict[str, Any]], action: str, resource: str, context: Context | None = None) -> bool:
    """Whether the policies allow `action` on `resource` in a request with `context` (by default one that carries
    no condition key: a call made directly, not through another service)."""
    every = [st for doc in policies for st in _as_list_of_statements(doc)]
    statements = [st for st in every if _matches(st, action, resource, context or {})]
    return any(st["Effect"] == "Allow" for st in statements) and not any(st["Effect"] == "Deny" for st in statements)


def key_allows(
    key_policy: dict[str, Any],
    principal: str,
    identity_policies: list[dict[str, Any]],
    action: str,
    key_arn: str,
    context: Context | None = None,
) -> bool:
    """KMS's decision for a principal of the key's own account (AWS KMS developer guide, "Key policies in AWS KMS":
    unlike other resource policies, a key policy grants the account nothing by itself): the key policy allows the
    principal itself (its ARN, or "*", in Principal.AWS of an Allow statement whose Action and Condition match; no IAM
    policy needed then), or allows the account's root ("Allows access to the AWS account and enables IAM policies"),
    and then the principal's IAM policies must allow the action on the key too. A Deny in the key policy refuses."""
    ctx: dict[str, str | list[str]] = {"aws:PrincipalArn": principal, "kms:CallerAccount": ACCOUNT, **(context or {})}
    statements = [st for st in key_policy["Statement"] if _matches(st, action, "*", ctx)]
    if any(st["Effect"] == "Deny" for st in statements):
        return False
    principals = {p for st in statements for p in _as_list(st["Principal"].get("AWS", []))}
    if principal in principals or "*" in principals:
        return True
    return f"arn:aws:iam::{ACCOUNT}:root" in principals and allows(identity_policies, action, key_arn, ctx)


def _principal_matches(statement: dict[str, Any], principal: str) -> bool:
    """A resource policy's Principal: `*` (anyone), or `{"AWS": ARN or [ARN...]}` naming this principal ("AWS JSON
    policy elements: Principal"). NotPrincipal is refused rather than guessed."""
    if "NotPrincipal" in statement:
        raise NotImplementedError("NotPrincipal is not evaluated by tests/iam_model.py")
    named = statement["Principal"]
    if named == "*":
        return True
    return any(p == "*" or arn_like(p, principal) for p in _as_list(named["AWS"]))


def allows_in_account(
    identity: list[dict[str, Any]],
    resource_policy: dict[str, Any],
    principal: str,
    action: str,
    resource: str,
    context: Context | None = None,
) -> bool:
    """A request of `principal` to a resource of its own account that has a resource-based policy ("Policy evaluation
    logic", same-account requests): denied by an explicit Deny of either policy that applies; allowed by an Allow of
    its identity-based policies or of the resource's statements that name it; denied otherwise. The request carries
    `aws:PrincipalArn` (the role's ARN for any of its sessions) and, over TLS, `aws:SecureTransport`."""
    full: dict[str, str | list[str]] = {"aws:PrincipalArn": principal, "aws:SecureTransport": "true", **(context or {})}
    statements = [
        st
        for st in resource_policy["Statement"]
        if _principal_matches(st, principal) and _matches(st, action, resource, full)
    ]
    if any(st["Effect"] == "Deny" for st in statements):
        return False
    every = [st for doc in identity for st in _as_list_of_statements(doc)]
    mine = [st for st in every if _matches(st, action, resource, full)]
    if any(st["Effect"] == "Deny" for st in mine):
        return False
    return any(st["Effect"] == "Allow" for st in statements + mine)


def _as_list_of_statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    statements = doc["Statement"]
    return statements if isinstance(statements, list) else [statements]

"""tests/iam_model.py against the IAM user guide's own examples of condition evaluation, copied as data: each policy
condition and request context with the result the guide gives (awsdocs/iam-user-guide, doc_source/
reference_policies_elements_condition_operators.md; "Conditions with multiple context keys or values",
reference_policies_multi-value-conditions.html, its two tables; the older set-operator page,
doc_source/reference_policies_multi-value-conditions.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.iam_model import Context, allows

ACTION, RESOURCE = "s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket"
TAGS = {
    "aws:PrincipalTag/department": ["finance", "hr", "legal"],
    "aws:PrincipalTag/role": ["audit", "security"],
}
PEOPLE = ["arn:aws:iam::222222222222:user/Ana", "arn:aws:iam::222222222222:user/Mary"]
USER = "arn:aws:iam::222222222222:user/"


def allowed(condition: dict[str, Any], context: Context, action: str = ACTION, resource: str = RESOURCE) -> bool:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource, "Condition": condition}
    return allows([{"Version": "2012-10-17", "Statement": [statement]}], action, resource, context)


# "Evaluation logic for multiple context keys or values": operators and keys ANDed, values ORed
MULTIPLE_KEYS = [
    (
        {"aws:PrincipalTag/department": "legal", "aws:PrincipalTag/role": "audit", "aws:PrincipalArn": USER + "Mary"},
        True,
    ),
    (
        {"aws:PrincipalTag/department": "hr", "aws:PrincipalTag/role": "audit", "aws:PrincipalArn": USER + "Nikki"},
        False,
    ),
    (
        {"aws:PrincipalTag/department": "hr", "aws:PrincipalTag/role": "payroll", "aws:PrincipalArn": USER + "Mary"},
        False,
    ),
    ({"aws:PrincipalTag/department": "hr", "aws:PrincipalArn": USER + "Mary"}, False),  # no role tag
    ({"aws:PrincipalArn": USER + "Mary"}, False),  # no principal tag
]
# "Evaluation logic for negated matching condition operators": the ARN's values NORed
NEGATED_KEYS = [
    (
        {"aws:PrincipalTag/department": "legal", "aws:PrincipalTag/role": "audit", "aws:PrincipalArn": USER + "Nikki"},
        True,
    ),
    ({"aws:PrincipalTag/department": "hr", "aws:PrincipalTag/role": "audit", "aws:PrincipalArn": USER + "Mary"}, False),
    (
        {"aws:PrincipalTag/department": "hr", "aws:PrincipalTag/role": "payroll", "aws:PrincipalArn": USER + "Nikki"},
        False,
    ),
    ({"aws:PrincipalTag/department": "hr", "aws:PrincipalArn": USER + "Nikki"}, False),
    ({"aws:PrincipalArn": USER + "Nikki"}, False),
]


@pytest.mark.parametrize(("context", "result"), MULTIPLE_KEYS)
def test_multiple_operators_keys_and_values(context: Context, result: bool) -> None:
    assert allowed({"StringEquals": TAGS, "ArnLike": {"aws:PrincipalArn": PEOPLE}}, context) is result


@pytest.mark.parametrize(("context", "result"), NEGATED_KEYS)
def test_a_negated_operators_values_are_nored(context: Context, result: bool) -> None:
    assert allowed({"StringEquals": TAGS, "ArnNotLike": {"aws:PrincipalArn": PEOPLE}}, context) is result


def test_string_like_spans_colons_where_arn_like_matches_each_component() -> None:
    """The operators page: pattern `arn:aws:someservice:*:111122223333:finance/*` matches this value with
    StringLike (the first `*` takes `us-east-2:999999999999:store/abc:`) and not with ArnLike."""
    pattern = "arn:aws:someservice:*:111122223333:finance/*"
    value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    assert allowed({"StringLike": {"aws:SourceArn": pattern}}, {"aws:SourceArn": value})
    assert not allowed({"ArnLike": {"aws:SourceArn": pattern}}, {"aws:SourceArn": value})


def test_an_absent_key_fails_a_condition_but_a_negated_one() -> None:
    """ "If the key ... is not present in the request context, the values do not match and the condition is false.
    If the policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the
    right key is not present, the condition is true.\""""
    assert not allowed({"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}}, {})
    assert allowed({"StringNotLike": {"aws:PrincipalTag/job-category": "iamuser-*"}}, {})
    assert not allowed({"Bool": {"aws:SecureTransport": False}}, {})
    assert allowed({"Bool": {"aws:SecureTransport": False}}, {"aws:SecureTransport": "false"})


@pytest.mark.parametrize(
    ("context", "if_exists", "plain"),
    [
        ({}, True, False),
        ({"ec2:InstanceType": "t2.micro"}, True, True),
        ({"ec2:InstanceType": "m5.large"}, False, False),
    ],
)
def test_if_exists_passes_an_absent_key_only(context: Context, if_exists: bool, plain: bool) -> None:
    """The operators page's RunInstances example: StringLikeIfExists on ec2:InstanceType t1.*, t2.*, m3.*."""
    types = {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}
    assert allowed({"StringLikeIfExists": types}, context, "ec2:RunInstances", "*") is if_exists
    assert allowed({"StringLike": types}, context, "ec2:RunInstances", "*") is plain


def test_null_tests_whether_the_key_is_absent() -> None:
    condition = {"Null": {"aws:TokenIssueTime": "true"}}  # the page's example: no temporary credentials
    assert allowed(condition, {}, "ec2:DescribeInstances", "*")
    assert not allowed(condition, {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}, "ec2:DescribeInstances", "*")


@pytest.mark.parametrize(
    ("qualifier", "requested", "result"),
    [
        ("ForAllValues", ["PostDateTime", "Message"], True),
        ("ForAllValues", ["PostDateTime", "UserName"], False),
        ("ForAllValues", [], True),  # "an empty data set ... ForAllValues returns true"
        ("ForAnyValue", ["UserName", "Message", "PostDateTime"], True),
        ("ForAnyValue", ["UserName"], False),
        ("ForAnyValue", [], False),
    ],
)
def test_set_operators(qualifier: str, requested: list[str], result: bool) -> None:
    """The set-operator page's Thread table: GetItem allows PostDateTime, Message, Tags (ForAllValues); PutItem is
    denied on ID or PostDateTime (ForAnyValue), tested here as the condition of an Allow."""
    wanted = ["PostDateTime", "Message", "Tags"] if qualifier == "ForAllValues" else ["ID", "PostDateTime"]
    condition = {f"{qualifier}:StringLike": {"dynamodb:requestedAttributes": wanted}}
    assert allowed(condition, {"dynamodb:requestedAttributes": requested}) is result


def test_a_deny_overrides_an_allow() -> None:
    allow = {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}
    deny = {
        "Effect": "Deny",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"Bool": {"aws:ViaAWSService": "false"}},
    }
    policy = [{"Statement": [allow, deny]}]
    assert not allows(policy, "kms:Decrypt", "k", {"aws:ViaAWSService": "false"})
    assert allows(policy, "kms:Decrypt", "k", {"aws:ViaAWSService": "true"})
    assert allows(policy, "kms:Encrypt", "k", {"aws:ViaAWSService": "false"})


@pytest.mark.parametrize(
    "condition",
    [{"NumericLessThan": {"s3:max-keys": "10"}}, {"StringEquals": {"s3:prefix": "home/${aws:username}/"}}],
)
def test_what_the_model_does_not_evaluate_is_refused(condition: dict[str, Any]) -> None:
    with pytest.raises(NotImplementedError, match=r"not evaluated by tests/iam_model\.py"):
        allowed(condition, {"s3:max-keys": "5", "s3:prefix": "home/ana/"})

"""What an account still holds that carries a cluster's tag, service by service, through the AWS APIs: what
`spiderpool-rdma down` lists after Terraform's destroy (anything created outside Terraform, or that it failed to
delete), and what the Terraform tests sweep their emulated account with.

Each lister asks the service as a user would with boto3 and keeps only what still exists in AWS's sense: an instance
that is `terminated` stays visible for about an hour (EC2 User Guide, "Terminate instances"), and a KMS key is never
deleted at once but scheduled (`PendingDeletion`, KMS API reference, ScheduleKeyDeletion), which is what `destroy`
does to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Lister = Callable[[Callable[[str], Any], str, str], Iterator[str]]


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _ec2(client: Callable[[str], Any], key: str, value: str) -> Iterator[str]:
    ec2 = client("ec2")
    tag_filter = [{"Name": f"tag:{key}", "Values": [value]}]
    for reservation in ec2.describe_instances(Filters=tag_filter)["Reservations"]:
        for instance in reservation["Instances"]:
            if instance["State"]["Name"] != "terminated":
                yield f"instance {instance['InstanceId']} ({instance['State']['Name']})"
    for call, result, id_key in (
        ("describe_vpcs", "Vpcs", "VpcId"),
        ("describe_subnets", "Subnets", "SubnetId"),
        ("describe_network_interfaces", "NetworkInterfaces", "NetworkInterfaceId"),
        ("describe_security_groups", "SecurityGroups", "GroupId"),
        ("describe_route_tables", "RouteTables", "RouteTableId"),
        ("describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
        ("describe_addresses", "Addresses", "AllocationId"),
        ("describe_flow_logs", "FlowLogs", "FlowLogId"),
        ("describe_security_group_rules", "SecurityGroupRules", "SecurityGroupRuleId"),
    ):
        for item in getattr(ec2, call)(Filters=tag_filter)[result]:
            yield f"{call.removeprefix('describe_')} {item[id_key]}"
    # moto 5.2.1 ignores a tag filter of DescribeNatGateways (it listed another cluster's gateway): the tags are
    # checked here too
    for gateway in ec2.describe_nat_gateways(Filters=tag_filter)["NatGateways"]:
        if gateway["State"] not in ("deleted", "deleting") and _tags(gateway.get("Tags")).get(key) == value:
            yield f"nat_gateway {gateway['NatGatewayId']}"
    for group in ec2.describe_placement_groups()["PlacementGroups"]:
        if _tags(group.get("Tags")).get(key) == value:
            yield f"placement_group {group['GroupName']}"


def _iam(client: Callable[[str], Any], key: str, value: str) -> Iterator[str]:
    iam = client("iam")
    for role in iam.list_roles()["Roles"]:
        if _tags(iam.list_role_tags(RoleName=role["RoleName"])["Tags"]).get(key) == value:
            yield f"iam role {role['RoleName']}"
    for profile in iam.list_instance_profiles()["InstanceProfiles"]:
        # GetInstanceProfile carries the tags (moto 5.2.1 lacks ListInstanceProfileTags)
        tags = iam.get_instance_profile(InstanceProfileName=profile["InstanceProfileName"])["InstanceProfile"].get(
            "Tags"
        )
        if _tags(tags).get(key) == value:
            yield f"iam instance profile {profile['InstanceProfileName']}"


def _kms(client: Callable[[str], Any], key: str, value: str) -> Iterator[str]:
    kms = client("kms")
    for entry in kms.list_keys()["Keys"]:
        if kms.describe_key(KeyId=entry["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion":
            continue
        tags = kms.list_resource_tags(KeyId=entry["KeyId"])["Tags"]
        if {t["TagKey"]: t["TagValue"] for t in tags}.get(key) == value:
            yield f"kms key {entry['KeyId']}"


def _ssm(client: Callable[[str], Any], key: str, value: str) -> Iterator[str]:
    ssm = client("ssm")
    parameter_filter = [{"Key": f"tag:{key}", "Values": [value]}]
    for parameter in ssm.describe_parameters(ParameterFilters=parameter_filter)["Parameters"]:
        yield f"ssm parameter {parameter['Name']}"
    for document in ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])["DocumentIdentifiers"]:
        if _tags(document.get("Tags", [])).get(key) == value:
            yield f"ssm document {document['Name']}"


def _logs(client: Callable[[str], Any], key: str, value: str) -> Iterator[str]:
    logs = client("logs")
    for group in logs.describe_log_groups()["logGroups"]:
        if logs.list_tags_log_group(logGroupName=group["logGroupName"])["tags"].get(key) == value:
            yield f"log group {group['logGroupName']}"


def _route53(client: Callable[[str], Any], key: str, value: str) -> Iterator[str]:
    route53 = client("route53")
    for zone in route53.list_hosted_zones()["HostedZones"]:
        zone_id = zone["Id"].rsplit("/", 1)[-1]
        tags = route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)["ResourceTagSet"]["Tags"]
        if _tags(tags).get(key) == value:
            yield f"route53 zone {zone['Name']}"


def _elbv2(client: Callable[[str], Any], key: str, value: str) -> Iterator[str]:
    elbv2 = client("elbv2")
    arns = [lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]]
    arns += [tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]]
    if arns:
        for description in elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]:
            if _tags(description["Tags"]).get(key) == value:
                yield f"elbv2 {description['ResourceArn']}"


def _s3(client: Callable[[str], Any], key: str, value: str) -> Iterator[str]:
    s3 = client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        try:
            tags = s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]
        except s3.exceptions.ClientError as error:  # NoSuchTagSet: a bucket without tags
            if error.response["Error"]["Code"] != "NoSuchTagSet":
                raise
            tags = []
        if _tags(tags).get(key) == value:
            yield f"s3 bucket {bucket['Name']}"


#: Each lister, by the resource type whose presence in a stack it must see after apply.
LISTERS: dict[str, Lister] = {
    "aws_vpc": _ec2,
    "aws_iam_role": _iam,
    "aws_kms_key": _kms,
    "aws_ssm_parameter": _ssm,
    "aws_cloudwatch_log_group": _logs,
    "aws_route53_zone": _route53,
    "aws_lb": _elbv2,
    "aws_s3_bucket": _s3,
}


def tagged(client: Callable[[str], Any], key: str, value: str) -> dict[str, list[str]]:
    """Everything that still exists in the account `client` (service name -> boto3 client) reaches and carries the
    tag key=value, by lister."""
    return {rtype: list(lister(client, key, value)) for rtype, lister in LISTERS.items()}

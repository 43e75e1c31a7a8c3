"""EC2's network interfaces and subnet CIDR reservations, read only: from the API (boto3) or from saved AWS CLI output.

Both answer the same two questions, so that an audit from files and a live one take the same path:
`interfaces(filter, values)` (DescribeNetworkInterfaces with one filter) and `reservations(subnet)`
(GetSubnetCidrReservations). Replies are parsed into small records, each field checked, so that a truncated file
or an unexpected reply is a message naming the item, never a traceback. The AWS CLI prints an operation's reply as
the API's JSON members (`aws ec2 describe-network-interfaces` prints `{"NetworkInterfaces": [...]}`, merged across
pages; `get-subnet-cidr-reservations` prints `{"SubnetIpv4CidrReservations": [...], "SubnetIpv6CidrReservations":
[...]}`), which is also what boto3 returns: one parser reads both.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from spider_validate import names

#: Every EC2 action the audit calls: the README's IAM policy grants exactly these (tests/validator/cloud/
#: test_cloud_audit.py holds the two together, and against the calls recorded at the boto3 layer). Neither supports
#: resource-level permissions (Service Authorization Reference, Amazon EC2, "Actions": no resource type for either).
ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:GetSubnetCidrReservations")

#: EC2 refuses more values in one filter: "FilterLimitExceeded: The maximum number of filter values specified on a
#: single call is 200" (as users report it: gjbae1212/gossm issue 47, convox/rack issue 2205).
FILTER_VALUES = 200
#: DescribeNetworkInterfaces' MaxResults upper bound (API reference: "Valid range: Minimum value of 5. Maximum value
#: of 1000"); larger pages, fewer calls.
PAGE = 1000

REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")  # us-east-1, us-gov-west-1, ap-southeast-2
THROTTLED = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
DENIED = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}
BAD_CREDENTIALS = {"AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "RequestExpired"}


class CloudError(Exception):
    """The cloud side cannot be read. `transient`: throttled or unreachable, worth trying again later; otherwise
    something the user fixes (credentials, region, permissions, a saved file), said in the message."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class BudgetExhausted(CloudError):
    """The calls a watch cycle may make are spent: the cycle skips the rest of the cloud side (not an error of
    the cluster, and not retried until the next cycle)."""

    def __init__(self, budget: int) -> None:
        super().__init__(f"the cloud call budget of {budget} calls per cycle is spent", transient=True)


@dataclass(frozen=True)
class Interface:
    """One network interface as DescribeNetworkInterfaces reports it ("NetworkInterface" data type)."""

    id: str
    subnet: str
    instance: str | None  # Attachment.InstanceId; None when detached or attached to no instance
    device_index: int | None  # Attachment.DeviceIndex
    primary_ip: str  # PrivateIpAddress
    private_ips: tuple[str, ...]  # PrivateIpAddresses[].PrivateIpAddress: the primary and every secondary address
    prefixes: tuple[str, ...]  # Ipv4Prefixes[].Ipv4Prefix, the /28s delegated to it


@dataclass(frozen=True)
class Reservation:
    """One subnet CIDR reservation ("SubnetCidrReservation" data type): `prefix` ones keep a range for prefixes."""

    id: str
    subnet: str
    cidr: str
    type: str  # ReservationType: prefix | explicit


def _text(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise CloudError(f"{where}: {key} is {json.dumps(value)}, expected a string")
    return value


def _ipv4(value: Any, where: str, network: bool = False) -> str:
    try:
        parsed = ipaddress.IPv4Network(value) if network else ipaddress.IPv4Address(value)
    except (ValueError, TypeError):
        raise CloudError(f"{where}: {json.dumps(value)} is not an IPv4 {'CIDR' if network else 'address'}") from None
    return str(parsed)


def interface(item: Any, where: str) -> Interface:
    """A NetworkInterface member of a reply or saved file; CloudError naming `where` and the field when malformed."""
    if not isinstance(item, dict):
        raise CloudError(f"{where} is not an object")
    eni = _text(item, "NetworkInterfaceId", where)
    where = f"{where} ({eni})"
    attachment = item.get("Attachment") or {}
    addresses = item.get("PrivateIpAddresses", [])
    prefixes = item.get("Ipv4Prefixes", [])
    if not isinstance(attachment, dict) or not isinstance(addresses, list) or not isinstance(prefixes, list):
        raise CloudError(f"{where}: Attachment, PrivateIpAddresses or Ipv4Prefixes has the wrong type")
    index = attachment.get("DeviceIndex")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise CloudError(f"{where}: Attachment.DeviceIndex is {json.dumps(index)}, expected a number")
    primary = _ipv4(item.get("PrivateIpAddress"), f"{where} PrivateIpAddress")
    private = tuple(_ipv4((a or {}).get("PrivateIpAddress"), f"{where} PrivateIpAddresses") for a in addresses)
    return Interface(
        eni,
        _text(item, "SubnetId", where),
        attachment.get("InstanceId") or None,
        index,
        primary,
        private or (primary,),
        tuple(_ipv4((p or {}).get("Ipv4Prefix"), f"{where} Ipv4Prefixes", network=True) for p in prefixes),
    )


def reservation(item: Any, where: str) -> Reservation:
    if not isinstance(item, dict):
        raise CloudError(f"{where} is not an object")
    rid = _text(item, "SubnetCidrReservationId", where)
    where = f"{where} ({rid})"
    return Reservation(
        rid,
        _text(item, "SubnetId", where),
        _ipv4(item.get("Cidr"), f"{where} Cidr", network=True),
        _text(item, "ReservationType", where),
    )


def _members(reply: dict[str, Any], key: str, where: str) -> list[Any]:
    items = reply.get(key, [])
    if not isinstance(items, list):
        raise CloudError(f"{where}: {key} is not a list")
    return items


class Ec2(Protocol):
    """What the audit asks EC2; `calls` counts the API calls made so far, `where` names the source in messages."""

    calls: int
    where: str

    def interfaces(self, name: str, values: Sequence[str]) -> list[Interface]: ...

    def reservations(self, subnet: str) -> list[Reservation]: ...


def _matches(eni: Interface, name: str, values: set[str]) -> bool:
    """The filters the audit uses, as the DescribeNetworkInterfaces API reference defines them, for saved output:
    `addresses.private-ip-address` "The private IPv4 addresses associated with the network interface" (every one,
    primary and secondary), `attachment.instance-id` "The ID of the instance to which the network interface is
    attached", `subnet-id` "The ID of the subnet for the network interface"."""
    field: Iterable[str | None] = {
        "addresses.private-ip-address": eni.private_ips,
        "attachment.instance-id": (eni.instance,),
        "subnet-id": (eni.subnet,),
    }[name]
    return any(v in values for v in field)


class SavedEc2:
    """Saved AWS CLI output answering the same questions, so that a user can audit without credentials.

    Each file is what `aws ec2 describe-network-interfaces [...] --output json` or `aws ec2
    get-subnet-cidr-reservations --subnet-id ID --output json` printed; a file is told by its members. Subnets
    with no reservations file have none as far as the audit knows."""

    calls = 0

    def __init__(self, paths: Sequence[Path]) -> None:
        self.where = f"the saved output ({', '.join(p.name for p in paths)})"
        self._interfaces: dict[str, Interface] = {}
        self._reservations: dict[str, Reservation] = {}
        for path in paths:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CloudError(f"{path}: not readable JSON ({exc})") from exc
        kinds = {"NetworkInterfaces", "SubnetIpv4CidrReservations"} & set(data if isinstance(data, dict) else ())
        if not kinds:
            raise CloudError(
                f"{path}: neither NetworkInterfaces nor SubnetIpv4CidrReservations: expected the JSON output of "
                "`aws ec2 describe-network-interfaces` or `aws ec2 get-subnet-cidr-reservations`"
            )
        for i, item in enumerate(_members(data, "NetworkInterfaces", str(path))):
            eni = interface(item, f"{path}: NetworkInterfaces[{i}]")
            self._interfaces[eni.id] = eni
        for i, item in enumerate(_members(data, "SubnetIpv4CidrReservations", str(path))):
            res = reservation(item, f"{path}: SubnetIpv4CidrReservations[{i}]")
            self._reservations[res.id] = res

    def interfaces(self, name: str, values: Sequence[str]) -> list[Interface]:
        wanted = set(values)
        return [eni for eni in self._interfaces.values() if _matches(eni, name, wanted)]

    def reservations(self, subnet: str) -> list[Reservation]:
        return [r for r in self._reservations.values() if r.subnet == subnet]


class Boto3Ec2:
    """The EC2 API through boto3, pages and filter values chunked as EC2 allows; every failure a CloudError.

    `budget`: the most API calls it may make (a watch cycle's); one more raises BudgetExhausted before it is sent.
    botocore retries a throttled call (its standard retry mode, up to `max_attempts` in all) inside one counted call.
    """

    def __init__(self, client: Any, budget: int | None = None) -> None:
        self.client = client
        self.calls = 0
        self.budget = budget
        self.where = f"EC2 in {client.meta.region_name}"

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if self.budget is not None and self.calls >= self.budget:
            raise BudgetExhausted(self.budget)
        self.calls += 1
        region = self.client.meta.region_name
        try:
            reply: dict[str, Any] = getattr(self.client, operation)(**kwargs)
            return reply
        except NoCredentialsError as exc:
            raise CloudError(_NO_CREDENTIALS) from exc
        except ClientError as exc:
            raise _client_error(exc, region) from exc
        except BotoCoreError as exc:  # endpoint unreachable, timeouts, a broken reply
            raise CloudError(f"cannot reach EC2 in {region}: {exc}", transient=True) from exc

    def interfaces(self, name: str, values: Sequence[str]) -> list[Interface]:
        found: list[Interface] = []
        unique = sorted(set(values))
        for start in range(0, len(unique), FILTER_VALUES):
            token = ""
            while True:
                page = {"NextToken": token} if token else {}
                filters = [{"Name": name, "Values": unique[start : start + FILTER_VALUES]}]
                reply = self._call("describe_network_interfaces", Filters=filters, MaxResults=PAGE, **page)
                items = _members(reply, "NetworkInterfaces", "DescribeNetworkInterfaces")
                found += [interface(item, f"DescribeNetworkInterfaces[{i}]") for i, item in enumerate(items)]
                token = reply.get("NextToken") or ""
                if not token:
                    break
        return found

    def reservations(self, subnet: str) -> list[Reservation]:
        found: list[Reservation] = []
        token = ""
        while True:
            page = {"NextToken": token} if token else {}
            reply = self._call("get_subnet_cidr_reservations", SubnetId=subnet, **page)
            items = _members(reply, "SubnetIpv4CidrReservations", "GetSubnetCidrReservations")
            found += [reservation(item, f"GetSubnetCidrReservations[{i}]") for i, item in enumerate(items)]
            token = reply.get("NextToken") or ""
            if not token:
                return found


_NO_CREDENTIALS = (
    "no AWS credentials: --cloud aws looks for them where the AWS CLI does (AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or --aws-profile, ~/.aws/credentials, SSO); give it an identity allowed "
    "the README's read-only policy, or audit saved output with --cloud-from-file"
)


def _client_error(exc: Any, region: str) -> CloudError:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", ""), error.get("Message", "")
    operation = exc.operation_name
    if code in THROTTLED:
        return CloudError(
            f"EC2 throttled {operation} in {region} even after retries ({code}); try again later, or audit less "
            "often (the watch's --cloud-budget)",
            transient=True,
        )
    if code in DENIED:
        return CloudError(f"access denied: {operation} needs ec2:{operation} (the README's IAM policy): {message}")
    if code in BAD_CREDENTIALS:
        return CloudError(f"AWS refused the credentials ({code}): {message}")
    return CloudError(f"{operation} in {region} failed: {code}: {message}")


def connect(
    region: str | None, profile: str | None, budget: int | None = None, explicit_credentials: bool = False
) -> Boto3Ec2:
    """An EC2 reader of the region and credentials the AWS CLI would use (options first, then AWS_REGION,
    AWS_PROFILE, the profile's files). `explicit_credentials`: refuse credentials from the instance's or the
    container's role (IMDS, the ECS endpoint), which a pod must not borrow from its node: the watch's rule."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:
        raise CloudError(f"--cloud aws needs boto3: {names.install_hint('aws')}") from exc
    # The AWS CLI (v2) takes AWS_REGION before AWS_DEFAULT_REGION ("Environment variables to configure the AWS
    # CLI"); botocore reads only the latter (botocore/configprovider.py, `region`)
    region = os.environ.get("AWS_REGION") or None if region is None else region
    if region is not None and not REGION.fullmatch(region):
        raise CloudError(f"--region {region!r} is not an AWS region such as us-east-1")
    try:
        session = boto3.Session(profile_name=profile or None, region_name=region)
        credentials = session.get_credentials()
    except BotoCoreError as exc:  # ProfileNotFound, a broken ~/.aws/config
        raise CloudError(str(exc)) from exc
    if not session.region_name:
        raise CloudError("no AWS region: pass --region, or set AWS_REGION or the profile's region (as for the AWS CLI)")
    if credentials is None:
        raise CloudError(_NO_CREDENTIALS)
    if explicit_credentials and credentials.method in {"iam-role", "container-role"}:
        raise CloudError(
            f"the credentials come from the node's or container's role ({credentials.method}): the watch takes "
            "only credentials given to it (a Secret's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a credentials "
            "file), so that no pod borrows its node's role"
        )
    config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=10, read_timeout=30)
    return Boto3Ec2(session.client("ec2", config=config), budget)

"""What the stacks need that moto 5.2.1 lacks or gets wrong, implemented minimally after the AWS API reference:
placement groups (and RunInstances into them), MonitorInstances, an interface's type and IPv4 prefixes (at create,
and assigned or unassigned later), interfaces detached at termination, the description of group-referencing rules
and of subnet CIDR reservations, a hosted zone made private by its VPC. Each function says what moto does instead,
and where the real behaviour is written down.

Installed into the moto server process only (`emulator.serve`). moto 5.2.1 has no placement groups at all (no model,
`moto/ec2/responses/` has no handler: "The create_placement_group action has not been implemented") and raises
NotImplementedError in `Monitoring.monitor_instances` (`moto/ec2/responses/monitoring.py`). Each handler follows the
EC2 API reference page it names; what the AWS provider sends and reads is in hashicorp/aws v5.100.0
`internal/service/ec2/ec2_placement_group.go` (create, wait for `available`, read by `GroupNames`, delete, wait until
`InvalidPlacementGroup.Unknown`) and `ec2_instance.go` (`MonitorInstances` when `monitoring` changes, read back from
`Monitoring.State`; `placement_group` read back from `Placement.GroupName`).
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field
from typing import Any, cast

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instance_types import INSTANCE_TYPES
from moto.ec2.models.instances import Instance
from moto.ec2.models.security_groups import SecurityGroupRule
from moto.ec2.responses import EC2Response
from moto.route53.responses import Route53

_ids = itertools.count(1)

#: PlacementStrategy values (API reference, "PlacementGroup" data type).
STRATEGIES = ("cluster", "spread", "partition")


@dataclass
class PlacementGroup:
    """API reference, "PlacementGroup" data type (the members the provider reads)."""

    name: str
    strategy: str
    partition_count: int | None
    spread_level: str | None
    group_id: str = field(default_factory=lambda: f"pg-{next(_ids):017x}")

    def describe(self, backend: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "GroupName": self.name,
            "GroupId": self.group_id,
            "Strategy": self.strategy,
            "State": "available",
            "GroupArn": f"arn:aws:ec2:{backend.region_name}:{backend.account_id}:placement-group/{self.name}",
            "Tags": [{"Key": k, "Value": v} for k, v in backend.tags.get(self.group_id, {}).items()],
        }
        if self.partition_count is not None:
            out["PartitionCount"] = self.partition_count
        if self.spread_level is not None:
            out["SpreadLevel"] = self.spread_level
        return out


def _groups(backend: Any) -> dict[str, PlacementGroup]:
    if not hasattr(backend, "placement_groups"):
        backend.placement_groups = {}
    groups: dict[str, PlacementGroup] = backend.placement_groups
    return groups


def _unknown(name: str) -> EC2ClientError:
    """EC2 API reference, "Error codes": InvalidPlacementGroup.Unknown, "The specified placement group cannot be
    found"; the message text as EC2 words it for a name."""
    return EC2ClientError("InvalidPlacementGroup.Unknown", f"The Placement Group '{name}' is unknown.")


def create_placement_group(self: Any) -> ActionResult:
    """CreatePlacementGroup (API reference): GroupName, Strategy, PartitionCount, SpreadLevel, TagSpecification.N;
    a name already used in the region is InvalidPlacementGroup.Duplicate. The group is `available` at once (EC2
    reports `pending` first; the provider waits for `available`)."""
    self.error_on_dryrun()
    name = self._get_param("GroupName")
    strategy = self._get_param("Strategy")
    if strategy not in STRATEGIES:
        raise EC2ClientError("InvalidParameterValue", f"Value ({strategy}) for parameter strategy is invalid.")
    groups = _groups(self.ec2_backend)
    if name in groups:
        raise EC2ClientError("InvalidPlacementGroup.Duplicate", f"The placement group '{name}' already exists.")
    group = PlacementGroup(name, strategy, self._get_int_param("PartitionCount"), self._get_param("SpreadLevel"))
    groups[name] = group
    tags = self._parse_tag_specification().get("placement-group", {})
    if tags:
        self.ec2_backend.create_tags([group.group_id], tags)
    return ActionResult({"PlacementGroup": group.describe(self.ec2_backend)})


def describe_placement_groups(self: Any) -> ActionResult:
    """DescribePlacementGroups (API reference): GroupName.N and GroupId.N select; a name that does not exist is
    InvalidPlacementGroup.Unknown (the provider's not-found signal)."""
    groups = _groups(self.ec2_backend)
    names = self._get_param("GroupNames", [])
    ids = self._get_param("GroupIds", [])
    for name in names:
        if name not in groups:
            raise _unknown(name)
    selected = [g for g in groups.values() if (not names or g.name in names) and (not ids or g.group_id in ids)]
    return ActionResult({"PlacementGroups": [g.describe(self.ec2_backend) for g in selected]})


def delete_placement_group(self: Any) -> EmptyResult:
    """DeletePlacementGroup (API reference): "You must terminate all instances in the placement group before you
    can delete the placement group" (InvalidPlacementGroup.InUse)."""
    self.error_on_dryrun()
    name = self._get_param("GroupName")
    groups = _groups(self.ec2_backend)
    if name not in groups:
        raise _unknown(name)
    running = [
        i.id for i in self.ec2_backend.all_instances() if i.placement.group_name == name and i.state != "terminated"
    ]
    if running:
        raise EC2ClientError(
            "InvalidPlacementGroup.InUse", f"There are running instances in the group {name}: {running}"
        )
    group = groups.pop(name)
    self.ec2_backend.tags.pop(group.group_id, None)
    return EmptyResult()


_run_instances = EC2Response.run_instances


def run_instances(self: Any) -> ActionResult:
    """RunInstances with Placement.GroupName (API reference, "Placement" data type): the group must exist, its
    strategy must be one the instance type supports (DescribeInstanceTypes' PlacementGroupInfo.SupportedStrategies,
    the real records moto ships in `moto/ec2/resources/instance_types.json`; EC2 User Guide, "Placement group rules
    and limitations": no burstable performance types in a cluster group), and the instance reports the group in
    DescribeInstances' Placement.GroupName. The refusal's code and text are EC2's as users report them (e.g.
    dstackai/dstack issue 2872: InvalidParameterCombination, "Cluster placement groups are not supported by the
    't3.xlarge' instance type. ...")."""
    name = self._get_param("Placement.GroupName")
    if name:
        group = _groups(self.ec2_backend).get(name)
        if group is None:
            raise _unknown(name)
        instance_type = self._get_param("InstanceType")
        supported = INSTANCE_TYPES.get(instance_type, {}).get("PlacementGroupInfo", {}).get("SupportedStrategies", [])
        if group.strategy not in supported:
            raise EC2ClientError(
                "InvalidParameterCombination",
                f"{group.strategy.capitalize()} placement groups are not supported by the '{instance_type}' instance "
                "type. Specify a supported instance type or change the placement group strategy, and try again.",
            )
    result = _run_instances(self)
    reservation: Any = result.result
    for instance in reservation.instances:
        instance.placement.group_name = name or ""
    return result


def _set_monitoring(self: Any, state: str, reported: str) -> ActionResult:
    """MonitorInstances / UnmonitorInstances (API reference): InstanceId.N; the response lists each instance with
    its monitoring state (`pending` / `disabling` while EC2 switches; this emulation switches at once)."""
    self.error_on_dryrun()
    ids = self._get_param("InstanceIds", [])
    monitorings = []
    for instance in self.ec2_backend.get_multi_instances_by_id(ids):
        instance.monitoring_state = state
        monitorings.append({"InstanceId": instance.id, "Monitoring": {"State": reported}})
    return ActionResult({"InstanceMonitorings": monitorings})


def monitor_instances(self: Any) -> ActionResult:
    return _set_monitoring(self, "enabled", "pending")


def unmonitor_instances(self: Any) -> ActionResult:
    return _set_monitoring(self, "disabled", "disabling")


_terminate = Instance.terminate


def terminate(self: Any) -> Any:
    """TerminateInstances: an interface attached with DeleteOnTermination false is detached and kept (EC2 User
    Guide, "Network interfaces", "Delete on termination": interfaces you create and attach are detached, not
    deleted, when the instance terminates). moto 5.2.1 (`Instance.terminate`) leaves it attached, so that its
    DetachNetworkInterface then fails as for a running instance's primary interface."""
    state = _terminate(self)
    for nic in self.nics.values():
        # the interface's side of Instance.detach_eni; the instance keeps its record of it, from which moto derives
        # the terminated instance's private IP and DNS name
        nic.instance, nic.attachment_id, nic.attach_time, nic.device_index = None, None, None, None
        nic.status = "available"
    return state


_create_network_interface = EC2Response.create_network_interface


def create_network_interface(self: Any) -> ActionResult:
    """CreateNetworkInterface with InterfaceType and Ipv4Prefix.N (API reference); moto 5.2.1 ignores both
    (`moto/ec2/responses/elastic_network_interfaces.py`) and reports every interface as `interface` with no prefixes,
    so the provider would see an EFA interface or the pod prefixes vanish. DescribeNetworkInterfaces reports them as
    InterfaceType and Ipv4Prefixes[].Ipv4Prefix ("NetworkInterface" data type). An explicit prefix must lie in the
    interface's subnet (InvalidParameterValue otherwise); Ipv4PrefixCount (AWS picks the prefixes) is not emulated
    and is refused, loudly, rather than ignored."""
    prefixes = [p["Ipv4Prefix"] for p in self._get_param("Ipv4Prefixes", [])]
    if self._get_param("Ipv4PrefixCount") is not None:
        raise EC2ClientError("InvalidParameterValue", "harness: Ipv4PrefixCount is not emulated")
    _in_subnet(self.ec2_backend.get_subnet(self._get_param("SubnetId")), prefixes)
    result = _create_network_interface(self)
    eni = cast(dict[str, Any], result.result)["NetworkInterface"]
    eni.interface_type = self._get_param("InterfaceType") or "interface"
    eni.ipv4_prefixes = [{"Ipv4Prefix": p} for p in prefixes]
    return result


def _in_subnet(subnet_of_eni: Any, prefixes: list[str]) -> None:
    """EC2 delegates a prefix only from the interface's subnet (InvalidParameterValue otherwise)."""
    subnet = ipaddress.ip_network(subnet_of_eni.cidr_block)
    for prefix in prefixes:
        if not ipaddress.ip_network(prefix).subnet_of(subnet):  # type: ignore[arg-type]
            raise EC2ClientError("InvalidParameterValue", f"Prefix {prefix} is not within the subnet {subnet}")


_assign_private_ip_addresses = EC2Response.assign_private_ip_addresses


def assign_private_ip_addresses(self: Any) -> ActionResult:
    """AssignPrivateIpAddresses with Ipv4Prefix.N (API reference: "One or more IPv4 prefixes assigned to the network
    interface. You can't use this option if you use the Ipv4PrefixCount option"): how a prefix is attached to a
    running interface (EC2 has no separate AssignIpv4Prefixes action). moto 5.2.1 reads PrivateIpAddress.N and
    SecondaryPrivateIpAddressCount only (`moto/ec2/responses/elastic_network_interfaces.py`,
    `assign_private_ip_addresses`) and drops the prefixes. Ipv4PrefixCount (AWS picks) is refused, as on create.
    A prefix is attached once; the reply lists AssignedIpv4Prefixes ("AssignPrivateIpAddresses" response)."""
    prefixes = [str(ipaddress.ip_network(p)) for p in self._get_param("Ipv4Prefixes", [])]
    if self._get_param("Ipv4PrefixCount") is not None:
        if prefixes:
            raise EC2ClientError(
                "InvalidParameterCombination", "Ipv4Prefixes and Ipv4PrefixCount cannot be specified together"
            )
        raise EC2ClientError("InvalidParameterValue", "harness: Ipv4PrefixCount is not emulated")
    if not prefixes:
        return _assign_private_ip_addresses(self)
    eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    _in_subnet(eni.subnet, prefixes)
    held = [p["Ipv4Prefix"] for p in getattr(eni, "ipv4_prefixes", [])]
    eni.ipv4_prefixes = [{"Ipv4Prefix": p} for p in [*held, *(p for p in prefixes if p not in held)]]
    return ActionResult({"NetworkInterfaceId": eni.id, "AssignedIpv4Prefixes": [{"Ipv4Prefix": p} for p in prefixes]})


_unassign_private_ip_addresses = EC2Response.unassign_private_ip_addresses


def unassign_private_ip_addresses(self: Any) -> ActionResult:
    """UnassignPrivateIpAddresses with Ipv4Prefix.N (API reference: "The IPv4 prefixes to unassign from the network
    interface"): a prefix detached from a running interface, which moto 5.2.1 ignores (it reads PrivateIpAddress.N
    only, `unassign_private_ip_addresses` in the same file). A prefix the interface does not hold is refused
    (InvalidParameterValue; EC2's exact wording for this case is not documented)."""
    prefixes = [str(ipaddress.ip_network(p)) for p in self._get_param("Ipv4Prefixes", [])]
    if not prefixes:
        return _unassign_private_ip_addresses(self)
    eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    held = [p["Ipv4Prefix"] for p in getattr(eni, "ipv4_prefixes", [])]
    for prefix in prefixes:
        if prefix not in held:
            raise EC2ClientError("InvalidParameterValue", f"Prefix {prefix} is not assigned to {eni.id}")
    eni.ipv4_prefixes = [{"Ipv4Prefix": p} for p in held if p not in prefixes]
    return EmptyResult()


_create_subnet_cidr_reservation = EC2Response.create_subnet_cidr_reservation


def create_subnet_cidr_reservation(self: Any) -> ActionResult:
    """CreateSubnetCidrReservation keeps its Description ("SubnetCidrReservation" data type); moto 5.2.1 drops it
    (`moto/ec2/models/subnets.py`, `SubnetCidrReservation.__init__`), and `description` forces a replacement."""
    result = _create_subnet_cidr_reservation(self)
    cast(dict[str, Any], result.result)["SubnetCidrReservation"].description = self._get_param("Description")
    return result


def _rule_description(self: Any) -> str | None:
    """DescribeSecurityGroupRules' Description ("SecurityGroupRule" data type) is the rule's description whatever
    its source; moto 5.2.1 (`moto/ec2/models/security_groups.py`, `SecurityGroupRule.description`) reads it from a
    CIDR only, so a rule that references a group loses it."""
    return self.ip_range.get("Description") or self.source_group.get("Description")


_create_hosted_zone = Route53.create_hosted_zone


def create_hosted_zone(self: Any) -> ActionResult:
    """CreateHostedZone (Route 53 API reference): "VPC — (Private hosted zones only) ... If you specify VPC, Route 53
    creates a private hosted zone"; the provider sends VPC without HostedZoneConfig.PrivateZone
    (`internal/service/route53/zone.go`, create), which moto 5.2.1 (`moto/route53/responses.py`) requires before it
    reads VPC, creating a public zone with no VPC."""
    if self._get_param("VPC.VPCId"):
        get_bool = self._get_bool_param
        self._get_bool_param = lambda name, default=None: (
            name == "HostedZoneConfig.PrivateZone" or get_bool(name, default)
        )
    return _create_hosted_zone(self)


def install() -> None:
    """Put the handlers in place in moto's classes (EC2 and Route 53 dispatch by action name,
    `moto/core/responses.py`)."""
    patches: list[tuple[type, str, Any]] = [
        (EC2Response, "create_placement_group", create_placement_group),
        (EC2Response, "describe_placement_groups", describe_placement_groups),
        (EC2Response, "delete_placement_group", delete_placement_group),
        (EC2Response, "run_instances", run_instances),
        (EC2Response, "monitor_instances", monitor_instances),
        (EC2Response, "unmonitor_instances", unmonitor_instances),
        (EC2Response, "create_network_interface", create_network_interface),
        (EC2Response, "create_subnet_cidr_reservation", create_subnet_cidr_reservation),
        (EC2Response, "assign_private_ip_addresses", assign_private_ip_addresses),
        (EC2Response, "unassign_private_ip_addresses", unassign_private_ip_addresses),
        (Instance, "terminate", terminate),
        (SecurityGroupRule, "description", property(_rule_description)),
        (Route53, "create_hosted_zone", create_hosted_zone),
    ]
    for cls, name, value in patches:
        setattr(cls, name, value)

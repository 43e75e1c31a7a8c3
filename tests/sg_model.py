"""How AWS decides whether a TCP connection between two addresses in a VPC is allowed by security groups.

The rule, from the VPC user guide "Control traffic to your AWS resources using security groups"
(vpc-security-groups.html) and "Security group rules" (security-group-rules.html): rules only allow; a
connection needs an egress rule of a group of the sender AND an ingress rule of a group of the receiver that
match the protocol, the port and the peer (a CIDR that holds the peer's address, or a group the peer's
interface belongs to); groups are stateful, so replies need no rule. A Network Load Balancer without a
security group filters nothing: "If you don't assign a security group to your Network Load Balancer, all
client traffic can reach the Network Load Balancer listeners and all traffic can leave" (ELB user guide,
network/load-balancer-security-groups.html). The model reads the synthesized Terraform JSON, nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

_REF = re.compile(r"^\$\{(aws_security_group\.[\w-]+)\.id\}$")


def group_of(ref: str) -> str:
    """`${aws_security_group.NAME.id}` -> `aws_security_group.NAME`."""
    match = _REF.match(ref)
    assert match, f"not a security group reference: {ref}"
    return match.group(1)


@dataclass(frozen=True)
class Endpoint:
    """An interface: its address and its security groups (None: not filtered, as an NLB without groups)."""

    name: str
    ip: IPv4Address
    groups: frozenset[str] | None = field(default=None)


def _rules(stack: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return list(stack.get("resource", {}).get(f"aws_vpc_security_group_{kind}_rule", {}).values())


def _matches(rule: dict[str, Any], peer: Endpoint, port: int) -> bool:
    if rule["ip_protocol"] not in ("-1", "tcp"):
        return False
    if rule["ip_protocol"] == "tcp" and not rule["from_port"] <= port <= rule["to_port"]:
        return False
    if "cidr_ipv4" in rule:
        return peer.ip in IPv4Network(rule["cidr_ipv4"])
    if "referenced_security_group_id" in rule:
        return peer.groups is not None and group_of(rule["referenced_security_group_id"]) in peer.groups
    return False


def _side_allows(stack: dict[str, Any], kind: str, me: Endpoint, peer: Endpoint, port: int) -> bool:
    if me.groups is None:
        return True
    return any(
        group_of(rule["security_group_id"]) in me.groups and _matches(rule, peer, port) for rule in _rules(stack, kind)
    )


def tcp_allowed(stack: dict[str, Any], src: Endpoint, dst: Endpoint, port: int) -> bool:
    """Whether `src` may open a TCP connection to `dst:port`."""
    return _side_allows(stack, "egress", src, dst, port) and _side_allows(stack, "ingress", dst, src, port)

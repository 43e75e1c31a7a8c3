"""Which instance each Kubernetes node is, and every interface and reservation the reconciliation needs.

A node names its instance in `spec.providerID` when a cloud provider (or kubelet's --provider-id) set it; our
kubeadm nodes have none, so a node without one is found by its InternalIP, the primary private address of its
instance's primary interface. Calls, in order: the nodes' primary interfaces by address (only for nodes without a
provider ID), every interface attached to their instances, every interface of those subnets (the neighbours whose
addresses a pool may collide with), and each subnet's CIDR reservations: 3 + one per subnet, more only past 200
nodes or 1000 interfaces a subnet (see ec2.FILTER_VALUES and ec2.PAGE).
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from spider_validate.cloud.ec2 import CloudError, Ec2, Interface, Reservation

# kubernetes v1.10.2 pkg/cloudprovider/providers/aws/instances.go:33-88 (awsInstanceRegMatch, mapToAWSInstanceID),
# the same rule in kubernetes/cloud-provider-aws pkg/providers/v1/instances.go (MapToAWSInstanceID)
AWS_INSTANCE = re.compile(r"^i-[^/]*$")


def instance_id(provider_id: str) -> str:
    """The EC2 instance ID in a node's providerID (`aws:///<zone>/<id>`, `aws:////<id>` or a bare `<id>`), after
    mapToAWSInstanceID (cited above): a string without the aws:// prefix is taken as a bare ID, the path's one or
    two tokens give the ID, which must match ^i-[^/]*$. ValueError otherwise."""
    s = provider_id if provider_id.startswith("aws://") else "aws:///" + "/" + provider_id
    url = urlsplit(s)
    if url.scheme != "aws":
        raise ValueError(f"invalid scheme for AWS instance ({provider_id})")
    tokens = url.path.strip("/").split("/")
    aws_id = tokens[0] if len(tokens) == 1 else tokens[1] if len(tokens) == 2 else ""
    if not aws_id or not AWS_INSTANCE.match(aws_id):
        raise ValueError(f"invalid format for AWS instance ({provider_id})")
    return aws_id


@dataclass(frozen=True)
class NodeRef:
    """A node as the cloud side looks for it: by instance ID when its providerID names one, else by address."""

    name: str
    instance: str | None
    address: str | None


def node_ref(node: dict[str, Any]) -> NodeRef:
    """CloudError for a node that cannot be an EC2 instance (kind, another provider) or cannot be found (no
    providerID and no InternalIP)."""
    name = node["metadata"]["name"]
    provider = (node.get("spec") or {}).get("providerID") or ""
    internal = [
        a.get("address")
        for a in (node.get("status") or {}).get("addresses") or []
        if isinstance(a, dict) and a.get("type") == "InternalIP"
    ]
    address = next((a for a in internal if isinstance(a, str) and _is_ipv4(a)), None)
    if provider:
        scheme = provider.partition("://")[0] if "://" in provider else ""
        if scheme and scheme != "aws":
            what = "a kind node" if scheme == "kind" else f"a {scheme} node"
            raise CloudError(
                f"node {name} is {what} (providerID {provider}), not an EC2 instance: --cloud aws audits clusters "
                "on EC2 only; audit this one without --cloud"
            )
        try:
            return NodeRef(name, instance_id(provider), address)
        except ValueError as exc:
            raise CloudError(f"node {name}: providerID {provider!r} names no EC2 instance ({exc})") from None
    if address is None:
        raise CloudError(
            f"node {name} has no providerID and no IPv4 InternalIP: the cloud side cannot tell its instance "
            "(set kubelet's --provider-id=aws:///ZONE/INSTANCE-ID, or --node-ip)"
        )
    return NodeRef(name, None, address)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


@dataclass
class Inventory:
    """The nodes' instances and every interface and reservation of their subnets."""

    where: str  # EC2 in REGION, or the saved output
    instances: dict[str, str]  # node name -> instance ID
    interfaces: list[Interface]
    reservations: list[Reservation]
    calls: int = 0
    by_instance: dict[str, list[Interface]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_instance = defaultdict(list)
        for eni in self.interfaces:
            if eni.instance:
                self.by_instance[eni.instance].append(eni)

    def of_node(self, node: str) -> list[Interface]:
        """The interfaces attached to a node's instance, by device index."""
        instance = self.instances.get(node)
        return sorted(self.by_instance.get(instance or "", []), key=lambda e: (e.device_index or 0, e.id))

    def node_of(self, eni: Interface) -> str | None:
        return next((n for n, i in self.instances.items() if i == eni.instance), None)


def gather(ec2: Ec2, nodes: list[NodeRef]) -> Inventory:
    """Map every node to its instance and read what the rules need; CloudError naming the nodes EC2 does not know
    (the wrong region, or not EC2 nodes)."""
    instances = {n.name: n.instance for n in nodes if n.instance}
    by_address = {n.address: n.name for n in nodes if not n.instance and n.address}
    if by_address:
        for eni in ec2.interfaces("addresses.private-ip-address", sorted(by_address)):
            node = by_address.get(eni.primary_ip)
            if node and eni.instance and eni.device_index == 0:
                instances[node] = eni.instance
    attached = ec2.interfaces("attachment.instance-id", sorted(set(instances.values()))) if instances else []
    found = {eni.instance for eni in attached}
    missing = sorted(n.name for n in nodes if instances.get(n.name) not in found)
    if missing:
        how = {n.name: f"instance {n.instance}" if n.instance else f"address {n.address}" for n in nodes}
        raise CloudError(
            f"{ec2.where} has no instance for node(s) {', '.join(f'{m} ({how[m]})' for m in missing)}: is "
            "--region the cluster's, and are these EC2 nodes? (a node without providerID is found by its "
            "InternalIP, the primary address of its instance's first interface)"
        )
    subnets = sorted({eni.subnet for eni in attached})
    neighbours = {eni.id: eni for eni in [*attached, *ec2.interfaces("subnet-id", subnets)]}
    reservations = [r for subnet in subnets for r in ec2.reservations(subnet)]
    return Inventory(ec2.where, instances, sorted(neighbours.values(), key=lambda e: e.id), reservations, ec2.calls)

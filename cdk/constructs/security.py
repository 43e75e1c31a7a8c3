"""The cluster security group: all traffic among members (EFA needs it), the API from the VPC and the admin CIDR."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Literal

from cdktn_provider_aws.security_group import SecurityGroup
from cdktn_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktn_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

API_PORT = 6443
#: What a group is for, the end of its name: the nodes' group, or the API load balancer's (HA).
GroupRole = Literal["cluster", "api-lb"]
#: What nodes may open towards the internet (through the NAT gateway): package repositories, pkgs.k8s.io,
#: container registries, SSM and the EFA installer over HTTPS, Ubuntu's archive over HTTP (apt checks signatures).
#: Amazon DNS, NTP and the instance metadata service are not filtered by security groups.
EGRESS_PORTS = {
    443: "HTTPS: SSM, registries, pkgs.k8s.io, EFA installer",
    80: "HTTP: Ubuntu archive (signed)",
}


@dataclass(frozen=True)
class ApiClients:
    """The networks that may open the API port: the cluster's group and the API load balancer's let them in."""

    vpc: IPv4Network  # the VPC: nodes, pods and anything else inside it
    admin: IPv4Network | None = None  # a network outside the VPC (VPN, peering), or none


def security_group(scope: Construct, *, cluster_name: str, vpc_id: str, role: GroupRole, what: str) -> SecurityGroup:
    """A group named `<cluster>-<role>`, replaced before its old self is destroyed (rules may reference it)."""
    return SecurityGroup(
        scope,
        role,
        name_prefix=f"{cluster_name}-{role}-",
        description=f"{cluster_name}: {what}",
        vpc_id=vpc_id,
        tags={"Name": f"{cluster_name}-{role}"},
        lifecycle={"create_before_destroy": True},
    )


def api_egress(scope: Construct, id_: str, group_id: str, to_group_id: str, description: str) -> None:
    """Let members of `group_id` open the API port on members of `to_group_id`."""
    VpcSecurityGroupEgressRule(
        scope,
        id_,
        security_group_id=group_id,
        referenced_security_group_id=to_group_id,
        ip_protocol="tcp",
        from_port=API_PORT,
        to_port=API_PORT,
        description=description,
    )


def allow_api_from(scope: Construct, group_id: str, clients: ApiClients) -> None:
    """Ingress on the API port from the VPC and the admin network: the API's clients (nodes included)."""
    sources = {"vpc": str(clients.vpc)}
    if clients.admin is not None:
        sources["admin"] = str(clients.admin)
    for label, cidr in sources.items():
        VpcSecurityGroupIngressRule(
            scope,
            f"in-api-{label}",
            security_group_id=group_id,
            cidr_ipv4=cidr,
            ip_protocol="tcp",
            from_port=API_PORT,
            to_port=API_PORT,
            description=f"Kubernetes API from the {label} network",
        )


class ClusterSecurity(Construct):
    """No 0.0.0.0/0 ingress, no SSH: nodes are reached through SSM Session Manager."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,  # the group's name prefix and Name tag: `<cluster_name>-cluster`
        vpc_id: str,  # the VPC the group belongs to
        api_clients: ApiClients,  # who may open the API port on the control planes
    ) -> None:
        super().__init__(scope, id_)
        self.group = security_group(
            self,
            cluster_name=cluster_name,
            vpc_id=vpc_id,
            role="cluster",
            what="nodes, pods (ENI prefixes) and EFA traffic",
        )
        sg = self.group.id
        VpcSecurityGroupIngressRule(
            self,
            "in-self",
            security_group_id=sg,
            referenced_security_group_id=sg,
            ip_protocol="-1",
            description="all traffic among cluster members (EFA, kubelet, pods on ENI prefixes)",
        )
        VpcSecurityGroupEgressRule(
            self,
            "out-self",
            security_group_id=sg,
            referenced_security_group_id=sg,
            ip_protocol="-1",
            description="all traffic among cluster members (EFA requires it)",
        )
        allow_api_from(self, sg, api_clients)
        for port, why in EGRESS_PORTS.items():
            VpcSecurityGroupEgressRule(
                self,
                f"out-{port}",
                security_group_id=sg,
                cidr_ipv4="0.0.0.0/0",
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=why,
            )

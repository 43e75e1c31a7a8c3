"""The cluster security group: all traffic among members (EFA needs it), the API from the VPC and the admin CIDR."""

from __future__ import annotations

from cdktn_provider_aws.security_group import SecurityGroup
from cdktn_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktn_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from cdk.config import ClusterConfig

API_PORT = 6443
#: What nodes may open towards the internet (through the NAT gateway): package repositories, pkgs.k8s.io,
#: container registries, SSM and the EFA installer over HTTPS, Ubuntu's archive over HTTP (apt checks signatures).
#: Amazon DNS, NTP and the instance metadata service are not filtered by security groups.
EGRESS_PORTS = {
    443: "HTTPS: SSM, registries, pkgs.k8s.io, EFA installer",
    80: "HTTP: Ubuntu archive (signed)",
}


def security_group(scope: Construct, config: ClusterConfig, vpc_id: str, role: str, what: str) -> SecurityGroup:
    """A group named `<cluster>-<role>`, replaced before its old self is destroyed (rules may reference it)."""
    return SecurityGroup(
        scope,
        role,
        name_prefix=f"{config.name}-{role}-",
        description=f"{config.name}: {what}",
        vpc_id=vpc_id,
        tags={"Name": f"{config.name}-{role}"},
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


def allow_api_from(scope: Construct, group_id: str, config: ClusterConfig) -> None:
    """Ingress on the API port from the VPC and the admin network: the API's clients (nodes included)."""
    sources = {"vpc": str(config.vpc_cidr)}
    if config.admin_cidr is not None:
        sources["admin"] = str(config.admin_cidr)
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

    def __init__(self, scope: Construct, id_: str, *, config: ClusterConfig, vpc_id: str) -> None:
        super().__init__(scope, id_)
        self.group = security_group(self, config, vpc_id, "cluster", "nodes, pods (ENI prefixes) and EFA traffic")
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
        allow_api_from(self, sg, config)
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

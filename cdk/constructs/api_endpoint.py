"""A stable DNS name for the Kubernetes API: control-plane-0, or an internal NLB for three."""

from __future__ import annotations

from cdktn import TerraformResource
from cdktn_provider_aws.instance import Instance
from cdktn_provider_aws.lb import Lb
from cdktn_provider_aws.lb_listener import LbListener, LbListenerDefaultAction
from cdktn_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from cdktn_provider_aws.lb_target_group_attachment import LbTargetGroupAttachment
from cdktn_provider_aws.route53_record import Route53Record, Route53RecordAlias
from cdktn_provider_aws.route53_zone import Route53Zone, Route53ZoneVpc
from constructs import Construct

from cdk.checkov import checkov_skip
from cdk.constructs.security import API_PORT, ApiClients, allow_api_from, api_egress, security_group


def api_dns_name(cluster_name: str) -> str:
    """The name kubeadm's controlPlaneEndpoint and every kubeconfig use (also in the API certificate)."""
    return f"api.{cluster_name}.internal"


class ApiEndpoint(Construct):
    """Private zone `<name>.internal`; `api` resolves to control-plane-0, or to an internal NLB when HA."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,  # the private zone is `<cluster_name>.internal`; prefix of the NLB's group name
        vpc_id: str,  # the VPC the zone answers in, and the NLB's
        subnet_id: str,  # the nodes' subnet, where the NLB takes its address
        cluster_group_id: str,  # the nodes' security group: the NLB's targets, and the NLB's clients among them
        api_clients: ApiClients,  # who may open the API port on the NLB
        control_planes: list[Instance],  # one: DNS points to it; three: the NLB's targets
        reservations: list[TerraformResource],  # the subnet's reserved blocks, created before the NLB
    ) -> None:
        super().__init__(scope, id_)
        self.dns_name = api_dns_name(cluster_name)
        zone = Route53Zone(
            self,
            "zone",
            name=f"{cluster_name}.internal",
            vpc=[Route53ZoneVpc(vpc_id=vpc_id)],
            force_destroy=True,
            comment=f"{cluster_name}: private names of the cluster",
        )
        if len(control_planes) == 1:
            # The instance's private IP is the ENI's fixed address from the IP plan.
            Route53Record(
                self,
                "api",
                zone_id=zone.zone_id,
                name=self.dns_name,
                type="A",
                ttl=60,
                records=[control_planes[0].private_ip],
            )
            return
        nlb = Lb(
            self,
            "nlb",
            name_prefix="k8api-",
            internal=True,
            load_balancer_type="network",
            subnets=[subnet_id],
            # An NLB can only get security groups when it is created (ELB user guide,
            # network/load-balancer-security-groups.html); without one it would accept any client.
            security_groups=[self._nlb_group(cluster_name, vpc_id, cluster_group_id, api_clients)],
            enable_cross_zone_load_balancing=True,
            depends_on=reservations,  # AWS picks its address: not one of the nodes' or pods'
        )
        checkov_skip(
            nlb,
            "CKV_AWS_150",
            "deletion protection would make destroy fail and leave the NLB behind; "
            "it holds no data and is recreated by deploy",
        )
        checkov_skip(
            nlb,
            "CKV_AWS_91",
            "an NLB writes access logs only for TLS listeners and this one passes TCP through to the API server; "
            "API requests are in the API servers' audit log, connections in the VPC flow logs",
        )
        targets = LbTargetGroup(
            self,
            "api-targets",
            name_prefix="k8api-",
            port=API_PORT,
            protocol="TCP",
            vpc_id=vpc_id,
            target_type="ip",
            # Off (the default for ip targets over TCP, set so it stays so): the control planes see the NLB's
            # address, and a control plane reaching the API through the NLB lands on itself without hairpinning.
            preserve_client_ip="false",
            health_check=LbTargetGroupHealthCheck(protocol="HTTPS", path="/readyz", port=str(API_PORT)),
        )
        LbListener(
            self,
            "api-listener",
            load_balancer_arn=nlb.arn,
            port=API_PORT,
            protocol="TCP",
            default_action=[LbListenerDefaultAction(type="forward", target_group_arn=targets.arn)],
        )
        for i, instance in enumerate(control_planes):
            LbTargetGroupAttachment(
                self,
                f"api-target-{i}",
                target_group_arn=targets.arn,
                target_id=instance.private_ip,
                port=API_PORT,
            )
        Route53Record(
            self,
            "api",
            zone_id=zone.zone_id,
            name=self.dns_name,
            type="A",
            alias=Route53RecordAlias(name=nlb.dns_name, zone_id=nlb.zone_id, evaluate_target_health=True),
        )

    def _nlb_group(self, cluster_name: str, vpc_id: str, cluster_group_id: str, api_clients: ApiClients) -> str:
        """The NLB's group: API clients in, API and health checks out to the cluster; the nodes' way out to it."""
        group = security_group(
            self,
            cluster_name=cluster_name,
            vpc_id=vpc_id,
            role="api-lb",
            what="internal load balancer of the Kubernetes API",
        )
        allow_api_from(self, group.id, api_clients)
        api_egress(
            self,
            "lb-to-control-planes",
            group.id,
            cluster_group_id,
            "Kubernetes API and its health check on the control planes",
        )
        api_egress(
            self,
            "nodes-to-lb",
            cluster_group_id,
            group.id,
            "nodes to the Kubernetes API's load balancer (controlPlaneEndpoint)",
        )
        return group.id

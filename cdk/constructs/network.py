"""The VPC in one AZ: private node subnet with its reserved pod block, public subnet with NAT, flow logs."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

from cdktn import TerraformResource
from cdktn_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktn_provider_aws.default_security_group import DefaultSecurityGroup
from cdktn_provider_aws.ec2_subnet_cidr_reservation import Ec2SubnetCidrReservation
from cdktn_provider_aws.eip import Eip
from cdktn_provider_aws.flow_log import FlowLog
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from cdktn_provider_aws.internet_gateway import InternetGateway
from cdktn_provider_aws.nat_gateway import NatGateway
from cdktn_provider_aws.route import Route
from cdktn_provider_aws.route_table import RouteTable
from cdktn_provider_aws.route_table_association import RouteTableAssociation
from cdktn_provider_aws.subnet import Subnet
from cdktn_provider_aws.vpc import Vpc
from constructs import Construct

from cdk.constructs.iam import assume_role_policy
from cdk.constructs.secrets import ClusterSecrets


class Network(Construct):
    """Nodes live in the private subnet and reach the internet only through the NAT gateway."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,  # every Name tag is it or starts with it
        availability_zone: str,  # the one AZ of both subnets (EFA needs one subnet, in one AZ)
        vpc_cidr: IPv4Network,  # the VPC's addresses, both subnets among them
        node_subnet: IPv4Network,  # private: the nodes' addresses and their pods' /28 prefixes
        node_block: IPv4Network,  # in node_subnet: reserved for the nodes' fixed addresses
        pod_block: IPv4Network,  # in node_subnet: reserved for the /28 prefixes on the nodes' ENIs
        public_subnet: IPv4Network,  # holds the NAT gateway only
        flow_log_retention_days: int,  # how long CloudWatch Logs keeps the VPC flow logs
        secrets: ClusterSecrets,  # the key that encrypts the flow logs and the log group's name
    ) -> None:
        super().__init__(scope, id_)
        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=str(vpc_cidr),
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": cluster_name},
        )
        # The default security group of a VPC allows all traffic between its members: close it.
        DefaultSecurityGroup(self, "default-sg", vpc_id=self.vpc.id, tags={"Name": f"{cluster_name}-default-closed"})
        self.node_subnet = Subnet(
            self,
            "nodes",
            vpc_id=self.vpc.id,
            cidr_block=str(node_subnet),
            availability_zone=availability_zone,
            map_public_ip_on_launch=False,
            tags={"Name": f"{cluster_name}-nodes"},
        )
        # AWS hands addresses of these blocks to nothing on its own: only the addresses and prefixes the ENIs name.
        # "explicit - You assign the reserved IP addresses"; "prefix" would let AWS assign the block's /28s to any
        # interface that asks for a prefix count (EC2 API reference, CreateSubnetCidrReservation).
        #: Interfaces that name addresses, and anything AWS gives an address by itself, are created after these.
        self.reservations: list[TerraformResource] = [
            Ec2SubnetCidrReservation(
                self,
                name,
                subnet_id=self.node_subnet.id,
                cidr_block=str(block),
                reservation_type="explicit",
                description=description,
            )
            for name, block, description in (
                ("node-block", node_block, "the nodes' fixed addresses"),
                ("pod-block", pod_block, "Spiderpool pod IPs: /28 prefixes on the nodes' ENIs"),
            )
        ]
        public = Subnet(
            self,
            "public",
            vpc_id=self.vpc.id,
            cidr_block=str(public_subnet),
            availability_zone=availability_zone,
            map_public_ip_on_launch=False,
            tags={"Name": f"{cluster_name}-public"},
        )
        igw = InternetGateway(self, "igw", vpc_id=self.vpc.id, tags={"Name": cluster_name})
        public_rt = RouteTable(self, "public-rt", vpc_id=self.vpc.id, tags={"Name": f"{cluster_name}-public"})
        Route(
            self,
            "public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
        )
        RouteTableAssociation(self, "public-rta", subnet_id=public.id, route_table_id=public_rt.id)
        nat_ip = Eip(self, "nat-ip", domain="vpc", tags={"Name": f"{cluster_name}-nat"}, depends_on=[igw])
        nat = NatGateway(self, "nat", allocation_id=nat_ip.id, subnet_id=public.id, tags={"Name": cluster_name})
        private_rt = RouteTable(self, "private-rt", vpc_id=self.vpc.id, tags={"Name": f"{cluster_name}-nodes"})
        nat_route = Route(
            self,
            "private-default",
            route_table_id=private_rt.id,
            destination_cidr_block="0.0.0.0/0",
            nat_gateway_id=nat.id,
        )
        rta = RouteTableAssociation(self, "private-rta", subnet_id=self.node_subnet.id, route_table_id=private_rt.id)
        #: What a node needs before its first boot to reach the internet (packages, SSM, registries).
        self.egress_ready: list[TerraformResource] = [nat_route, rta]
        self._flow_logs(cluster_name, flow_log_retention_days, secrets)

    def _flow_logs(self, cluster_name: str, retention_days: int, secrets: ClusterSecrets) -> None:
        group = CloudwatchLogGroup(
            self,
            "flow-log-group",
            name=secrets.log_group_name,
            retention_in_days=retention_days,
            kms_key_id=secrets.key.arn,
        )
        role = IamRole(
            self,
            "flow-log-role",
            name_prefix=f"{cluster_name[:20]}-flowlogs-",
            assume_role_policy=assume_role_policy(
                "vpc-flow-logs.amazonaws.com", {"StringEquals": {"aws:SourceAccount": secrets.account_id}}
            ),
        )
        IamRolePolicy(
            self,
            "flow-log-policy",
            role=role.id,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [group.arn, f"{group.arn}:*"],
                        }
                    ],
                }
            ),
        )
        FlowLog(
            self,
            "flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
        )

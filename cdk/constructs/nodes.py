"""The EC2 nodes: one ENI each (EFA on workers in efa mode, /28 prefixes for pods), workers in a placement group."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cdktn import TerraformResource
from cdktn_provider_aws.data_aws_ami import DataAwsAmi, DataAwsAmiFilter
from cdktn_provider_aws.instance import (
    Instance,
    InstanceMetadataOptions,
    InstancePrimaryNetworkInterface,
    InstanceRootBlockDevice,
)
from cdktn_provider_aws.network_interface import NetworkInterface
from cdktn_provider_aws.placement_group import PlacementGroup
from constructs import Construct
from spider_validate import names

from cdk.constructs.iam import NodeRoles
from cdk.ec2_types import InstanceType
from cdk.ipplan import Node, Role

CANONICAL_OWNER = "099720109477"


def ubuntu_ami_filter(arch: str) -> str:
    return f"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*"


@dataclass(frozen=True)
class RoleSpec:
    """How the nodes of one role are built."""

    instance_type: InstanceType  # its name, its architecture (which Ubuntu image), whether it allows cluster placement
    root_volume_gib: int  # the encrypted gp3 root volume
    efa: bool = False  # the ENI is an EFA (workers with rdma: efa), which can only be attached at launch


class NodeGroup(Construct):
    """Control planes and workers; `user_data(node)` returns the node's gzipped, base64 user data."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,  # the nodes' Name tags start with it; the placement group is `<cluster_name>-workers`
        nodes: tuple[Node, ...],  # from the IP plan: each node's name, role, fixed address and /28 prefixes
        specs: Mapping[Role, RoleSpec],  # how each role's nodes are built
        subnet_id: str,  # the nodes' subnet, where the ENIs are created
        security_group_id: str,  # the cluster's group, on every ENI
        roles: NodeRoles,  # each role's instance profile, and its policy that the instances wait for
        user_data: Callable[[Node], str],  # a node's user data, gzipped and base64
        egress_ready: list[TerraformResource],  # the route out (NAT) that a node's first boot needs
        reservations: list[TerraformResource],  # the subnet's reserved blocks, created before the ENIs
    ) -> None:
        super().__init__(scope, id_)
        # A cluster placement group puts the workers close together (EFA and RoCE latency). AWS refuses types
        # without "cluster" in DescribeInstanceTypes' PlacementGroupInfo (burstable T, flex, Mac): those go without.
        self.placement_group = (
            PlacementGroup(self, "placement", name=f"{cluster_name}-workers", strategy="cluster")
            if specs["worker"].instance_type.cluster_placement
            else None
        )
        self.interfaces: dict[str, NetworkInterface] = {}
        self.instances: dict[str, Instance] = {}
        amis: dict[str, DataAwsAmi] = {}
        for node in nodes:
            spec = specs[node.role]
            itype = spec.instance_type
            if itype.arch not in amis:
                amis[itype.arch] = DataAwsAmi(
                    self,
                    f"ubuntu-{itype.arch}",
                    most_recent=True,
                    owners=[CANONICAL_OWNER],
                    filter=[
                        DataAwsAmiFilter(name="name", values=[ubuntu_ami_filter(itype.arch)]),
                        DataAwsAmiFilter(name="virtualization-type", values=["hvm"]),
                    ],
                )
            eni = NetworkInterface(
                self,
                f"{node.name}-eni",
                subnet_id=subnet_id,
                security_groups=[security_group_id],
                private_ips=[str(node.private_ip)],
                interface_type="efa" if spec.efa else None,
                ipv4_prefixes=[str(p) for p in node.prefixes] or None,
                description=f"{cluster_name} {node.name}" + (" (EFA)" if spec.efa else ""),
                tags={"Name": f"{cluster_name}-{node.name}"},
                depends_on=reservations,
            )
            instance = Instance(
                self,
                node.name,
                ami=amis[itype.arch].id,
                instance_type=itype.name,
                iam_instance_profile=roles.profiles[node.role].name,
                primary_network_interface=InstancePrimaryNetworkInterface(network_interface_id=eni.id),
                placement_group=self.placement_group.name if self.placement_group and node.role == "worker" else None,
                metadata_options=InstanceMetadataOptions(
                    http_endpoint="enabled",
                    http_tokens="required",
                    http_put_response_hop_limit=1,
                    instance_metadata_tags="disabled",
                ),
                root_block_device=InstanceRootBlockDevice(
                    volume_type="gp3",
                    volume_size=spec.root_volume_gib,
                    encrypted=True,
                    delete_on_termination=True,
                ),
                monitoring=True,
                ebs_optimized=True,
                user_data_base64=user_data(node),
                # The first boot installs packages and reads SSM at once: its route out and its permissions
                # must exist by then, and nothing else orders them before the instance.
                depends_on=[*egress_ready, *roles.policies[node.role]],
                tags={
                    "Name": f"{cluster_name}-{node.name}",
                    names.NODE_TAG: node.name,
                    names.ROLE_TAG: node.role,
                },
                # A newer Ubuntu image must not replace running nodes. Nor may new user data stop and start
                # them (the provider's way to apply it): cloud-init runs it once per instance, so a running
                # node would not use it anyway. Nodes that must change are replaced deliberately
                # (`terraform apply -replace=...`, README "What a configuration change does").
                lifecycle={"ignore_changes": ["ami", "user_data_base64"]},
            )
            self.interfaces[node.name] = eni
            self.instances[node.name] = instance

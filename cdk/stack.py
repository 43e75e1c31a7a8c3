"""The cluster stack: wires one construct per concept; every decision was made in config and ipplan."""

from __future__ import annotations

from collections.abc import Callable

from cdktn import LocalBackend, S3Backend, TerraformOutput, TerraformStack
from cdktn_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct
from spider_validate import names

from cdk.config import ClusterConfig, S3State
from cdk.constructs.api_endpoint import ApiEndpoint
from cdk.constructs.iam import NodeRoles
from cdk.constructs.network import Network
from cdk.constructs.nodes import NodeGroup
from cdk.constructs.secrets import ClusterSecrets
from cdk.constructs.security import ClusterSecurity
from cdk.ec2_types import InstanceTable
from cdk.ipplan import IpPlan, Node


class ClusterStack(TerraformStack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: ClusterConfig,
        plan: IpPlan,
        table: InstanceTable,
        user_data: Callable[[Node], str],
    ) -> None:
        super().__init__(scope, id_)
        if isinstance(config.backend, S3State):
            S3Backend(
                self,
                bucket=config.backend.bucket,
                key=config.backend.key or f"spiderpool-rdma/{config.name}/terraform.tfstate",
                region=config.backend.region or config.region,
                encrypt=True,
                use_lockfile=True,
            )
        else:
            # Relative to the stack's directory (OUTDIR/stacks/NAME), where Terraform runs: beside OUTDIR, on any
            # machine. cdktn's default is an absolute path on the machine that synthesized.
            LocalBackend(self, path=f"../../../terraform.{config.name}.tfstate")
        AwsProvider(
            self,
            "aws",
            region=config.region,
            default_tags=[AwsProviderDefaultTags(tags={**config.tags, names.CLUSTER_TAG: config.name})],
        )
        secrets = ClusterSecrets(self, "secrets", config=config)
        network = Network(self, "network", config=config, plan=plan, secrets=secrets)
        security = ClusterSecurity(self, "security", config=config, vpc_id=network.vpc.id)
        roles = NodeRoles(self, "iam", config=config, secrets=secrets)
        nodes = NodeGroup(
            self,
            "nodes",
            config=config,
            plan=plan,
            table=table,
            subnet_id=network.node_subnet.id,
            security_group_id=security.group.id,
            roles=roles,
            user_data=user_data,
            egress_ready=network.egress_ready,
            reservations=network.reservations,
        )
        api = ApiEndpoint(
            self,
            "api",
            config=config,
            vpc_id=network.vpc.id,
            subnet_id=network.node_subnet.id,
            cluster_group_id=security.group.id,
            control_planes=[nodes.instances[n.name] for n in plan.control_planes],
            reservations=network.reservations,
        )
        TerraformOutput(
            self,
            "nodes_out",
            static_id=True,
            description="Each node by name: role, fixed private IP, ENI and instance IDs, and the ENI's /28 prefixes.",
            value={
                n.name: {
                    "role": n.role,
                    "private_ip": str(n.private_ip),
                    "eni_id": nodes.interfaces[n.name].id,
                    "instance_id": nodes.instances[n.name].id,
                    "prefixes": [str(p) for p in n.prefixes],
                }
                for n in plan.nodes
            },
        )
        TerraformOutput(
            self,
            "api_endpoint",
            static_id=True,
            description="The Kubernetes API inside the VPC (private DNS); from outside, use the port forward.",
            value=f"https://{api.dns_name}:6443",
        )
        cp0 = nodes.instances[plan.control_planes[0].name].id
        TerraformOutput(
            self,
            "kubeconfig_command",
            static_id=True,
            description="Writes the admin kubeconfig that control-plane-0 published to SSM (mode 0600).",
            value=f"spider-validate kubeconfig --cluster {config.name} --region {config.region}",
        )
        TerraformOutput(
            self,
            "api_port_forward_command",
            static_id=True,
            description="Opens the API on localhost:6443 through SSM Session Manager (keep it running).",
            value=(
                f"aws ssm start-session --region {config.region} --target {cp0} "
                "--document-name AWS-StartPortForwardingSession "
                '--parameters \'{"portNumber":["6443"],"localPortNumber":["6443"]}\''
            ),
        )

"""The cluster stack: wires one construct per concept; every decision was made in config and ipplan."""

from __future__ import annotations

from collections.abc import Callable

from cdktn import LocalBackend, S3Backend, TerraformOutput, TerraformStack
from cdktn_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct
from spider_validate import names

from cdk.config import ClusterConfig, ControlPlane, RdmaDevices, RdmaMode, S3State, Workers
from cdk.constructs.api_endpoint import ApiEndpoint
from cdk.constructs.backups import EtcdBackups
from cdk.constructs.iam import (
    DRANET_REPOSITORY,
    EFA_PLUGIN_REPOSITORY,
    PARAMETER_ACCESS,
    NodeRoles,
    role_name_prefix,
)
from cdk.constructs.network import Network
from cdk.constructs.nodes import NodeGroup, RoleSpec
from cdk.constructs.secrets import ClusterSecrets
from cdk.constructs.security import ApiClients, ClusterSecurity
from cdk.constructs.sessions import SessionLogging, session_document_name
from cdk.ec2_types import InstanceTable
from cdk.ipplan import IpPlan, Node


def _role_spec(spec: ControlPlane | Workers, table: InstanceTable, *, efa: bool = False) -> RoleSpec:
    """What NodeGroup needs of one role's configuration, with its instance type's facts."""
    itype = table.get(spec.instance_type)
    assert itype is not None, "validated by config.load_config"
    return RoleSpec(itype, spec.root_volume_gib, efa)


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
        efa = config.workers.rdma is RdmaMode.EFA
        dra = config.workers.rdma_devices is RdmaDevices.DRA
        worker_repository = (DRANET_REPOSITORY if dra else EFA_PLUGIN_REPOSITORY) if efa else None
        secrets = ClusterSecrets(
            self,
            "secrets",
            cluster_name=config.name,
            region=config.region,
            readers=config.secret_readers,
            node_roles=[role_name_prefix(config.name, role) for role in PARAMETER_ACCESS],
            backup_writers=[role_name_prefix(config.name, "control-plane")],
        )
        network = Network(
            self,
            "network",
            cluster_name=config.name,
            availability_zone=config.availability_zone,
            vpc_cidr=plan.vpc,
            node_subnet=plan.node_subnet,
            node_block=plan.node_block,
            pod_block=plan.pod_block,
            public_subnet=plan.public_subnet,
            flow_log_retention_days=config.flow_log_retention_days,
            secrets=secrets,
        )
        api_clients = ApiClients(vpc=config.vpc_cidr, admin=config.admin_cidr)
        security = ClusterSecurity(
            self, "security", cluster_name=config.name, vpc_id=network.vpc.id, api_clients=api_clients
        )
        roles = NodeRoles(self, "iam", cluster_name=config.name, secrets=secrets, worker_repository=worker_repository)
        SessionLogging(
            self,
            "sessions",
            cluster_name=config.name,
            secrets=secrets,
            retention_days=config.flow_log_retention_days,
        )
        backups = EtcdBackups(
            self,
            "backups",
            cluster_name=config.name,
            secrets=secrets,
            writer=roles.roles["control-plane"],
            readers=config.etcd_backups.readers,
            retention_days=config.etcd_backups.retention_days,
        )
        roles.policies["control-plane"].append(backups.writer_policy)  # a restore at first boot reads the bucket
        nodes = NodeGroup(
            self,
            "nodes",
            cluster_name=config.name,
            nodes=plan.nodes,
            specs={
                "control-plane": _role_spec(config.control_plane, table),
                "worker": _role_spec(config.workers, table, efa=efa),
            },
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
            cluster_name=config.name,
            vpc_id=network.vpc.id,
            subnet_id=network.node_subnet.id,
            cluster_group_id=security.group.id,
            api_clients=api_clients,
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
            "shell_command",
            static_id=True,
            description="A shell on control-plane-0 (any node: its instance ID) whose session is logged (encrypted).",
            value=(
                f"aws ssm start-session --region {config.region} --target {cp0} "
                f"--document-name {session_document_name(config.name)}"
            ),
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

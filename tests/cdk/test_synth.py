"""Synthesis assertions for every resource and property the infrastructure promises, per variant."""

from __future__ import annotations

import base64
import gzip
import json
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml
from cdktn import Testing
from cdktn_provider_aws.ec2_subnet_cidr_reservation import Ec2SubnetCidrReservation
from cdktn_provider_aws.flow_log import FlowLog
from cdktn_provider_aws.instance import Instance
from cdktn_provider_aws.lb import Lb
from cdktn_provider_aws.network_interface import NetworkInterface
from cdktn_provider_aws.placement_group import PlacementGroup
from cdktn_provider_aws.subnet import Subnet

from cdk.config import RdmaMode
from tests.conftest import VARIANTS, Synthesized, synthesize

pytestmark = pytest.mark.synth


def stack_json(s: Synthesized) -> str:
    return json.dumps(s.stack)


@pytest.fixture(params=list(VARIANTS))
def variant(request: pytest.FixtureRequest, synthesized: dict[str, Synthesized]) -> Synthesized:
    return synthesized[request.param]


def by_tag_name(resources: dict[str, dict[str, Any]], suffix: str) -> dict[str, Any]:
    matches = [r for r in resources.values() if r.get("tags", {}).get("Name", "").endswith(suffix)]
    assert len(matches) == 1, f"{suffix}: {len(matches)} matches"
    return matches[0]


def test_network_is_one_az_private_nodes_with_nat_and_flow_logs(variant: Synthesized) -> None:
    c = variant.config
    assert Testing.to_have_resource_with_properties(
        stack_json(variant),
        Subnet.TF_RESOURCE_TYPE,
        {
            "cidr_block": str(c.node_subnet_cidr),
            "availability_zone": c.availability_zone,
            "map_public_ip_on_launch": False,
        },
    )
    subnets = variant.resources("aws_subnet")
    assert {s["availability_zone"] for s in subnets.values()} == {c.availability_zone}
    assert len(variant.resources("aws_nat_gateway")) == 1
    private_routes = [r for r in variant.resources("aws_route").values() if "nat_gateway_id" in r]
    assert len(private_routes) == 1 and private_routes[0]["destination_cidr_block"] == "0.0.0.0/0"
    assert Testing.to_have_resource_with_properties(
        stack_json(variant), FlowLog.TF_RESOURCE_TYPE, {"traffic_type": "ALL"}
    )
    groups = variant.resources("aws_cloudwatch_log_group").values()
    (group,) = [g for g in groups if g["name"].endswith("/vpc-flow-logs")]  # beside the sessions' group
    assert group["retention_in_days"] >= 365 and group["kms_key_id"].startswith("${aws_kms_key.")
    (default_sg,) = variant.resources("aws_default_security_group").values()
    assert "ingress" not in default_sg and "egress" not in default_sg  # no rules: closed


def test_pod_block_is_reserved_for_the_prefixes_the_enis_name(variant: Synthesized) -> None:
    """CreateSubnetCidrReservation (EC2 API reference): "prefix - AWS assigns the reserved IP addresses to network
    interfaces", "explicit - You assign the reserved IP addresses". The ENIs name their prefixes (`ipv4_prefixes`),
    so `explicit`: with `prefix`, AWS would hand the block's /28s to any interface asking for a prefix count."""
    assert Testing.to_have_resource_with_properties(
        stack_json(variant),
        Ec2SubnetCidrReservation.TF_RESOURCE_TYPE,
        {
            "cidr_block": str(variant.plan.pod_block),
            "reservation_type": "explicit",
        },
    )
    for eni in variant.resources("aws_network_interface").values():
        assert "ipv4_prefix_count" not in eni


def test_security_group_self_traffic_api_restricted_no_open_ingress(variant: Synthesized) -> None:
    ingress = list(variant.resources("aws_vpc_security_group_ingress_rule").values())
    egress = list(variant.resources("aws_vpc_security_group_egress_rule").values())
    assert any(r["ip_protocol"] == "-1" and "referenced_security_group_id" in r for r in ingress)
    assert any(r["ip_protocol"] == "-1" and "referenced_security_group_id" in r for r in egress)
    assert all(r.get("cidr_ipv4") != "0.0.0.0/0" for r in ingress)
    assert all("referenced_security_group_id" in r or r["from_port"] == 6443 for r in ingress)
    api_sources = {r["cidr_ipv4"] for r in ingress if r.get("from_port") == 6443}
    admin = variant.config.admin_cidr
    assert api_sources == {str(variant.config.vpc_cidr), *([str(admin)] if admin else [])}  # admin: the HA variant
    open_egress = [r for r in egress if r.get("cidr_ipv4") == "0.0.0.0/0"]
    assert sorted(r["from_port"] for r in open_egress) == [80, 443]
    assert all(r["ip_protocol"] == "tcp" and r["from_port"] == r["to_port"] for r in open_egress)
    assert not any(r.get("from_port") == 22 for r in ingress)


def test_nodes_instances_and_enis(variant: Synthesized) -> None:
    c, plan = variant.config, variant.plan
    instances = variant.resources("aws_instance")
    enis = variant.resources("aws_network_interface")
    assert len(instances) == len(enis) == len(plan.nodes)
    for node in plan.nodes:
        inst = by_tag_name(instances, f"-{node.name}")
        eni = by_tag_name(enis, f"-{node.name}")
        assert inst["metadata_options"]["http_tokens"] == "required"
        # Hop limit 1: IMDSv2's token response does not survive the extra hop into a pod's network namespace,
        # so pods cannot take the node role (EC2 user guide, "Instance metadata access considerations").
        assert inst["metadata_options"]["http_put_response_hop_limit"] == 1
        assert inst["root_block_device"]["encrypted"] is True and inst["root_block_device"]["volume_type"] == "gp3"
        assert "network_interface" not in inst  # deprecated in provider 6.x
        assert inst["primary_network_interface"]["network_interface_id"].startswith("${aws_network_interface.")
        assert inst["ami"].startswith("${data.aws_ami.")
        assert "associate_public_ip_address" not in inst and "key_name" not in inst
        assert eni["private_ips"] == [str(node.private_ip)]
        efa = node.role == "worker" and c.workers.rdma is RdmaMode.EFA
        assert eni.get("interface_type") == ("efa" if efa else None)
        assert eni.get("ipv4_prefixes", []) == [str(p) for p in node.prefixes]
        assert ("placement_group" in inst) == (node.role == "worker")  # these types allow cluster placement
        assert inst["instance_type"] == (c.workers if node.role == "worker" else c.control_plane).instance_type
    assert Testing.to_have_resource_with_properties(
        stack_json(variant), PlacementGroup.TF_RESOURCE_TYPE, {"strategy": "cluster"}
    )
    assert Testing.to_have_resource(stack_json(variant), Instance.TF_RESOURCE_TYPE)
    assert Testing.to_have_resource(stack_json(variant), NetworkInterface.TF_RESOURCE_TYPE)


def test_ami_is_looked_up_from_canonical_ubuntu_2404(variant: Synthesized) -> None:
    amis = variant.stack["data"]["aws_ami"]
    for ami in amis.values():
        assert ami["owners"] == ["099720109477"] and ami["most_recent"] is True
        names = [f["values"][0] for f in ami["filter"] if f["name"] == "name"]
        assert names and "ubuntu-noble-24.04" in names[0]


def test_parameters_are_secure_strings_created_without_a_value_in_the_state(variant: Synthesized) -> None:
    """What each role may do with them is in tests/cdk/test_iam.py."""
    path = variant.config.ssm_path
    every = variant.resources("aws_ssm_parameter")
    params = {n: p for n, p in every.items() if p["type"] == "SecureString"}  # what the nodes write
    assert {p["name"] for p in every.values()} - {p["name"] for p in params.values()} == {f"{path}/etcd-backup-bucket"}
    assert {p["name"] for p in params.values()} == {
        f"{path}/join-worker",
        f"{path}/join-control-plane",
        f"{path}/kubeconfig",
        f"{path}/kubernetes-version",
        f"{path}/encryption-config",
        f"{path}/etcd-member-replacement",
    }
    for p in params.values():
        assert p["type"] == "SecureString" and "value" not in p and p["value_wo"] == "pending"


def test_ha_control_plane_sits_behind_an_internal_nlb(synthesized: dict[str, Synthesized]) -> None:
    ha = synthesized["ha"]
    assert Testing.to_have_resource_with_properties(
        stack_json(ha), Lb.TF_RESOURCE_TYPE, {"internal": True, "load_balancer_type": "network"}
    )
    assert len(ha.resources("aws_lb_target_group_attachment")) == 3
    single = synthesized["default-efa"]
    assert not single.resources("aws_lb")
    (record,) = single.resources("aws_route53_record").values()
    assert record["records"][0].startswith("${aws_instance.")


def test_outputs_name_nodes_ips_enis_and_prefixes(variant: Synthesized) -> None:
    nodes = variant.stack["output"]["nodes_out"]["value"]
    assert set(nodes) == {n.name for n in variant.plan.nodes}
    for n in variant.plan.nodes:
        assert nodes[n.name]["private_ip"] == str(n.private_ip)
        assert nodes[n.name]["prefixes"] == [str(p) for p in n.prefixes]
        assert nodes[n.name]["eni_id"].startswith("${aws_network_interface.")
    assert "aws ssm start-session" in variant.stack["output"]["api_port_forward_command"]["value"]


def test_user_data_is_gzipped_and_within_the_ec2_limit(variant: Synthesized) -> None:
    for inst in variant.resources("aws_instance").values():
        raw = base64.b64decode(inst["user_data_base64"])
        assert len(raw) <= 16 * 1024
        assert b"Content-Type: multipart/mixed" in gzip.decompress(raw)


def test_helm_values_give_every_node_a_default_pool(variant: Synthesized) -> None:
    values = yaml.safe_load((variant.outdir / "helm-values.yaml").read_text())
    pools = values["network"]["pools"]
    assert {p["nodeName"][0] for p in pools} == {n.name for n in variant.plan.nodes}
    for node in variant.plan.nodes:  # the shape the chart relies on: one general default pool per node
        (general,) = [p for p in pools if p["nodeName"] == [node.name] and p.get("default")]
        assert set(general) == {"name", "nodeName", "subnet", "gateway", "ips", "default"}
    assert values["sampleApps"]["count"] == variant.config.sample_apps.count


def test_instances_wait_for_their_way_out_and_their_permissions(variant: Synthesized) -> None:
    """cloud-init runs once, at first boot: the NAT route, the subnet's association with its route table and the
    role's policies must exist by then (no reference orders them otherwise)."""
    routes = variant.resources("aws_route")
    (nat_route,) = [name for name, r in routes.items() if "nat_gateway_id" in r]
    associations = variant.resources("aws_route_table_association")
    (private_rta,) = [n for n, a in associations.items() if a["subnet_id"].startswith("${aws_subnet.network_nodes_")]
    policies = variant.resources("aws_iam_role_policy")
    profiles = variant.resources("aws_iam_instance_profile")
    for inst in variant.resources("aws_instance").values():
        deps = set(inst.get("depends_on", []))
        assert {f"aws_route.{nat_route}", f"aws_route_table_association.{private_rta}"} <= deps
        profile = profiles[inst["iam_instance_profile"].split(".")[1]]
        role_ref = profile["role"].replace(".name}", ".id}")
        role_policies = {f"aws_iam_role_policy.{n}" for n, p in policies.items() if p["role"] == role_ref}
        assert role_policies and role_policies <= deps


def test_burstable_workers_get_no_cluster_placement_group(tmp_path: Path) -> None:
    """AWS refuses burstable (T) types in a cluster placement group ("Placement group rules and limitations",
    EC2 user guide); DescribeInstanceTypes says so in PlacementGroupInfo, which the shipped data carries."""
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump({"name": "burst", "workers": {"instance_type": "t3.large", "rdma": "softroce"}}))
    assert synthesize(tmp_path / "out", config) == 0
    stack = json.loads((tmp_path / "out" / "stacks" / "burst" / "cdk.tf.json").read_text())
    assert "aws_placement_group" not in stack["resource"]
    assert all("placement_group" not in i for i in stack["resource"]["aws_instance"].values())


def test_local_state_sits_beside_the_output_directory_by_a_relative_path(variant: Synthesized) -> None:
    """Terraform resolves a relative `path` from its working directory, the stack's (cdktf.out/stacks/NAME)."""
    backend = variant.stack["terraform"]["backend"]
    assert backend == {"local": {"path": f"../../../terraform.{variant.config.name}.tfstate"}}


def test_a_remote_s3_backend_with_locking_can_be_chosen(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump({"name": "team", "backend": {"type": "s3", "bucket": "team-tfstate"}}))
    assert synthesize(tmp_path / "out", config) == 0
    stack = json.loads((tmp_path / "out" / "stacks" / "team" / "cdk.tf.json").read_text())
    # S3 backend (Terraform >= 1.10): `use_lockfile` locks with an object beside the state, no DynamoDB table.
    assert stack["terraform"]["backend"] == {
        "s3": {
            "bucket": "team-tfstate",
            "key": "spiderpool-rdma/team/terraform.tfstate",
            "region": "us-east-1",
            "encrypt": True,
            "use_lockfile": True,
        }
    }


def test_every_fixed_address_is_reserved_before_anything_takes_addresses(variant: Synthesized) -> None:
    """AWS gives a new interface (an NLB's, an ENI without an address) any free address of the subnet, but none of an
    explicit reservation (CreateSubnetCidrReservation). So every node address and prefix lies in one, and the
    interfaces and the load balancer are created after the reservations."""
    reservations = variant.resources("aws_ec2_subnet_cidr_reservation")
    blocks = [IPv4Network(r["cidr_block"]) for r in reservations.values() if r["reservation_type"] == "explicit"]
    for node in variant.plan.nodes:
        assert any(node.private_ip in b for b in blocks), node.name
        assert all(any(p.subnet_of(b) for b in blocks) for p in node.prefixes), node.name
    refs = {f"aws_ec2_subnet_cidr_reservation.{name}" for name in reservations}
    for name, body in [*variant.resources("aws_network_interface").items(), *variant.resources("aws_lb").items()]:
        assert refs <= set(body.get("depends_on", [])), name


def test_every_output_is_described(variant: Synthesized) -> None:
    """As terraform-aws-vpc does: `terraform output` and module users see what each value is."""
    outputs = variant.stack["output"]
    assert outputs and {name for name, out in outputs.items() if not out.get("description")} == set()


def test_session_manager_shells_are_logged_encrypted_to_the_clusters_group(variant: Synthesized) -> None:
    """The Session document streams every session's input and output to the session log group, which the cluster's
    key encrypts (Session Manager refuses to stream to an unencrypted group when cloudWatchEncryptionEnabled)."""
    (document,) = variant.resources("aws_ssm_document").values()
    content = json.loads(document["content"])
    (group,) = [g for g in variant.resources("aws_cloudwatch_log_group").values() if g["name"].endswith("/sessions")]
    (key,) = variant.resources("aws_kms_key")
    assert document["document_type"] == "Session" and document["name"] == f"{variant.config.name}-session"
    assert content["sessionType"] == "Standard_Stream" and content["inputs"]["cloudWatchLogGroupName"] == group["name"]
    assert content["inputs"]["cloudWatchEncryptionEnabled"] is True and content["inputs"]["cloudWatchStreamingEnabled"]
    assert group["kms_key_id"] == f"${{aws_kms_key.{key}.arn}}" and group["retention_in_days"] >= 365
    policy = json.loads(variant.resources("aws_kms_key")[key]["policy"])
    (logs,) = [s for s in policy["Statement"] if s.get("Sid") == "LogGroupsEncrypt"]
    encryption_context = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    assert any(arn.endswith(f":log-group:{group['name']}") for arn in encryption_context)

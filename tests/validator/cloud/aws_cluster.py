"""A deployed cluster on both sides, for the cloud audit's tests: EC2 as the stack leaves it, in the moto server the
Terraform tests run (tests/terraform/emulator.py, with its gap fills: an interface's IPv4 prefixes at create and
assigned or unassigned later), and the Kubernetes objects the chart and Spiderpool leave.

Both come from the shipped `cdk/cluster.yaml` through the functions `make synth` uses: `ipplan.load_plan` (nodes,
addresses, prefixes, the reserved blocks) and `chart_values.chart_values` (the pools the chart applies). EC2's side
is what `cdk/constructs/network.py` and `nodes.py` declare: the node subnet with two `explicit` CIDR reservations
(the nodes' block and the pods' block), one interface per node with its fixed address and its prefixes, the
instance launched on it as device 0. The Kubernetes side: the nodes as kubeadm registers them (no providerID, the
InternalIP kubelet reports), the pools, and one running pod per worker on the first address of its general pool,
each object shaped as the lab double dumped it (tests/fixtures/audit/consistent.json, kubectl's List).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from spider_validate.cluster import addresses

from cdk import chart_values
from cdk.config import ClusterConfig
from cdk.ec2_types import InstanceTable
from cdk.ipplan import IpPlan, load_plan

REPO = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
FROZEN = REPO / "tests" / "fixtures" / "audit" / "consistent.json"


def default_cluster() -> tuple[ClusterConfig, IpPlan]:
    """The shipped configuration and its plan, as `make synth` loads them."""
    return load_plan(REPO / "cdk" / "cluster.yaml", InstanceTable.load())


def ec2_client(url: str, region: str = REGION) -> Any:
    return boto3.client(
        "ec2", region_name=region, endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@dataclass(frozen=True)
class Deployment:
    vpc: str
    subnet: str
    enis: dict[str, str]  # node name -> its interface's ID


def deploy_nodes(
    ec2: Any, vpc_cidr: str, subnet_cidr: str, nodes: dict[str, tuple[str, list[str]]], reserved: list[str]
) -> Deployment:
    """A subnet with `explicit` reservations and, per node (name -> its address and prefixes), an interface and
    the instance launched on it as device 0, as `cdk/constructs/network.py` and `nodes.py` declare them."""
    image = ec2.register_image(Name="ubuntu-noble-24.04", RootDeviceName="/dev/sda1")["ImageId"]  # the AMI lookup's
    vpc = ec2.create_vpc(CidrBlock=vpc_cidr)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=subnet_cidr)["Subnet"]["SubnetId"]
    for block in reserved:
        ec2.create_subnet_cidr_reservation(SubnetId=subnet, Cidr=block, ReservationType="explicit")
    enis = {}
    for name, (address, prefixes) in nodes.items():
        enis[name] = ec2.create_network_interface(
            SubnetId=subnet,
            PrivateIpAddresses=[{"PrivateIpAddress": address, "Primary": True}],
            Ipv4Prefixes=[{"Ipv4Prefix": p} for p in prefixes],
        )["NetworkInterface"]["NetworkInterfaceId"]
        interface = [{"NetworkInterfaceId": enis[name], "DeviceIndex": 0}]
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, NetworkInterfaces=interface)
    return Deployment(vpc, subnet, enis)


def deploy(ec2: Any, plan: IpPlan) -> Deployment:
    """What `cdktn deploy` leaves in EC2 for the plan."""
    nodes = {n.name: (str(n.private_ip), [str(p) for p in n.prefixes]) for n in plan.nodes}
    return deploy_nodes(ec2, str(plan.vpc), str(plan.node_subnet), nodes, [str(plan.node_block), str(plan.pod_block)])


def _frozen(kind: str) -> dict[str, Any]:
    items = json.loads(FROZEN.read_text())["items"]
    return copy.deepcopy(next(i for i in items if i["kind"] == kind))


def node(name: str, address: str, provider_id: str | None = None) -> dict[str, Any]:
    """A Node as kubelet registers it (core/v1 NodeStatus.addresses: InternalIP and Hostname)."""
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {},
        "status": {"addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]},
    }
    if provider_id:
        obj["spec"]["providerID"] = provider_id
    return obj


def running_pod(name: str, node_name: str, ip: str, pool: str, uid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A running pod with `ip` from `pool` and its SpiderEndpoint, shaped as the lab dumped them."""
    pod, endpoint = _frozen("Pod"), _frozen("SpiderEndpoint")
    pod["metadata"].update(name=name, namespace="apps", uid=uid)
    status = [{"name": "kube-system/ipvlan-ens5", "interface": "eth0", "ips": [ip], "default": True}]
    pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] = json.dumps(status)
    pod["spec"]["nodeName"] = node_name
    pod["status"]["podIP"] = ip
    endpoint["metadata"].update(name=name, namespace="apps")
    endpoint["status"]["current"] = {
        "ips": [{"interface": "eth0", "ipv4": f"{ip}/20", "ipv4Pool": pool}],
        "node": node_name,
        "uid": uid,
    }
    return pod, endpoint


def kube_objects(config: ClusterConfig, plan: IpPlan) -> list[dict[str, Any]]:
    """The nodes, the chart's pools (with Spiderpool's status) and one running pod per worker."""
    nodes = [node(n.name, str(n.private_ip)) for n in plan.nodes]
    pools: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    for i, spec in enumerate(chart_values.chart_values(config, plan)["network"]["pools"]):
        pool = _frozen("SpiderIPPool")
        pool["metadata"].update(name=spec["name"], labels={})
        pool["spec"] = {
            "ipVersion": 4,
            "subnet": spec["subnet"],
            "gateway": spec["gateway"],
            "ips": spec["ips"],
            "nodeName": spec["nodeName"],
        }
        records = {}
        if spec["name"].startswith("worker-") and spec["name"].endswith("-general"):
            ip, uid = spec["ips"][0].split("-")[0], f"00000000-0000-0000-0000-{i:012d}"
            pods += running_pod(f"web-{spec['nodeName'][0]}", spec["nodeName"][0], ip, spec["name"], uid)
            records[ip] = {"pod": f"apps/web-{spec['nodeName'][0]}", "podUid": uid}
        pool["status"] = {
            "allocatedIPCount": len(records),
            "allocatedIPs": json.dumps(records),
            "totalIPCount": addresses.count(spec["ips"]),
        }
        pools.append(pool)
    return [*nodes, *pools, *pods]

"""Which pools each pod of the cluster draws from, on which nodes.

Spiderpool's IPAM rules (tests/upstream/spiderpool.py) and the scheduler's (tests/upstream/scheduling.py), applied
to what the chart renders and to the nodes the infrastructure creates (names, labels, taints from plan and user data).
"""

from __future__ import annotations

import copy
import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from spider_validate.engine import discovery

from cdk import userdata
from cdk.constructs import iam
from cdk.ec2_types import InstanceTable
from tests import chart
from tests.conftest import REPO
from tests.upstream import generic_device_plugin, scheduling
from tests.upstream.spiderpool import PodSpec, usable_pools

#: configuration variant -> the profile it is installed with
VARIANTS = {"default-efa": "aws-efa", "softroce": "aws-softroce", "ha": "aws-efa"}


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chart.packaged_copy(tmp_path_factory.mktemp("chart"))


@pytest.fixture(scope="module")
def clusters(chart_dir: Path, table: InstanceTable, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """variant -> (config, plan, nodes, rendered objects)."""
    out = {}
    for variant, profile in VARIANTS.items():
        tmp = tmp_path_factory.mktemp(variant)
        config, plan = chart.planned(variant, table, tmp)
        generated = chart.generated_values(variant, table, tmp)
        rendered = chart.helm_template(chart_dir, chart.profile_values(profile), generated)
        out[variant] = (config, plan, chart.cluster_nodes(config, plan), [r.obj for r in rendered])
    return out


class Network:
    """The network as the IPAM sees it: pools, the attachment's own pools, multus' cluster network."""

    def __init__(self, objs: list[dict[str, Any]]) -> None:
        applied = chart.applied_objects(objs)
        self.pools = {o["metadata"]["name"]: o for o in applied if o["kind"] == "SpiderIPPool"}
        (self.smc,) = [o for o in applied if o["kind"] == "SpiderMultusConfig" and o["spec"]["cniType"] != "sriov"]
        block = self.smc["spec"][self.smc["spec"]["cniType"]]
        self.netconf_pools = list((block.get("ippools") or {}).get("ipv4", []))
        # Spiderpool's chart hands multus.multusCNI.defaultCniCRName to the agent as clusterNetwork (configmap.yaml)
        (config,) = [o for o in objs if o["kind"] == "ConfigMap" and "clusterNetwork" in (o.get("data") or {})]
        self.cluster_network = config["data"]["clusterNetwork"] or None
        self.apps = [o for o in applied if o["kind"] == "Deployment"]

    def draws(self, pod: PodSpec, nic: str) -> list[str]:
        return usable_pools(pod, nic, self.netconf_pools, self.pools, chart.NAMESPACE, self.cluster_network)


def pod_on(node: scheduling.Node, template: dict[str, Any], name: str) -> PodSpec:
    meta = template.get("metadata", {})
    return PodSpec(
        name, chart.NAMESPACE, node.name, dict(meta.get("annotations") or {}), dict(meta.get("labels") or {})
    )


def nodes_for(pod_spec: dict[str, Any], nodes: list[scheduling.Node]) -> list[scheduling.Node]:
    return [n for n in nodes if scheduling.schedulable(pod_spec, n)]


def joined_later(nodes: list[scheduling.Node]) -> scheduling.Node:
    """A worker the plan does not know (joined by hand or by an autoscaler): it has no pool of its own."""
    worker = next(n for n in nodes if n.labels["spiderpool-rdma/role"] == "worker")
    return scheduling.Node("joined-later", {**worker.labels, "kubernetes.io/hostname": "joined-later"}, worker.taints)


#: CoreDNS as kubeadm deploys it: kube-system, no network annotation, tolerates the control-plane taint
#: (kubernetes/cmd/kubeadm/app/phases/addons/dns/manifests.go: CoreDNSDeployment tolerations).
COREDNS: dict[str, Any] = {
    "metadata": {"labels": {"k8s-app": "kube-dns"}},
    "spec": {"tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                             {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
}  # fmt: skip


def check_coredns(cluster: Any) -> None:
    """ipvlan is every pod's default network on AWS: a pod on any node, control planes included, needs a pool."""
    _, _, nodes, objs = cluster
    net = Network(objs)
    for node in nodes_for(COREDNS["spec"], nodes):
        pools = net.draws(pod_on(node, COREDNS, "coredns"), "eth0")
        assert pools, f"CoreDNS on {node.name} gets no address"
        assert all(node.name in net.pools[p]["spec"]["nodeName"] for p in pools)
        assert not [p for p in pools if "spiderpool-rdma/app" in net.pools[p]["metadata"]["labels"]], pools


def check_apps(cluster: Any) -> None:
    """Each app runs only where its pools are, and draws from its pools only."""
    _, plan, nodes, objs = cluster
    net = Network(objs)
    assert len(net.apps) == len(plan.app_names)
    for deploy in net.apps:
        app = deploy["metadata"]["labels"]["spiderpool-rdma/app"]
        template = deploy["spec"]["template"]
        placed = nodes_for(template["spec"], [*nodes, joined_later(nodes)])
        assert len(placed) >= 2, f"{app} can run on {[n.name for n in placed]} only"
        for node in placed:
            pools = net.draws(pod_on(node, template, app), "eth0")
            assert pools, f"{app} on {node.name} gets no address"
            assert {net.pools[p]["metadata"]["labels"]["spiderpool-rdma/app"] for p in pools} == {app}


def check_test_pod_and_jobs(cluster: Any) -> None:
    _, _, nodes, objs = cluster
    net = Network(objs)
    (test_pod,) = [o for o in objs if o["kind"] == "Pod" and o["metadata"]["name"].endswith("-test-apps")]
    placed = nodes_for(test_pod["spec"], nodes)
    assert placed
    for node in placed:
        pools = net.draws(pod_on(node, test_pod, "test"), "eth0")
        assert pools and not [p for p in pools if "spiderpool-rdma/app" in net.pools[p]["metadata"]["labels"]]
    for job in (o for o in objs if o["kind"] == "Job" and o["metadata"]["name"].startswith("rdma-spiderpool-rdma")):
        assert job["spec"]["template"]["spec"]["hostNetwork"] is True, "the network is what this job creates"


def check_underlay(cluster: Any) -> None:
    """The network's master against the node's own configuration (its user data), not against the generator."""
    config, plan, _, objs = cluster
    net = Network(objs)
    for node in plan.nodes:
        env = userdata.node_files(config, plan, node)["/etc/spiderpool-rdma/node.env"]
        (line,) = [x for x in env.splitlines() if x.startswith("SPR_UNDERLAY_IF=")]
        assert net.smc["spec"][net.smc["spec"]["cniType"]]["master"] == [line.split("=", 1)[1].strip("'\"")]


CHECKS = [check_coredns, check_apps, check_test_pod_and_jobs, check_underlay]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_pools_per_pod_and_node(variant: str, check: Any, clusters: Any) -> None:
    check(clusters[variant])


def rewrite_applied(objs: list[dict[str, Any]], change: Any) -> list[dict[str, Any]]:
    """The rendered objects with the apply job's manifests changed by `change(obj)` (a broken copy of the chart)."""
    out = copy.deepcopy(objs)
    (cm,) = [o for o in out if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-network")]
    docs = [o for o in yaml.safe_load_all(cm["data"]["network.yaml"]) if o]
    for doc in docs:
        change(doc)
    cm["data"]["network.yaml"] = yaml.safe_dump_all(docs)
    return out


def _wrong_namespace(o: dict[str, Any]) -> None:
    if o["kind"] == "SpiderIPPool":
        o["spec"]["multusName"] = [m.replace("kube-system/", "default/") for m in o["spec"]["multusName"]]


def _apps_pools_as_default(o: dict[str, Any]) -> None:
    if o["kind"] == "SpiderMultusConfig":
        o["spec"]["ipvlan"]["ippools"]["ipv4"] = ["worker-0-app-0", "worker-1-app-0"]


def _no_affinity(o: dict[str, Any]) -> None:
    if o["kind"] == "Deployment":
        o["spec"]["template"]["spec"].pop("affinity", None)


def _no_control_plane_pools(o: dict[str, Any]) -> None:
    if o["kind"] == "SpiderIPPool" and any(n.startswith("control-plane") for n in o["spec"].get("nodeName", [])):
        o["spec"]["nodeName"] = ["worker-0"]  # as if the infrastructure gave control planes no prefixes


BREAKAGES = {
    "multusName-in-another-namespace": _wrong_namespace,
    "apps-pools-as-the-networks-pools": _apps_pools_as_default,
    "apps-without-node-affinity": _no_affinity,
    "no-pool-on-control-planes": _no_control_plane_pools,
    "underlay-on-eth0": "underlay-eth0",
}


@pytest.mark.parametrize("breakage", list(BREAKAGES.values()), ids=list(BREAKAGES))
def test_a_broken_copy_fails_a_check(
    breakage: Any, clusters: Any, chart_dir: Path, table: InstanceTable, tmp_path: Path
) -> None:
    """The broken copies the issue lists, each caught by at least one of the checks above."""
    config, plan, nodes, objs = clusters["default-efa"]
    if breakage == "underlay-eth0":
        generated = chart.generated_values("default-efa", table, tmp_path)
        generated["network"]["master"] = ["eth0"]
        objs = chart.render(chart_dir, chart.profile_values("aws-efa"), generated)
    else:
        objs = rewrite_applied(objs, breakage)
    failures = []
    for check in CHECKS:
        try:
            check((config, plan, nodes, objs))
        except AssertionError as e:
            failures.append(f"{check.__name__}: {e}")
    assert failures, f"{breakage} passes every check"


def test_the_efa_device_plugin_runs_on_every_efa_worker_and_nowhere_else(
    clusters: Any, table: InstanceTable, tmp_path: Path
) -> None:
    """Every type the configuration accepts for rdma: efa (max EFA > 0), labelled as the bootstrap labels it."""
    _, _, nodes, objs = clusters["default-efa"]
    (ds,) = [o for o in objs if o["kind"] == "DaemonSet" and "efa" in o["metadata"]["name"]]
    spec = ds["spec"]["template"]["spec"]
    efa_types = sorted(t.name for t in table if t.max_efa > 0)
    assert len(efa_types) > 200
    worker = next(n for n in nodes if n.labels["spiderpool-rdma/role"] == "worker")
    missed = [
        t
        for t in efa_types
        if not scheduling.schedulable(
            spec, scheduling.Node("w", {**worker.labels, "node.kubernetes.io/instance-type": t}, worker.taints)
        )
    ]
    assert missed == []
    for node in nodes:
        assert scheduling.schedulable(spec, node) is (node.labels["spiderpool-rdma/rdma"] == "efa")
    _, _, soft_nodes, _ = clusters["softroce"]
    assert not [n for n in soft_nodes if scheduling.schedulable(spec, n)]
    # an EFA-capable type run with rdma: softroce has no EFA driver: no plugin there either
    assert not scheduling.schedulable(spec, scheduling.Node("w", {**worker.labels, "spiderpool-rdma/rdma": "softroce"}))


def test_the_efa_image_can_come_from_a_mirror(chart_dir: Path) -> None:
    mirror = {
        "aws-efa-k8s-device-plugin": {
            "image": {"repository": "registry.example.com/eks/aws-efa-k8s-device-plugin", "tag": "v0.5.20"},
            "imagePullSecrets": [{"name": "mirror"}],
        }
    }
    objs = chart.render(chart_dir, chart.profile_values("aws-efa"), mirror)
    (ds,) = [o for o in objs if o["kind"] == "DaemonSet" and "efa" in o["metadata"]["name"]]
    spec = ds["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == "registry.example.com/eks/aws-efa-k8s-device-plugin:v0.5.20"
    assert spec["imagePullSecrets"] == [{"name": "mirror"}]
    default = chart.render(chart_dir, chart.profile_values("aws-efa"))
    (ds,) = [o for o in default if o["kind"] == "DaemonSet" and "efa" in o["metadata"]["name"]]
    image = ds["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("602401143452.dkr.ecr.") and image.endswith(":v0.5.20")


def test_annotations_are_json(clusters: Any) -> None:
    for deploy in Network(clusters["default-efa"][3]).apps:
        annotations = deploy["spec"]["template"]["metadata"]["annotations"]
        assert json.loads(annotations["ipam.spidernet.io/ippool"])["ipv4"]
        assert yaml.safe_load(annotations["v1.multus-cni.io/default-network"]) == "kube-system/ipvlan-ens5"


def registry_matches(pattern: str, registry: str) -> bool:
    """kubernetes pkg/credentialprovider/keyring.go (URLsMatch): as many DNS labels, each matched as a glob."""
    want, have = pattern.split("."), registry.split(".")
    return len(want) == len(have) and all(fnmatch.fnmatchcase(h, w) for w, h in zip(want, have, strict=True))


def test_the_efa_image_is_one_the_efa_workers_may_pull(clusters: Any) -> None:
    """Chart, node role and kubelet agree: the image's repository is the one the IAM policy grants, and its registry
    is one the kubelet's ECR credential provider serves (the bootstrap's config)."""
    _, _, _, objs = clusters["default-efa"]
    (ds,) = [o for o in objs if o["kind"] == "DaemonSet" and "efa" in o["metadata"]["name"]]
    registry, _, path = ds["spec"]["template"]["spec"]["containers"][0]["image"].partition("/")
    assert (registry.split(".")[0], path.rsplit(":", 1)[0]) == iam.EFA_PLUGIN_REPOSITORY
    config = yaml.safe_load((REPO / "bootstrap" / "image-credential-provider-config.yaml").read_text())
    patterns = [p for provider in config["providers"] for p in provider["matchImages"]]
    assert any(registry_matches(p, registry) for p in patterns), (registry, patterns)


#: /dev/infiniband on a node with rxe0 (ib_uverbs, ib_umad and rdma_ucm each create their character device)
RXE_NODE_DEV = ["/dev/infiniband/issm0", "/dev/infiniband/rdma_cm", "/dev/infiniband/umad0", "/dev/infiniband/uverbs0"]


def test_soft_roce_pods_get_rxe0_on_every_softroce_worker(clusters: Any) -> None:
    """The resource spider-validate's rdma suite asks for, on every Soft-RoCE worker, with rxe0's verbs device."""
    _, _, nodes, objs = clusters["softroce"]
    (ds,) = [o for o in objs if o["kind"] == "DaemonSet" and o["metadata"]["name"].endswith("-softroce-dp")]
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True, "helm install --wait waits for it before the hooks create the pod network"
    placed = {n.name for n in nodes if scheduling.schedulable(spec, n)}
    assert placed == {n.name for n in nodes if n.labels["spiderpool-rdma/rdma"] == "softroce"} != set()
    args = spec["containers"][0]["args"]
    devices = generic_device_plugin.advertised(args, RXE_NODE_DEV)[discovery.SOFTROCE_RESOURCE]
    assert len(devices) == 100, "one device per pod that may share rxe0, each its own ID"
    assert {tuple(d.host_paths) for d in devices} == {("/dev/infiniband/uverbs0", "/dev/infiniband/rdma_cm")}
    assert generic_device_plugin.advertised(args, [])[discovery.SOFTROCE_RESOURCE] == []
    assert not [o for o in objs if o["kind"] == "DaemonSet" and "rdma-shared-device-plugin" in o["metadata"]["name"]]

"""The facts of the cluster, found once before any test pod: the network and the test nodes, the RDMA mode, whether
Spiderpool keeps StatefulSet addresses, the line rate. Each is present or missing with the reason; preflight checks
them, and a test that requires a missing one is skipped with that reason before any pod is created."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import yaml

from spider_validate.cluster.api import ApiError
from spider_validate.engine.facts import Facts
from spider_validate.engine.manifests import Network
from spider_validate.engine.model import Fact, RdmaMode
from spider_validate.names import ATTACHMENT_LABEL
from spider_validate.probes import linerate

if TYPE_CHECKING:
    from spider_validate.engine.context import RunContext

EFA_RESOURCE = "vpc.amazonaws.com/efa"
#: DRA mode: aws-dranet (driver dra.net) publishes each node's EFA devices as ResourceSlices; pods claim one through
#: its DeviceClass (aws/eks-charts stable/aws-dranet templates/deviceclass.yaml).
EFA_DEVICE_CLASS, DRA_DRIVER = "efa.networking.k8s.aws", "dra.net"
SHARED_RESOURCE = "spidernet.io/hca_shared_devices"  # Spiderpool's RDMA shared device plugin (RoCE NICs)
SOFTROCE_RESOURCE = "spidernet.io/softroce"  # the chart's generic device plugin (templates/softroce-device-plugin.yaml)
#: mode -> the resource a pod of that mode requests (SR-IOV's is the policy's own name, found on the nodes)
RESOURCES: dict[RdmaMode, str] = {"efa": EFA_RESOURCE, "shared": SHARED_RESOURCE, "softroce": SOFTROCE_RESOURCE}
SRIOV_DEFAULT = "spidernet.io/sriov_rdma"  # the chart's sriov.resourceName
NO_NODE = "no ready, schedulable node matches --node-selector/--nodes"
CONTROLLER = "spiderpool-controller"  # Spiderpool's Deployment (its chart's name for it)
RDMA_IMAGE_MISSING = (
    "no RDMA tools image: pass --image rdma=REF, an image with perftest built with SRD, fi_pingpong and "
    "python3-pyverbs (scripts/build-rdma-tools-image.sh builds one; Spiderpool's rdma-tools has no fi_pingpong)"
)


def node_ready(node: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
    return conditions.get("Ready") == "True" and not node.get("spec", {}).get("unschedulable", False)


def internal_ip(node: dict[str, Any]) -> str:
    return next((a["address"] for a in node.get("status", {}).get("addresses", []) if a["type"] == "InternalIP"), "")


def selected_nodes(ctx: RunContext) -> list[dict[str, Any]]:
    """Ready, schedulable nodes matching --node-selector / --nodes."""
    selector = ",".join(f"{k}={v}" for k, v in ctx.params.node_selector.items())
    nodes = [n for n in ctx.cluster.list("Node", label_selector=selector) if node_ready(n)]
    if ctx.params.nodes:
        nodes = [n for n in nodes if n["metadata"]["name"] in ctx.params.nodes]
    return nodes


def test_nodes(nodes: list[dict[str, Any]]) -> list[str]:
    """The nodes a run tests on: every selected one, in name order (a user asks which of the nodes is broken;
    connectivity's cost grows linearly with them, actions.reach.Batch)."""
    return sorted(n["metadata"]["name"] for n in nodes)


def discover_network(ctx: RunContext) -> Network:
    """--network, or the only SpiderMultusConfig of the cluster; raises LookupError saying what to pass."""
    configs = ctx.cluster.list("SpiderMultusConfig")
    wanted = ctx.params.network
    if wanted:
        ns, _, name = wanted.rpartition("/")
        configs = [c for c in configs if c["metadata"]["name"] == name and (not ns or c["metadata"]["namespace"] == ns)]
        if not configs:
            raise LookupError(f"SpiderMultusConfig {wanted} not found (kubectl get spidermultusconfigs -A)")
    configs = [c for c in configs if c.get("spec", {}).get("cniType") in {"macvlan", "ipvlan", "sriov"}]
    if len(configs) != 1:
        names = ", ".join(f"{c['metadata']['namespace']}/{c['metadata']['name']}" for c in configs) or "none"
        raise LookupError(f"found {len(configs)} underlay networks ({names}); choose one with --network NS/NAME")
    cfg = configs[0]
    spec = cfg["spec"]
    pools = tuple((spec.get(spec["cniType"], {}) or {}).get("ippools", {}).get("ipv4", []))
    label = cfg["metadata"].get("labels", {}).get(ATTACHMENT_LABEL, "secondary")
    attach = ctx.params.attach if ctx.params.attach != "auto" else label
    # the chart labels "default" or "secondary"; anything else attaches as a secondary network, as it always did
    kind: Literal["default", "secondary"] = "default" if attach == "default" else "secondary"
    return Network(cfg["metadata"]["namespace"], cfg["metadata"]["name"], kind, pools)


def detect_mode(nodes: list[dict[str, Any]]) -> tuple[RdmaMode, str]:
    """(mode, resource) from the nodes' allocatable resources."""
    allocatable = [n.get("status", {}).get("allocatable", {}) or {} for n in nodes]

    def has(res: str) -> bool:
        return any(str(a.get(res, "0")) not in {"0", ""} for a in allocatable)

    for mode, resource in RESOURCES.items():
        if has(resource):
            return mode, resource
    known = set(RESOURCES.values())
    sriov = sorted({r for a in allocatable for r in a if r.startswith("spidernet.io/") and r not in known})
    if sriov:
        return "sriov", sriov[0]
    return "none", ""


def dra_published(ctx: RunContext, nodes: list[dict[str, Any]]) -> bool:
    """Whether aws-dranet serves EFA here: its DeviceClass exists and its driver published devices of a test node."""
    if ctx.cluster.get("DeviceClass", EFA_DEVICE_CLASS) is None:
        return False
    names = {n["metadata"]["name"] for n in nodes}
    return any(
        s["spec"].get("driver") == DRA_DRIVER and s["spec"].get("nodeName") in names and s["spec"].get("devices")
        for s in ctx.cluster.list("ResourceSlice")
    )


def rdma_mode(ctx: RunContext, nodes: list[dict[str, Any]]) -> tuple[RdmaMode, str, str] | str:
    """(mode, resource, DeviceClass) of the test nodes, or why there is no RDMA to test. EFA comes through the
    device plugin's resource when the nodes offer it, else through claims when aws-dranet publishes the devices."""
    detected, resource = detect_mode(nodes)
    claim = ""
    if detected == "none" and ctx.params.rdma_mode in {"auto", "efa"} and dra_published(ctx, nodes):
        detected, claim = "efa", EFA_DEVICE_CLASS
    mode = ctx.params.rdma_mode if ctx.params.rdma_mode != "auto" else detected
    if mode == "none":
        return (
            "no RDMA resource on the test nodes (vpc.amazonaws.com/efa, spidernet.io/..., or EFA devices published "
            f"by aws-dranet for DeviceClass {EFA_DEVICE_CLASS}); pass --rdma-mode to force one"
        )
    if claim:
        return mode, "", claim
    if mode != detected:
        resource = RESOURCES.get(mode, resource or SRIOV_DEFAULT)
    return mode, resource, ""


def line_rate(nodes: list[dict[str, Any]]) -> tuple[float, str] | str:
    """The slower of the nodes' line rates (Gb/s) and where it came from, or why one is unknown."""
    rates = [linerate.node_line_rate(node) for node in nodes]
    unknown = [why for rate, why in rates if rate is None]
    if unknown:
        return f"unknown line rate ({'; '.join(unknown)}): pass --rdma-min-gbps"
    rate, source = min(rates, key=lambda r: r[0] or 0.0)
    assert rate is not None
    return rate, source


def statefulset_enabled(ctx: RunContext) -> bool | None:
    """ipam.enableStatefulSet from the spiderpool-conf ConfigMap, read by name in spiderpool-controller's namespace
    (Spiderpool's chart puts both in its release namespace: templates/configmap.yaml, deployment.yaml), so that
    reading it takes no right to list every ConfigMap of the cluster; None when either cannot be found."""
    controller = next((d for d in ctx.cluster.list("Deployment") if d["metadata"]["name"] == CONTROLLER), None)
    cm = ctx.cluster.get("ConfigMap", "spiderpool-conf", controller["metadata"]["namespace"]) if controller else None
    if cm is None:
        return None
    conf = yaml.safe_load(cm.get("data", {}).get("conf.yml", "") or "") or {}
    return bool(conf.get("enableStatefulSet", False))


def discover(ctx: RunContext, needs: set[Fact]) -> Facts:
    """The facts of `needs`, and no API read for any other: what the preflight checks that run report on (the
    network and the nodes whenever another test runs) and what the other tests require. Every read is retried on a
    transient API error; one that still fails leaves its facts unknown, with the error."""
    missing: dict[Fact, str] = {}
    errors: dict[Fact, ApiError] = {}
    facts: dict[str, Any] = {}
    if "network" in needs:
        try:
            facts["network"] = ctx.api(lambda: discover_network(ctx))
        except LookupError as exc:
            missing["network"] = str(exc)
        except ApiError as exc:
            errors["network"] = exc
    listed: list[dict[str, Any]] = []
    if needs & {"nodes", "rdma", "line-rate"}:
        try:
            listed = ctx.api(lambda: selected_nodes(ctx))
        except ApiError as exc:
            errors.update({fact: exc for fact in ("nodes", "rdma", "line-rate")})
    names = test_nodes(listed)
    tested = [n for n in listed if n["metadata"]["name"] in names]
    facts["nodes"] = tuple(names)
    facts["node_ips"] = {n["metadata"]["name"]: internal_ip(n) for n in listed}
    if "nodes" in needs and not names and "nodes" not in errors:
        missing["nodes"] = NO_NODE
    if "rdma" in needs and "rdma" not in errors:
        mode = rdma_mode(ctx, tested)
        if isinstance(mode, str):
            missing["rdma"] = mode
        else:
            facts["rdma_mode"], facts["rdma_resource"], facts["rdma_claim"] = mode
    # a bandwidth threshold given with --rdma-min-gbps needs no line rate: none is read
    if "line-rate" in needs and "line-rate" not in errors and ctx.params.rdma_min_gbps is None:
        by_name = {n["metadata"]["name"]: n for n in tested}
        rate = line_rate([by_name[name] for name in names[:2]])
        if isinstance(rate, str):
            missing["line-rate"] = rate
        else:
            facts["line_rate"] = rate
    if "rdma-image" in needs and not ctx.params.image("rdma"):
        missing["rdma-image"] = RDMA_IMAGE_MISSING
    if "statefulset" in needs:
        try:
            enabled = ctx.api(lambda: statefulset_enabled(ctx))
        except ApiError as exc:
            errors["statefulset"] = exc
        else:
            if enabled is False:
                missing["statefulset"] = (
                    "ipam.enableStatefulSet is off in spiderpool-conf (the AWS profiles turn it off: an ENI address "
                    "cannot follow a pod to another node)"
                )
            elif enabled is None:
                missing["statefulset"] = "spiderpool-conf not found"
    return Facts(**facts, missing=missing, errors=errors)

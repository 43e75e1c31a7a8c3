"""Is the cluster ready for testing? Discovery of the network and nodes, and the checks a run depends on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from spider_validate.context import RunContext
from spider_validate.kube import ApiError
from spider_validate.manifests import Network
from spider_validate.model import Action, Outcome, Scenario, Test

SUITE = "preflight"
CRDS = (
    "spiderippools.spiderpool.spidernet.io",
    "spidermultusconfigs.spiderpool.spidernet.io",
    "spidercoordinators.spiderpool.spidernet.io",
    "spiderendpoints.spiderpool.spidernet.io",
)
ATTACH_LABEL = "spiderpool-rdma/attachment"


def check(name: str, target: str, fn: Callable[[RunContext], Outcome]) -> Scenario:
    def actions(ctx: RunContext) -> Iterator[Action]:
        yield Action(name, "api", "spider-validate", target, lambda: fn(ctx))

    return Scenario(name, actions)


def node_ready(node: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
    return conditions.get("Ready") == "True" and not node.get("spec", {}).get("unschedulable", False)


def internal_ip(node: dict[str, Any]) -> str:
    return next((a["address"] for a in node.get("status", {}).get("addresses", []) if a["type"] == "InternalIP"), "")


def select_nodes(ctx: RunContext) -> list[str]:
    """Ready, schedulable nodes matching --node-selector / --nodes, in name order; records their IPs."""
    selector = ",".join(f"{k}={v}" for k, v in ctx.params.node_selector.items())
    nodes = [n for n in ctx.cluster.list("Node", label_selector=selector) if node_ready(n)]
    if ctx.params.nodes:
        nodes = [n for n in nodes if n["metadata"]["name"] in ctx.params.nodes]
    ctx.node_ips = {n["metadata"]["name"]: internal_ip(n) for n in nodes}
    return sorted(ctx.node_ips)[: max(2, len(ctx.params.nodes))]


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
    label = cfg["metadata"].get("labels", {}).get(ATTACH_LABEL, "secondary")
    attach = ctx.params.attach if ctx.params.attach != "auto" else label
    # the chart labels "default" or "secondary"; anything else attaches as a secondary network, as it always did
    kind: Literal["default", "secondary"] = "default" if attach == "default" else "secondary"
    return Network(cfg["metadata"]["namespace"], cfg["metadata"]["name"], kind, pools)


def _reachable(ctx: RunContext) -> Outcome:
    return Outcome(True, f"API server {ctx.cluster.server_version()}")


def _crds(ctx: RunContext) -> Outcome:
    missing = sorted(set(CRDS) - ctx.cluster.crd_names())
    if missing:
        return Outcome(
            False, f"missing CRDs {', '.join(missing)}: install Spiderpool (helm install ... spiderpool-rdma)"
        )
    return Outcome(True, "Spiderpool CRDs present")


def _find(ctx: RunContext, kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in ctx.cluster.list(kind) if o["metadata"]["name"] == name), None)


def _agent(ctx: RunContext) -> Outcome:
    ds = _find(ctx, "DaemonSet", "spiderpool-agent")
    if ds is None:
        return Outcome(False, "DaemonSet spiderpool-agent not found: is Spiderpool installed?")
    st = ds.get("status", {})
    want, have = st.get("desiredNumberScheduled", 0), st.get("numberReady", 0)
    ok = want > 0 and have == want
    return Outcome(
        ok,
        f"spiderpool-agent ready on {have}/{want} nodes"
        + ("" if ok else ": kubectl -n " + ds["metadata"]["namespace"] + " describe ds spiderpool-agent"),
    )


def _controller(ctx: RunContext) -> Outcome:
    dep = _find(ctx, "Deployment", "spiderpool-controller")
    if dep is None:
        return Outcome(False, "Deployment spiderpool-controller not found: is Spiderpool installed?")
    want, have = dep.get("spec", {}).get("replicas", 1), dep.get("status", {}).get("readyReplicas", 0) or 0
    return Outcome(have >= want > 0, f"spiderpool-controller {have}/{want} ready")


def _coordinator(ctx: RunContext) -> Outcome:
    coord = ctx.cluster.get("SpiderCoordinator", "default")
    if coord is None:
        return Outcome(False, "SpiderCoordinator default not found: Spiderpool's init job has not run")
    phase = coord.get("status", {}).get("phase", "unknown")
    return Outcome(
        phase == "Synced",
        f"SpiderCoordinator default is {phase}"
        + ("" if phase == "Synced" else " (it blocks pod creation): kubectl get spidercoordinator default -o yaml"),
    )


def _network(ctx: RunContext) -> Outcome:
    try:
        ctx.network = discover_network(ctx)
    except LookupError as exc:
        return Outcome(False, str(exc))
    pools = {p["metadata"]["name"]: p for p in ctx.cluster.list("SpiderIPPool")}
    missing = [p for p in ctx.network.pools if p not in pools]
    if missing:
        return Outcome(False, f"network {ctx.network.ref} names pools that do not exist: {', '.join(missing)}")
    free = {
        n: (pools[n].get("status", {}).get("totalIPCount", 0) or 0)
        - (pools[n].get("status", {}).get("allocatedIPCount", 0) or 0)
        for n in ctx.network.pools
    }
    if ctx.network.pools and sum(free.values()) == 0:
        return Outcome(False, f"pools of {ctx.network.ref} are full: {free}")
    return Outcome(True, f"network {ctx.network.ref} ({ctx.network.attach}), free addresses {free or 'n/a'}")


def _nodes(ctx: RunContext) -> Outcome:
    ctx.nodes = select_nodes(ctx)
    if not ctx.nodes:
        return Outcome(False, "no ready, schedulable node matches --node-selector/--nodes")
    note = "" if len(ctx.nodes) > 1 else " (cross-node tests will be skipped: they need two)"
    return Outcome(True, f"testing on {', '.join(ctx.nodes)}{note}")


def guarded(fn: Callable[[RunContext], Outcome]) -> Callable[[RunContext], Outcome]:
    def run(ctx: RunContext) -> Outcome:
        try:
            return fn(ctx)
        except ApiError as exc:
            return Outcome(False, f"API error: {exc}", transient=exc.transient)

    return run


TESTS = [
    Test(SUITE, "cluster-reachable", "the Kubernetes API answers", (check("version", "api", guarded(_reachable)),)),
    Test(SUITE, "spiderpool-crds", "Spiderpool's CRDs are installed", (check("crds", "crds", guarded(_crds)),)),
    Test(
        SUITE,
        "spiderpool-ready",
        "spiderpool-agent and spiderpool-controller are ready",
        (
            check("agent", "spiderpool-agent", guarded(_agent)),
            check("controller", "spiderpool-controller", guarded(_controller)),
        ),
    ),
    Test(
        SUITE,
        "coordinator-synced",
        "the SpiderCoordinator default is Synced",
        (check("coordinator", "spidercoordinator/default", guarded(_coordinator)),),
    ),
    Test(
        SUITE,
        "network",
        "the chosen SpiderMultusConfig and its pools exist and have free addresses",
        (check("network", "spidermultusconfig", guarded(_network)),),
    ),
    Test(
        SUITE,
        "nodes",
        "schedulable nodes to test on (two for cross-node tests)",
        (check("nodes", "nodes", guarded(_nodes)),),
    ),
]

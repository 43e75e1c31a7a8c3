"""Is the cluster ready for testing? The checks a run depends on, the facts discovery found among them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from spider_validate.cluster.api import ApiError
from spider_validate.engine.context import RunContext
from spider_validate.engine.discovery import NO_NODE
from spider_validate.engine.model import Action, Fact, Outcome
from spider_validate.engine.test import Scenario, Test

SUITE = "preflight"
CRDS = (
    "spiderippools.spiderpool.spidernet.io",
    "spidermultusconfigs.spiderpool.spidernet.io",
    "spidercoordinators.spiderpool.spidernet.io",
    "spiderendpoints.spiderpool.spidernet.io",
)


def check(name: str, target: str, fn: Callable[[RunContext], Outcome], retry: bool = True) -> Scenario:
    def actions(ctx: RunContext) -> Iterator[Action]:
        yield Action(name, "api", "spider-validate", target, lambda: fn(ctx), retry=retry)

    return Scenario(name, actions)


def fact(name: str, target: str, fn: Callable[[RunContext], Outcome], fact: Fact) -> Scenario:
    """A check of what discovery found; the API error that kept the fact unknown, already retried there, as it is."""

    def run(ctx: RunContext) -> Outcome:
        error = ctx.facts.errors.get(fact)
        if error is not None:
            return Outcome(False, f"API error: {error}", transient=error.transient)
        return fn(ctx)

    return check(name, target, guarded(run), retry=False)


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
    network = ctx.facts.network
    if network is None:
        return Outcome(False, ctx.facts.missing["network"])
    # retried here: the check is not (its fact's API error was retried in discovery already)
    pools = {p["metadata"]["name"]: p for p in ctx.api(lambda: ctx.cluster.list("SpiderIPPool"))}
    missing = [p for p in network.pools if p not in pools]
    if missing:
        return Outcome(False, f"network {network.ref} names pools that do not exist: {', '.join(missing)}")
    free = {
        n: (pools[n].get("status", {}).get("totalIPCount", 0) or 0)
        - (pools[n].get("status", {}).get("allocatedIPCount", 0) or 0)
        for n in network.pools
    }
    if network.pools and sum(free.values()) == 0:
        return Outcome(False, f"pools of {network.ref} are full: {free}")
    return Outcome(True, f"network {network.ref} ({network.attach}), free addresses {free or 'n/a'}")


def _nodes(ctx: RunContext) -> Outcome:
    nodes = ctx.facts.nodes
    if not nodes:
        return Outcome(False, NO_NODE)
    note = "" if len(nodes) > 1 else " (cross-node tests will be skipped: they need two)"
    return Outcome(True, f"testing on {', '.join(nodes)}{note}")


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
        (fact("network", "spidermultusconfig", _network, "network"),),
        checks=("network",),
    ),
    Test(
        SUITE,
        "nodes",
        "schedulable nodes to test on (two for cross-node tests)",
        (fact("nodes", "nodes", _nodes, "nodes"),),
        checks=("nodes",),
    ),
]

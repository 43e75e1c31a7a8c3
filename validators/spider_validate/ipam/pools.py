"""The ipam suite's pools: the addresses each test takes from --ipam-range, a test's own pool (created from the
network's first pool on the test nodes, labelled with the run, deleted by a finalizer too) or the user's --pool,
its records and count, its audit, and the pods that ask for it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spider_validate.cluster import addresses
from spider_validate.cluster.api import SPIDERPOOL_GROUP, SPIDERPOOL_VERSION
from spider_validate.cluster.spiderpool import allocated_ips
from spider_validate.engine import manifests
from spider_validate.engine.context import RunContext
from spider_validate.engine.model import Outcome, Skip
from spider_validate.ipam import audit

# Addresses each test's own pool takes from --ipam-range, after the --ipam-pods of the scale test.
SIZES = {"allocate": 2, "release": 1, "exhaustion": 2, "statefulset": 1}


@dataclass(frozen=True)
class Pool:
    """The pool a test allocates from, and the node its pods go to (the pool's own node when it has one)."""

    name: str
    node: str
    own: bool  # the test's own pool, which it deletes; not the user's --pool


def planned(ctx: RunContext, test: str) -> Pool:
    """The test's pool before it exists: its name, the first test node, whether it is the test's own."""
    name = ctx.params.pool or f"sv-{ctx.run_id}-{test}"
    return Pool(name, ctx.nodes[0] if ctx.nodes else "", not ctx.params.pool)


def addresses_for(ctx: RunContext, test: str) -> list[str]:
    if not ctx.params.ipam_range:
        raise Skip("needs free addresses for its own pools (--ipam-range A-B of the network's subnet) or --pool NAME")
    sizes = {"scale": ctx.params.ipam_pods, **SIZES}
    available = addresses.count([ctx.params.ipam_range])
    start = 0
    for name, size in sizes.items():
        if name == test:
            if start + size > available:
                raise Skip(f"--ipam-range has {available} addresses; the suite needs {sum(sizes.values())}")
            return list(itertools.islice(addresses.iterate([ctx.params.ipam_range]), start, start + size))
        start += size
    raise AssertionError(test)


def records(ctx: RunContext, pool: str) -> tuple[dict[str, Any], int]:
    """The pool's allocatedIPs records and its allocatedIPCount."""
    found = ctx.api(lambda: ctx.cluster.get("SpiderIPPool", pool)) or {}
    status = found.get("status", {}) or {}
    return allocated_ips(found), int(status.get("allocatedIPCount", 0) or 0)


def _template(ctx: RunContext) -> dict[str, Any]:
    """The network's first pool: its subnet, gateway and node are what a pod on this network can use."""
    assert ctx.network is not None
    names = ctx.network.pools or tuple(p["metadata"]["name"] for p in ctx.cluster.list("SpiderIPPool"))
    for name in names:
        pool = ctx.cluster.get("SpiderIPPool", name)
        if pool and (not pool["spec"].get("nodeName") or set(pool["spec"]["nodeName"]) & set(ctx.nodes)):
            return pool
    raise Skip(f"no pool of network {ctx.network.ref} on the test nodes to copy subnet and gateway from")


def create(ctx: RunContext, pool: Pool, ips: list[str]) -> tuple[Pool, Outcome]:
    """Create the test's own pool of `ips`; the pool with the node its pods must go to."""
    template = _template(ctx)
    spec = {
        "ipVersion": 4,
        "subnet": template["spec"]["subnet"],
        "ips": [f"{ips[0]}-{ips[-1]}" if len(ips) > 1 else ips[0]],
    }
    for key in ("gateway", "nodeName", "routes"):
        if template["spec"].get(key):
            spec[key] = template["spec"][key]
    node = spec["nodeName"][0] if spec.get("nodeName") else pool.node
    assert ctx.network is not None
    spec["multusName"] = [ctx.network.ref]
    obj = {
        "apiVersion": f"{SPIDERPOOL_GROUP}/{SPIDERPOOL_VERSION}",
        "kind": "SpiderIPPool",
        "metadata": {"name": pool.name, "labels": manifests.labels(ctx.run_id)},
        "spec": spec,
    }
    ctx.create(obj, remove=True)
    created = Pool(pool.name, node, pool.own)
    return created, Outcome(True, f"created pool {pool.name} with {len(ips)} addresses on {spec['subnet']}")


def audited(ctx: RunContext, pool: Pool) -> Outcome:
    findings = audit.audit(audit.snapshot(ctx.cluster), {pool.name})
    return Outcome(
        not findings, "; ".join(f"{f.problem}: {f.message}" for f in findings) or f"pool {pool.name} consistent"
    )


def delete(ctx: RunContext, pool: Pool) -> Outcome:
    if pool.own:
        ctx.api(lambda: ctx.cluster.delete("SpiderIPPool", pool.name))
    return Outcome(True, f"deleted pool {pool.name}" if pool.own else "kept the user's pool")


def pod(ctx: RunContext, name: str, pool: Pool) -> dict[str, Any]:
    """A sleeping pod on the pool's node that asks for the pool."""
    assert ctx.network is not None
    return manifests.pod(
        name,
        ctx.namespace,
        ctx.run_id,
        "ipam",
        pool.node,
        ctx.params.image("client"),
        ctx.network,
        ctx.params,
        pools=(pool.name,),
    )


def poll(ctx: RunContext, what: str, check: Callable[[], str | None], timeout: float) -> tuple[bool, str, float]:
    """Poll `check` (None: done, else what is missing) until done or timeout: (done, why not, seconds)."""
    start = time.monotonic()
    missing: str | None = "not checked"
    while time.monotonic() - start < timeout and not ctx.stop.is_set():
        missing = check()
        if missing is None:
            return True, "", time.monotonic() - start
        time.sleep(0.1)
    return False, f"{what}: {missing} after {timeout:.0f}s", time.monotonic() - start


def latencies(start: dict[str, float], end: dict[str, float], names: list[str]) -> list[float]:
    """Seconds from `start` to `end` per pod that has both, in the order of `names` (data.per_pod_seconds)."""
    return [round(end[n] - start[n], 3) for n in names if n in start and n in end]

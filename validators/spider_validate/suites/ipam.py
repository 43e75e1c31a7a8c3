"""IP allocation and release: Spiderpool's promises, on pools the suite creates (or --pool), audited after.

Every test is a sequence of steps (create, check, delete, check) and ends with an audit of the pool it used. Its
pools carry the run's labels and a finalizer deletes them; it never touches a user's pool unless --pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from spider_validate.cluster import addresses
from spider_validate.cluster.spiderpool import USED_OUT, underlay_ip
from spider_validate.engine.context import NotReady, PodInfo, RunContext
from spider_validate.engine.model import Outcome, Requirement, Skip
from spider_validate.engine.test import Test
from spider_validate.ipam import pools as ipam_pools
from spider_validate.ipam.pools import Pool

if TYPE_CHECKING:
    from spider_validate.engine.steps import Steps

SUITE = "ipam"
STAYS_PENDING = 2.0  # seconds the pod one too many must stay without an address after Spiderpool's event


# -- the steps every test shares -----------------------------------------------------------------------------


def _begin(ctx: RunContext, t: Steps, test: str) -> tuple[Pool, int]:
    """The test's pool (its own, created; or the user's, audited) and its allocatedIPCount before the test."""
    pool = ipam_pools.planned(ctx, test)
    if ctx.params.pool:
        t.step("audit before", partial(ipam_pools.audited, ctx, pool), destination=pool.name)
    else:
        ips = ipam_pools.addresses_for(ctx, test)
        pool = t.step("create pool", partial(ipam_pools.create, ctx, pool, ips), destination=pool.name)

    def count() -> tuple[int, Outcome]:
        before = ipam_pools.records(ctx, pool.name)[1]
        return before, Outcome(True, f"allocatedIPCount {before} before the test")

    return pool, t.step("read pool", count, destination=pool.name)


def _end(ctx: RunContext, t: Steps, pool: Pool, before: int, ips: dict[str, str]) -> None:
    """Delete the test's remaining pods (name -> address), wait until their addresses are back, audit, remove the
    pool."""
    if ips:
        deleted = _delete(ctx, t, pool, list(ips))
        _released(ctx, t, pool, before, ips, deleted)
    t.step("audit after", partial(ipam_pools.audited, ctx, pool), destination=pool.name)
    t.step("delete pool", partial(ipam_pools.delete, ctx, pool), destination=pool.name)


def _create(ctx: RunContext, t: Steps, pool: Pool, names: list[str]) -> dict[str, float]:
    """Create pods asking for the pool; when each was created."""

    def run() -> tuple[dict[str, float], Outcome]:
        created = ctx.create_all([ipam_pools.pod(ctx, name, pool) for name in names])
        return created, Outcome(True, f"created {len(names)} pod(s) asking for {pool.name}")

    return t.step(f"create {len(names)} pod(s)", run, destination=pool.name)


def _addressed(
    ctx: RunContext, t: Steps, pool: Pool, names: list[str], created: dict[str, float]
) -> dict[str, PodInfo]:
    """Wait until the pods run with an address; the time to address each is the step's data.per_pod_seconds."""

    def run() -> tuple[dict[str, PodInfo], Outcome] | Outcome:
        start = time.monotonic()
        try:
            pods = ctx.wait_pods(names, report_stuck=False)  # the pod one too many waits for an address
        except NotReady as exc:
            why = f"addresses: {exc.waiting[0]} has no address yet after {ctx.params.pod_ready_timeout:.0f}s"
            return Outcome(False, why, data=_timing(time.monotonic() - start, created, exc.ready, names))
        seconds = time.monotonic() - start
        shown = ", ".join(pods[n].ip for n in names[:5]) + ("..." if len(names) > 5 else "")
        detail = f"{len(names)} pod(s) addressed in {seconds:.2f}s: {shown}"
        return pods, Outcome(True, detail, data=_timing(seconds, created, pods, names))

    return t.step(f"wait for {len(names)} address(es)", run, destination=pool.name)


def _timing(seconds: float, created: dict[str, float], pods: dict[str, PodInfo], names: list[str]) -> dict[str, Any]:
    ready = {name: pod.ready for name, pod in pods.items()}
    return {"seconds": round(seconds, 3), "per_pod_seconds": ipam_pools.latencies(created, ready, names)}


def _delete(ctx: RunContext, t: Steps, pool: Pool, names: list[str]) -> dict[str, float]:
    """Delete pods; when each was deleted."""

    def run() -> tuple[dict[str, float], Outcome]:
        deleted = {}
        for name in names:
            ctx.api(partial(ctx.cluster.delete, "Pod", name, ctx.namespace))
            deleted[name] = time.monotonic()
        return deleted, Outcome(True, f"deleted {len(names)} pod(s)")

    return t.step(f"delete {len(names)} pod(s)", run, destination=pool.name)


def _released(
    ctx: RunContext, t: Steps, pool: Pool, before: int, ips: dict[str, str], deleted: dict[str, float]
) -> None:
    """Wait until the pool holds none of the deleted pods' addresses and counts what it did before the test."""

    def run() -> Outcome:
        released: dict[str, float] = {}

        def check() -> str | None:
            records, count = ipam_pools.records(ctx, pool.name)
            held = [ip for ip in ips.values() if ip in records]
            for name, ip in ips.items():
                if ip not in records:
                    released.setdefault(name, time.monotonic())
            if held:
                return f"{len(held)} address(es) still allocated ({', '.join(held[:3])})"
            if count != before:
                return f"allocatedIPCount is {count}, was {before} before the test"
            return None

        ok, why, seconds = ipam_pools.poll(ctx, "release", check, ctx.params.release_timeout)
        per_pod = ipam_pools.latencies(deleted, released, list(ips))
        return Outcome(
            ok,
            why or f"{len(ips)} address(es) released in {seconds:.2f}s",
            data={"seconds": round(seconds, 3), "per_pod_seconds": per_pod},
        )

    t.step(f"wait for {len(ips)} release(s)", run, destination=pool.name)


# -- the tests ------------------------------------------------------------------------------------------------


def allocate(ctx: RunContext, t: Steps) -> None:
    pool, before = _begin(ctx, t, "allocate")
    name = "allocate-0"
    pod = _addressed(ctx, t, pool, [name], _create(ctx, t, pool, [name]))[name]

    def check() -> Outcome:
        ip, uid = pod.ip, pod.uid
        found = ctx.cluster.get("SpiderIPPool", pool.name) or {}
        spec = found.get("spec", {})
        problems = []
        if not addresses.contains(spec.get("ips", []), ip) or addresses.contains(spec.get("excludeIPs", []), ip):
            problems.append(f"{ip} is not one of the pool's ips (minus excludeIPs)")
        records, count = ipam_pools.records(ctx, pool.name)
        if records.get(ip, {}).get("podUid") != uid:
            problems.append(f"pool allocatedIPs has {records.get(ip)} for {ip}, not uid {uid}")
        if count != before + 1:
            problems.append(f"allocatedIPCount is {count}, expected {before + 1}")
        endpoint = ctx.cluster.get("SpiderEndpoint", name, ctx.namespace)
        entries = ((endpoint or {}).get("status", {}).get("current", {}) or {}).get("ips", [])
        if endpoint is None:
            problems.append(f"SpiderEndpoint {ctx.namespace}/{name} is missing")
        elif not any(e.get("ipv4", "").split("/")[0] == ip and e.get("ipv4Pool") == pool.name for e in entries):
            problems.append(f"SpiderEndpoint records {entries}, not {ip} from {pool.name}")
        return Outcome(not problems, "; ".join(problems) or f"{ip} from {pool.name}, recorded in pool and endpoint")

    t.step("check allocation", check, destination=pool.name)
    _end(ctx, t, pool, before, {name: pod.ip})


def release(ctx: RunContext, t: Steps) -> None:
    """A one-address pool: the address must come back, and a new pod must get that very address."""
    if ctx.params.pool:
        raise Skip("needs a one-address pool of its own (--ipam-range), not --pool")
    pool, before = _begin(ctx, t, "release")
    first, second = "release-a", "release-b"
    released = _addressed(ctx, t, pool, [first], _create(ctx, t, pool, [first]))[first].ip
    _released(ctx, t, pool, before, {first: released}, _delete(ctx, t, pool, [first]))
    again = _addressed(ctx, t, pool, [second], _create(ctx, t, pool, [second]))[second].ip
    t.step(
        "same address again",
        lambda: Outcome(again == released, f"{second} got {again}, released by {first}: {released}"),
        destination=pool.name,
    )
    _end(ctx, t, pool, before, {second: again})


def scale(ctx: RunContext, t: Steps) -> None:
    pool, before = _begin(ctx, t, "scale")
    names = [f"scale-{i}" for i in range(ctx.params.ipam_pods)]
    pods = _addressed(ctx, t, pool, names, _create(ctx, t, pool, names))

    def unique() -> Outcome:
        by_ip: dict[str, list[str]] = {}
        for name in names:
            by_ip.setdefault(pods[name].ip, []).append(name)
        shared = {ip: holders for ip, holders in by_ip.items() if len(holders) > 1}
        return Outcome(
            not shared,
            f"{len(by_ip)} distinct addresses for {len(names)} pods"
            if not shared
            else "; ".join(f"{ip} given to {', '.join(p)}" for ip, p in shared.items()),
        )

    t.step("no address shared", unique, destination=pool.name)
    _end(ctx, t, pool, before, {name: pods[name].ip for name in names})


def exhaustion(ctx: RunContext, t: Steps) -> None:
    if ctx.params.pool:
        raise Skip("would exhaust the user's pool; runs on a pool of its own (--ipam-range) only")
    pool, before = _begin(ctx, t, "exhaustion")
    holders = [f"exhaustion-{i}" for i in range(ipam_pools.SIZES["exhaustion"])]
    extra = "exhaustion-extra"
    _addressed(ctx, t, pool, holders, _create(ctx, t, pool, holders))
    created = _create(ctx, t, pool, [extra])

    def starved() -> Outcome:
        def check() -> str | None:
            events = ctx.cluster.list("Event", ctx.namespace)
            if any(
                e.get("involvedObject", {}).get("name") == extra and USED_OUT in e.get("message", "") for e in events
            ):
                return None
            return f"no '{USED_OUT}' event for {extra}"

        def running() -> str | None:
            pod = ctx.cluster.get("Pod", extra, ctx.namespace) or {}
            return None if pod.get("status", {}).get("phase") == "Running" else "still pending"

        ok, why, seconds = ipam_pools.poll(ctx, "exhaustion", check, ctx.params.pod_ready_timeout)
        # It must stay so: a pod that still gets an address past a full pool runs a moment after the event.
        overcommitted, _, _ = ipam_pools.poll(ctx, "staying pending", running, STAYS_PENDING)
        if overcommitted:
            return Outcome(False, f"{extra} is running although the pool is full")
        return Outcome(ok, why or f"{extra} waits with Spiderpool's '{USED_OUT}' after {seconds:.2f}s")

    t.step("one pod too many stays pending", starved, destination=pool.name)
    _delete(ctx, t, pool, holders)
    ip = _addressed(ctx, t, pool, [extra], created)[extra].ip
    _end(ctx, t, pool, before, {extra: ip})


def statefulset(ctx: RunContext, t: Steps) -> None:
    """A StatefulSet pod keeps its address across a delete and restart (only when the cluster enables it)."""
    pool, before = _begin(ctx, t, "statefulset")
    name = f"sv-{ctx.run_id}-sts"
    member = f"{name}-0"
    pod = ipam_pools.pod(ctx, member, pool)

    def create() -> Outcome:
        ctx.create(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": name, "namespace": ctx.namespace, "labels": pod["metadata"]["labels"]},
                "spec": {
                    "replicas": 1,
                    "serviceName": name,
                    "selector": {"matchLabels": {"spider-validate/sts": name}},
                    "template": {
                        "metadata": {
                            "labels": {**pod["metadata"]["labels"], "spider-validate/sts": name},
                            "annotations": pod["metadata"]["annotations"],
                        },
                        "spec": pod["spec"],
                    },
                },
            }
        )
        return Outcome(True, f"created StatefulSet {name}")

    t.step("create StatefulSet", create, destination=pool.name)
    first = _addressed(ctx, t, pool, [member], {})[member]  # the controller creates the pod
    _delete(ctx, t, pool, [member])

    now = {"ip": first.ip}

    def same() -> Outcome:
        def recreated() -> str | None:
            found = ctx.cluster.get("Pod", member, ctx.namespace)
            assert ctx.network is not None
            ip = underlay_ip(found or {}, ctx.network.interface)
            if not found or found.get("status", {}).get("phase") != "Running" or not ip:
                return f"{member} has no address yet"
            now["ip"] = ip
            return None if found["metadata"]["uid"] != first.uid else "not recreated yet"

        ok, why, _ = ipam_pools.poll(ctx, "restart", recreated, ctx.params.pod_ready_timeout)
        if ok and now["ip"] != first.ip:
            return Outcome(False, f"{member} came back with {now['ip']}, was {first.ip}")
        return Outcome(ok, why or f"kept {now['ip']} across the restart (was {first.ip})")

    t.step("same address after restart", same, destination=pool.name)

    def delete() -> tuple[dict[str, float], Outcome]:
        ctx.api(partial(ctx.cluster.delete, "StatefulSet", name, ctx.namespace))
        return {member: time.monotonic()}, Outcome(True, f"deleted StatefulSet {name}")

    deleted = t.step("delete StatefulSet", delete, destination=pool.name)
    # the set's pod goes after it (the garbage collector) and its address when its sandbox is torn down, the set
    # gone (Spiderpool's pkg/ipam/release.go keeps it only for a set that wants the pod): wait, as for any pod
    _released(ctx, t, pool, before, {member: now["ip"]}, deleted)
    _end(ctx, t, pool, before, {})


def _test(
    name: str,
    description: str,
    steps: Callable[[RunContext, Steps], None],
    requires: tuple[Requirement, ...] = (),
) -> Test:
    def objects(ctx: RunContext) -> list[dict[str, Any]]:
        # every pod of the test is one of these
        return [ipam_pools.pod(ctx, f"{name}-0", ipam_pools.planned(ctx, name))]

    return Test(
        SUITE,
        name,
        description,
        steps=steps,
        labels=("ipam",),
        requires_nodes=1,
        requires=requires,
        objects=objects,
    )


TESTS = [
    _test(
        "allocate",
        "a pod asking for a pool gets an address of it, recorded in the pool and its SpiderEndpoint",
        allocate,
    ),
    _test("release", "a deleted pod's address returns to the pool and a new pod can get it", release),
    _test("scale", "N pods at once: time to address and to release them all, no address shared", scale),
    _test(
        "exhaustion", "one pod more than the pool holds waits with 'all IP addresses used out', then runs", exhaustion
    ),
    _test(
        "statefulset",
        "a StatefulSet pod keeps its address across a restart (when the cluster enables it)",
        statefulset,
        requires=("statefulset",),
    ),
]

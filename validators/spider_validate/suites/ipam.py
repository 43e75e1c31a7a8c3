"""IP allocation and release: Spiderpool's promises, on pools the suite creates (or --pool), audited after.

Every test is sequential (create, check, delete, check) and ends with an audit of the pools it used. Its
pools carry the run's labels and a finalizer deletes them; it never touches a user's pool unless --pool.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from spider_validate import addresses, audit, manifests
from spider_validate.context import RunContext
from spider_validate.kube import SPIDERPOOL_GROUP, SPIDERPOOL_VERSION
from spider_validate.model import Action, Outcome, Requirement, Scenario, Skip, Test
from spider_validate.spiderpool import USED_OUT, allocated_ips, underlay_ip

SUITE = "ipam"
STAYS_PENDING = 2.0  # seconds the pod one too many must stay without an address after Spiderpool's event
# Addresses each test's own pool takes from --ipam-range, after the --ipam-pods of the scale test.
SIZES = {"allocate": 2, "release": 1, "exhaustion": 2, "statefulset": 1}


def _addresses_for(ctx: RunContext, test: str) -> list[str]:
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


class Step:
    """One test's state: its pool, its pods, and helpers that each make one Action."""

    def __init__(self, ctx: RunContext, test: str) -> None:
        self.ctx, self.test = ctx, test
        self.pool = ctx.params.pool or f"sv-{ctx.run_id}-{test}"
        self.own_pool = not ctx.params.pool
        self.node = ctx.nodes[0] if ctx.nodes else ""
        self.ips: dict[str, str] = {}
        self.uids: dict[str, str] = {}
        self.count_before = 0
        # monotonic times per pod, for the latency distribution in the result (data.per_pod_seconds): created,
        # first seen addressed (pods are polled in creation order), deleted, first seen released
        self.times: dict[str, dict[str, float]] = {}

    def _mark(self, name: str, event: str) -> None:
        self.times.setdefault(name, {}).setdefault(event, time.monotonic())

    def _latencies(self, names: list[str], start: str, end: str) -> list[float]:
        spans = [self.times.get(n, {}) for n in names]
        return [round(t[end] - t[start], 3) for t in spans if start in t and end in t]

    def action(self, name: str, fn: Callable[[], Outcome]) -> Action:
        return Action(name, "api", self.test, self.pool, fn)

    # -- pools ----------------------------------------------------------------------------------------

    def read_count(self) -> Action:
        """Record allocatedIPCount before the test (in self.count_before)."""

        def run() -> Outcome:
            self.count_before = self.records()[1]
            return Outcome(True, f"allocatedIPCount {self.count_before} before the test")

        return self.action("read pool", run)

    def records(self) -> tuple[dict[str, Any], int]:
        pool = self.ctx.api(lambda: self.ctx.cluster.get("SpiderIPPool", self.pool)) or {}
        status = pool.get("status", {}) or {}
        return allocated_ips(pool), int(status.get("allocatedIPCount", 0) or 0)

    def create_pool(self, ips: list[str]) -> Action:
        def run() -> Outcome:
            template = self._template_pool()
            spec = {
                "ipVersion": 4,
                "subnet": template["spec"]["subnet"],
                "ips": [f"{ips[0]}-{ips[-1]}" if len(ips) > 1 else ips[0]],
            }
            for key in ("gateway", "nodeName", "routes"):
                if template["spec"].get(key):
                    spec[key] = template["spec"][key]
            if spec.get("nodeName"):
                self.node = spec["nodeName"][0]
            assert self.ctx.network is not None
            spec["multusName"] = [self.ctx.network.ref]
            obj = {
                "apiVersion": f"{SPIDERPOOL_GROUP}/{SPIDERPOOL_VERSION}",
                "kind": "SpiderIPPool",
                "metadata": {"name": self.pool, "labels": manifests.labels(self.ctx.run_id)},
                "spec": spec,
            }
            self.ctx.create(obj)
            self.ctx.add_finalizer(
                f"SpiderIPPool {self.pool}", lambda: self.ctx.cluster.delete("SpiderIPPool", self.pool)
            )
            return Outcome(True, f"created pool {self.pool} with {len(ips)} addresses on {spec['subnet']}")

        return self.action("create pool", run)

    def _template_pool(self) -> dict[str, Any]:
        """The network's first pool: its subnet, gateway and node are what a pod on this network can use."""
        assert self.ctx.network is not None
        names = self.ctx.network.pools or tuple(p["metadata"]["name"] for p in self.ctx.cluster.list("SpiderIPPool"))
        for name in names:
            pool = self.ctx.cluster.get("SpiderIPPool", name)
            if pool and (not pool["spec"].get("nodeName") or set(pool["spec"]["nodeName"]) & set(self.ctx.nodes)):
                return pool
        raise Skip(f"no pool of network {self.ctx.network.ref} on the test nodes to copy subnet and gateway from")

    # -- pods -------------------------------------------------------------------------------------------

    def pod_manifest(self, name: str) -> dict[str, Any]:
        """A sleeping pod on the test's node that asks for the test's pool."""
        assert self.ctx.network is not None
        return manifests.pod(
            name,
            self.ctx.namespace,
            self.ctx.run_id,
            "ipam",
            self.node,
            self.ctx.params.image("client"),
            self.ctx.network,
            self.ctx.params,
            pools=(self.pool,),
        )

    def create_pods(self, names: list[str]) -> Action:
        def run() -> Outcome:
            for name in names:
                self.times.pop(name, None)
                self._mark(name, "created")
                self.ctx.create(self.pod_manifest(name))
            return Outcome(True, f"created {len(names)} pod(s) asking for {self.pool}")

        return self.action(f"create {len(names)} pod(s)", run)

    def wait(self, what: str, check: Callable[[], str | None], timeout: float) -> tuple[bool, str, float]:
        """Poll `check` (None: done, else what is missing) until done or timeout."""
        start = time.monotonic()
        missing: str | None = "not checked"
        while time.monotonic() - start < timeout and not self.ctx.stop.is_set():
            missing = check()
            if missing is None:
                return True, "", time.monotonic() - start
            time.sleep(0.1)
        return False, f"{what}: {missing} after {timeout:.0f}s", time.monotonic() - start

    def addresses_of(self, names: list[str]) -> str | None:
        for name in names:
            pod = self.ctx.cluster.get("Pod", name, self.ctx.namespace)
            assert self.ctx.network is not None
            ip = underlay_ip(pod or {}, self.ctx.network.interface)
            if not pod or pod.get("status", {}).get("phase") != "Running" or not ip:
                return f"{name} has no address yet"
            self.ips[name], self.uids[name] = ip, pod["metadata"]["uid"]
            self._mark(name, "addressed")
        return None

    def wait_addressed(self, names: list[str]) -> Action:
        def run() -> Outcome:
            ok, why, seconds = self.wait(
                "addresses", lambda: self.addresses_of(names), self.ctx.params.pod_ready_timeout
            )
            detail = why or f"{len(names)} pod(s) addressed in {seconds:.2f}s: " + ", ".join(
                self.ips[n] for n in names[:5]
            ) + ("..." if len(names) > 5 else "")
            per_pod = self._latencies(names, "created", "addressed")
            return Outcome(ok, detail, data={"seconds": round(seconds, 3), "per_pod_seconds": per_pod})

        return self.action(f"wait for {len(names)} address(es)", run)

    def delete_pods(self, names: list[str]) -> Action:
        def run() -> Outcome:
            for name in names:
                self.ctx.api(partial(self.ctx.cluster.delete, "Pod", name, self.ctx.namespace))
                self._mark(name, "deleted")
            return Outcome(True, f"deleted {len(names)} pod(s)")

        return self.action(f"delete {len(names)} pod(s)", run)

    def wait_released(self, names: list[str]) -> Action:
        def run() -> Outcome:
            def check() -> str | None:
                records, count = self.records()
                held = [self.ips[n] for n in names if self.ips[n] in records]
                for n in names:
                    if self.ips[n] not in records:
                        self._mark(n, "released")
                if held:
                    return f"{len(held)} address(es) still allocated ({', '.join(held[:3])})"
                if count != self.count_before:
                    return f"allocatedIPCount is {count}, was {self.count_before} before the test"
                return None

            ok, why, seconds = self.wait("release", check, self.ctx.params.release_timeout)
            per_pod = self._latencies(names, "deleted", "released")
            return Outcome(
                ok,
                why or f"{len(names)} address(es) released in {seconds:.2f}s",
                data={"seconds": round(seconds, 3), "per_pod_seconds": per_pod},
            )

        return self.action(f"wait for {len(names)} release(s)", run)

    def audit_pool(self, when: str) -> Action:
        def run() -> Outcome:
            findings = audit.audit(audit.snapshot(self.ctx.cluster), {self.pool})
            return Outcome(
                not findings, "; ".join(f"{f.problem}: {f.message}" for f in findings) or f"pool {self.pool} consistent"
            )

        return self.action(f"audit {when}", run)

    def delete_pool(self) -> Action:
        def run() -> Outcome:
            if self.own_pool:
                self.ctx.api(lambda: self.ctx.cluster.delete("SpiderIPPool", self.pool))
            return Outcome(True, f"deleted pool {self.pool}" if self.own_pool else "kept the user's pool")

        return self.action("delete pool", run)


def _begin(ctx: RunContext, test: str, step: Step) -> Iterator[Action]:
    if ctx.params.pool:
        yield step.audit_pool("before")
    else:
        yield step.create_pool(_addresses_for(ctx, test))
    yield step.read_count()


def _end(step: Step, pods: list[str]) -> Iterator[Action]:
    """Delete the test's remaining pods, wait until their addresses are back, audit, remove the pool."""
    if pods:
        yield step.delete_pods(pods)
        yield step.wait_released(pods)
    yield step.audit_pool("after")
    yield step.delete_pool()


def allocate(ctx: RunContext) -> Iterator[Action]:
    step = Step(ctx, "allocate")
    yield from _begin(ctx, "allocate", step)
    name = f"{step.test}-0"
    yield step.create_pods([name])
    yield step.wait_addressed([name])

    def check() -> Outcome:
        ip, uid = step.ips[name], step.uids[name]
        pool = ctx.cluster.get("SpiderIPPool", step.pool) or {}
        spec = pool.get("spec", {})
        problems = []
        if not addresses.contains(spec.get("ips", []), ip) or addresses.contains(spec.get("excludeIPs", []), ip):
            problems.append(f"{ip} is not one of the pool's ips (minus excludeIPs)")
        records, count = step.records()
        if records.get(ip, {}).get("podUid") != uid:
            problems.append(f"pool allocatedIPs has {records.get(ip)} for {ip}, not uid {uid}")
        if count != step.count_before + 1:
            problems.append(f"allocatedIPCount is {count}, expected {step.count_before + 1}")
        endpoint = ctx.cluster.get("SpiderEndpoint", name, ctx.namespace)
        entries = ((endpoint or {}).get("status", {}).get("current", {}) or {}).get("ips", [])
        if endpoint is None:
            problems.append(f"SpiderEndpoint {ctx.namespace}/{name} is missing")
        elif not any(e.get("ipv4", "").split("/")[0] == ip and e.get("ipv4Pool") == step.pool for e in entries):
            problems.append(f"SpiderEndpoint records {entries}, not {ip} from {step.pool}")
        return Outcome(not problems, "; ".join(problems) or f"{ip} from {step.pool}, recorded in pool and endpoint")

    yield step.action("check allocation", check)
    yield from _end(step, [name])


def release(ctx: RunContext) -> Iterator[Action]:
    """A one-address pool: the address must come back, and a new pod must get that very address."""
    step = Step(ctx, "release")
    if ctx.params.pool:
        raise Skip("needs a one-address pool of its own (--ipam-range), not --pool")
    yield from _begin(ctx, "release", step)
    first, second = f"{step.test}-a", f"{step.test}-b"
    yield step.create_pods([first])
    yield step.wait_addressed([first])
    yield step.delete_pods([first])
    yield step.wait_released([first])
    yield step.create_pods([second])
    yield step.wait_addressed([second])
    yield step.action(
        "same address again",
        lambda: Outcome(
            step.ips[second] == step.ips[first],
            f"{second} got {step.ips[second]}, released by {first}: {step.ips[first]}",
        ),
    )
    yield from _end(step, [second])


def scale(ctx: RunContext) -> Iterator[Action]:
    step = Step(ctx, "scale")
    yield from _begin(ctx, "scale", step)
    names = [f"{step.test}-{i}" for i in range(ctx.params.ipam_pods)]
    yield step.create_pods(names)
    yield step.wait_addressed(names)

    def unique() -> Outcome:
        by_ip: dict[str, list[str]] = {}
        for name in names:
            by_ip.setdefault(step.ips[name], []).append(name)
        shared = {ip: pods for ip, pods in by_ip.items() if len(pods) > 1}
        return Outcome(
            not shared,
            f"{len(by_ip)} distinct addresses for {len(names)} pods"
            if not shared
            else "; ".join(f"{ip} given to {', '.join(p)}" for ip, p in shared.items()),
        )

    yield step.action("no address shared", unique)
    yield from _end(step, names)


def exhaustion(ctx: RunContext) -> Iterator[Action]:
    step = Step(ctx, "exhaustion")
    if ctx.params.pool:
        raise Skip("would exhaust the user's pool; runs on a pool of its own (--ipam-range) only")
    yield from _begin(ctx, "exhaustion", step)
    holders = [f"{step.test}-{i}" for i in range(SIZES["exhaustion"])]
    extra = f"{step.test}-extra"
    yield step.create_pods(holders)
    yield step.wait_addressed(holders)
    yield step.create_pods([extra])

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

        ok, why, seconds = step.wait("exhaustion", check, ctx.params.pod_ready_timeout)
        # It must stay so: a pod that still gets an address past a full pool runs a moment after the event.
        overcommitted, _, _ = step.wait("staying pending", running, STAYS_PENDING)
        if overcommitted:
            return Outcome(False, f"{extra} is running although the pool is full")
        return Outcome(ok, why or f"{extra} waits with Spiderpool's '{USED_OUT}' after {seconds:.2f}s")

    yield step.action("one pod too many stays pending", starved)
    yield step.delete_pods(holders)
    yield step.wait_addressed([extra])
    yield from _end(step, [extra])


def statefulset(ctx: RunContext) -> Iterator[Action]:
    """A StatefulSet pod keeps its address across a delete and restart (only when the cluster enables it)."""
    step = Step(ctx, "statefulset")
    yield from _begin(ctx, "statefulset", step)
    name = f"sv-{ctx.run_id}-sts"
    pod = step.pod_manifest(f"{name}-0")

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

    yield step.action("create StatefulSet", create)
    yield step.wait_addressed([f"{name}-0"])
    first = dict(step.ips), dict(step.uids)
    yield step.delete_pods([f"{name}-0"])

    def recreated() -> str | None:
        missing = step.addresses_of([f"{name}-0"])
        return missing or (None if step.uids[f"{name}-0"] != first[1][f"{name}-0"] else "not recreated yet")

    def same() -> Outcome:
        ok, why, _ = step.wait("restart", recreated, ctx.params.pod_ready_timeout)
        return Outcome(
            ok and step.ips[f"{name}-0"] == first[0][f"{name}-0"],
            why or f"kept {step.ips[f'{name}-0']} across the restart (was {first[0][f'{name}-0']})",
        )

    yield step.action("same address after restart", same)

    def delete() -> Outcome:
        ctx.api(partial(ctx.cluster.delete, "StatefulSet", name, ctx.namespace))
        return Outcome(True, f"deleted StatefulSet {name}")

    yield step.action("delete StatefulSet", delete)
    yield from _end(step, [])


def _test(
    name: str, description: str, fn: Callable[[RunContext], Iterator[Action]], requires: tuple[Requirement, ...] = ()
) -> Test:
    def objects(ctx: RunContext) -> list[dict[str, Any]]:
        return [Step(ctx, name).pod_manifest(f"{name}-0")]  # every pod of the test is one of these

    return Test(
        SUITE,
        name,
        description,
        (Scenario(name, fn),),
        labels=("ipam",),
        requires_nodes=1,
        sequential=True,
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

"""IPAM consistency of SpiderIPPools, SpiderEndpoints and Pods, live or from `kubectl get -o json` dumps.

The rule Spiderpool's own e2e suite enforces after every test: for each record in a pool's allocatedIPs the
pod exists with the same UID, the IP appears exactly once in its network-status, and its SpiderEndpoint
agrees; allocatedIPCount == len(allocatedIPs) <= totalIPCount; and every address is inside the pool.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from spider_validate.cluster import addresses
from spider_validate.cluster.spiderpool import allocated_ips, network_status
from spider_validate.engine.model import ActionResult, Status, TestResult

TERMINAL = {"Succeeded", "Failed"}


class Problem(StrEnum):
    LEAK = "leak"
    DUPLICATE = "duplicate"
    NOT_IN_NETWORK_STATUS = "not-in-network-status"
    ENDPOINT_MISSING = "endpoint-missing"
    ENDPOINT_MISMATCH = "endpoint-mismatch"
    ORPHAN_ENDPOINT = "orphan-endpoint"
    COUNT_MISMATCH = "count-mismatch"
    OVER_CAPACITY = "over-capacity"
    OUT_OF_RANGE = "out-of-range"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Finding:
    problem: Problem
    ip: str
    objects: tuple[str, ...]
    message: str
    fix: str


@dataclass
class Snapshot:
    pools: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    nodes: list[dict[str, Any]] = field(default_factory=list)  # read for the cloud side only (ipam/cloud.py)


class Unreadable(ValueError):
    """The input cannot be audited: not kubectl's shape, an object (named) malformed, or nothing to audit."""


DUMP_HINT = "kubectl get spiderippools,spiderendpoints,pods -A -o json"
CLOUD_DUMP_HINT = "kubectl get spiderippools,spiderendpoints,pods,nodes -A -o json"


def load_dump(path: Path) -> Snapshot:
    """Read `kubectl get spiderippools,spiderendpoints,pods -A -o json` (a List), one object, or a JSON array; with
    `nodes` too for the cloud side; from stdin when the path is `-` (`kubectl get ... | spider-validate audit
    --from-file -`)."""
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unreadable(f"not JSON ({exc}); expected the output of `{DUMP_HINT}`") from exc
    if isinstance(data, dict) and "items" in data:
        items = data["items"]
    elif isinstance(data, dict) and "kind" in data:
        items = [data]
    else:
        items = data
    if not isinstance(items, list):
        raise Unreadable(f"expected a List of objects, the output of `{DUMP_HINT}`")
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i, item in enumerate(items):
        meta = item.get("metadata") if isinstance(item, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not isinstance(item.get("kind"), str):
            raise Unreadable(f"item {i} is not a Kubernetes object (kind, metadata.name)")
        by_kind[item["kind"]].append(item)
    unknown = set(by_kind) - {"SpiderIPPool", "SpiderEndpoint", "Pod", "Node"}
    if unknown:
        raise Unreadable(f"unexpected kinds {sorted(unknown)}: dump spiderippools,spiderendpoints,pods(,nodes) only")
    return Snapshot(by_kind["SpiderIPPool"], by_kind["SpiderEndpoint"], by_kind["Pod"], by_kind["Node"])


def _malformed(ref: str, what: str) -> Unreadable:
    return Unreadable(f"{ref}: {what}")


def _mapping(obj: dict[str, Any], key: str, ref: str) -> dict[str, Any]:
    """obj[key] as a dict ({} when absent); `null` or another type is malformed."""
    if key not in obj:
        return {}
    value = obj[key]
    if not isinstance(value, dict):
        raise _malformed(ref, f"{key} is {json.dumps(value)}, expected an object")
    return value


def _check_addresses(entries: Any, ref: str, field: str) -> None:
    if not isinstance(entries, list):
        raise _malformed(ref, f"{field} is {json.dumps(entries)}, expected a list")
    for entry in entries:
        try:
            addresses.bounds(entry)
        except ValueError as exc:
            raise _malformed(ref, f"{field}: {exc}") from exc


def _check(snapshot: Snapshot) -> None:
    """Every field the audit reads has the type the CRDs and the Pod API give it; else Unreadable naming it."""
    for pool in snapshot.pools:
        ref = f"SpiderIPPool/{pool['metadata']['name']}"
        spec, status = _mapping(pool, "spec", ref), _mapping(pool, "status", ref)
        _check_addresses(spec.get("ips", []), ref, "spec.ips")
        _check_addresses(spec.get("excludeIPs", []) or [], ref, "spec.excludeIPs")
        for key in ("allocatedIPCount", "totalIPCount"):
            value = status.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise _malformed(ref, f"status.{key} is {json.dumps(value)}, expected a count")
        if not isinstance(status.get("allocatedIPs") or "", str):
            raise _malformed(ref, "status.allocatedIPs is not a string (Spiderpool stores a JSON string)")
    for pod in snapshot.pods:
        ref = f"Pod/{_ref(pod)}"
        _mapping(pod, "status", ref)
        for entry in network_status(pod):
            if not isinstance(entry, dict):
                raise _malformed(ref, "its network-status has an entry that is not an object")
            _check_addresses(
                [_bare(ip) if isinstance(ip, str) else ip for ip in entry.get("ips", [])], ref, "network-status ips"
            )
    for endpoint in snapshot.endpoints:
        ref = f"SpiderEndpoint/{_ref(endpoint)}"
        current = _mapping(_mapping(endpoint, "status", ref), "current", ref)
        ips = current.get("ips", []) or []
        if not isinstance(ips, list) or not all(isinstance(e, dict) for e in ips):
            raise _malformed(ref, "status.current.ips is not a list of objects")
        _check_addresses([_bare(e["ipv4"]) for e in ips if e.get("ipv4")], ref, "status.current.ips ipv4")


def _in_scope(snapshot: Snapshot, only_pools: set[str] | None) -> None:
    names = sorted(p["metadata"]["name"] for p in snapshot.pools)
    if not names:
        raise Unreadable(
            f"nothing to audit: no SpiderIPPool ({len(snapshot.pods)} pods, {len(snapshot.endpoints)} endpoints); "
            f"expected the output of `{DUMP_HINT}`"
        )
    missing = sorted((only_pools or set()) - set(names))
    if missing:
        raise Unreadable(f"no pool named {', '.join(missing)}; the pools are {', '.join(names)}")


def _ref(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def _bare(ip: str) -> str:
    return ip.split("/")[0]


@dataclass
class PoolRecords:
    """One audited pool and its parsed allocatedIPs (ip -> {pod, podUid, ...})."""

    pool: dict[str, Any]
    records: dict[str, dict[str, Any]]

    @property
    def name(self) -> str:
        return str(self.pool["metadata"]["name"])

    @property
    def ref(self) -> str:
        return f"SpiderIPPool/{self.name}"


@dataclass
class Record:
    """One allocation: `ip` of `pool` held for `pod_ref` (uid `uid`); `pod` is that pod when it exists."""

    pool: PoolRecords
    ip: str
    pod_ref: str
    uid: str
    pod: dict[str, Any] | None

    @property
    def objects(self) -> tuple[str, ...]:
        return (self.pool.ref, f"Pod/{self.pod_ref}")

    @property
    def live(self) -> bool:
        """The pod the record names exists with that UID and has not ended."""
        pod = self.pod
        return (
            pod is not None
            and pod["metadata"].get("uid") == self.uid
            and pod.get("status", {}).get("phase") not in TERMINAL
        )


@dataclass
class Index:
    """What every rule reads, built once: pods and endpoints by reference, parsed pools, holders per address."""

    pods: dict[str, dict[str, Any]]
    endpoints: dict[str, dict[str, Any]]
    pools: list[PoolRecords]
    unreadable: list[str]  # pools whose allocatedIPs cannot be parsed
    holders: dict[str, list[str]]  # ip -> "pool:ns/pod" records

    def records(self, pool: PoolRecords) -> list[Record]:
        return [
            Record(pool, ip, r.get("pod", ""), r.get("podUid", ""), self.pods.get(r.get("pod", "")))
            for ip, r in sorted(pool.records.items())
        ]


def _parse_records(pool: dict[str, Any]) -> dict[str, dict[str, Any]]:
    records = allocated_ips(pool)
    if not isinstance(records, dict) or not all(isinstance(r, dict) for r in records.values()):
        raise ValueError("not an object of records")
    for ip in records:
        addresses.bounds(ip)
    return records


def index(snapshot: Snapshot, only_pools: set[str] | None = None) -> Index:
    pools, unreadable = [], []
    holders: dict[str, list[str]] = defaultdict(list)
    for pool in snapshot.pools:
        name = pool["metadata"]["name"]
        if only_pools is not None and name not in only_pools:
            continue
        try:
            records = _parse_records(pool)
        except ValueError:  # json.JSONDecodeError included
            unreadable.append(name)
            continue
        pools.append(PoolRecords(pool, records))
        for ip, record in sorted(records.items()):
            holders[ip].append(f"{name}:{record.get('pod', '')}")
    return Index(
        {_ref(p): p for p in snapshot.pods}, {_ref(e): e for e in snapshot.endpoints}, pools, unreadable, holders
    )


# -- the rules: one function each, registered in the lists below -------------------------------------------------


def unreadable_pools(ix: Index) -> Iterator[Finding]:
    for name in ix.unreadable:
        pref = f"SpiderIPPool/{name}"
        yield Finding(
            Problem.UNREADABLE,
            "",
            (pref,),
            f"{pref} has an allocatedIPs that is not a JSON object of address records",
            "inspect the pool; restart spiderpool-controller to rebuild its status",
        )


def count_mismatch(ix: Index, p: PoolRecords) -> Iterator[Finding]:
    count = p.pool.get("status", {}).get("allocatedIPCount", 0) or 0
    if count != len(p.records):
        yield Finding(
            Problem.COUNT_MISMATCH,
            "",
            (p.ref,),
            f"{p.ref} says allocatedIPCount {count} but holds {len(p.records)} records",
            "restart spiderpool-controller to recount (the records are the truth)",
        )


def over_capacity(ix: Index, p: PoolRecords) -> Iterator[Finding]:
    total = p.pool.get("status", {}).get("totalIPCount")
    if total is not None and len(p.records) > total:
        yield Finding(
            Problem.OVER_CAPACITY,
            "",
            (p.ref,),
            f"{p.ref} holds {len(p.records)} records but only {total} addresses",
            "remove the records of pods that no longer exist, then shrink no pool in use",
        )


def out_of_range(ix: Index, r: Record) -> Iterator[Finding]:
    spec = r.pool.pool.get("spec", {})
    if not addresses.contains(spec.get("ips", []), r.ip) or addresses.contains(spec.get("excludeIPs") or [], r.ip):
        yield Finding(
            Problem.OUT_OF_RANGE,
            r.ip,
            r.objects,
            f"{r.pool.ref} allocated {r.ip} to {r.pod_ref}, outside its ips (or in excludeIPs)",
            "delete the pod so that the address is released",
        )


def leak(ix: Index, r: Record) -> Iterator[Finding]:
    if r.live:
        return
    pod = r.pod
    why = (
        "is gone"
        if pod is None
        else "was recreated with another UID"
        if pod["metadata"].get("uid") != r.uid
        else f"has ended ({pod['status']['phase']})"
    )
    yield Finding(
        Problem.LEAK,
        r.ip,
        r.objects,
        f"{r.pool.ref} holds {r.ip} for pod {r.pod_ref} (uid {r.uid}), which {why}",
        f"remove {r.ip} from {r.pool.ref}'s allocatedIPs (Spiderpool's GC should; "
        "restart spiderpool-controller to trigger it)",
    )


def not_in_network_status(ix: Index, r: Record) -> Iterator[Finding]:
    if not r.live:
        return
    assert r.pod is not None
    seen = [i for entry in network_status(r.pod) for i in entry.get("ips", []) if _bare(i) == r.ip]
    if len(seen) != 1:
        yield Finding(
            Problem.NOT_IN_NETWORK_STATUS,
            r.ip,
            r.objects,
            f"{r.ip} appears {len(seen)} times in {r.pod_ref}'s network-status",
            "recreate the pod",
        )


def endpoint_disagrees(ix: Index, r: Record) -> Iterator[Finding]:
    if not r.live:
        return
    endpoint = ix.endpoints.get(r.pod_ref)
    eref = f"SpiderEndpoint/{r.pod_ref}"
    current = (endpoint or {}).get("status", {}).get("current", {}) or {}
    if endpoint is None:
        problem = Problem.ENDPOINT_MISSING
        message = f"{r.pool.ref} holds {r.ip} for {r.pod_ref} but it has no SpiderEndpoint"
        fix = "recreate the pod so that Spiderpool records it"
    elif current.get("uid") != r.uid or not any(
        _bare(e.get("ipv4", "")) == r.ip and e.get("ipv4Pool") == r.pool.name for e in current.get("ips", [])
    ):
        problem = Problem.ENDPOINT_MISMATCH
        message = f"{eref} does not record {r.ip} from {r.pool.name} for uid {r.uid}"
        fix = "recreate the pod"
    else:
        return
    yield Finding(problem, r.ip, (*r.objects, eref), message, fix)


def _held_by_several(who: list[str]) -> bool:
    return len({w.split(":", 1)[1] for w in who}) > 1


def duplicate_records(ix: Index) -> Iterator[Finding]:
    for ip, who in sorted(ix.holders.items()):
        if _held_by_several(who):
            yield Finding(
                Problem.DUPLICATE,
                ip,
                tuple(f"Pod/{w.split(':', 1)[1]}" for w in who),
                f"{ip} is held by {len(who)} pods: {', '.join(who)}",
                "delete all but one of these pods; check the pools for overlapping ranges",
            )


def duplicate_running(ix: Index) -> Iterator[Finding]:
    """An address of an audited pool configured in several running pods (not already a duplicate record)."""
    by_ip_pod: dict[str, set[str]] = defaultdict(set)
    for ref, pod in ix.pods.items():
        if pod.get("status", {}).get("phase") == "Running":
            for entry in network_status(pod):
                for ip in entry.get("ips", []):
                    by_ip_pod[_bare(ip)].add(ref)
    for ip, refs in sorted(by_ip_pod.items()):
        if len(refs) > 1 and ip in ix.holders and not _held_by_several(ix.holders[ip]):
            yield Finding(
                Problem.DUPLICATE,
                ip,
                tuple(f"Pod/{r}" for r in sorted(refs)),
                f"{ip} is configured in {len(refs)} running pods: {', '.join(sorted(refs))}",
                "delete all but one of these pods",
            )


def orphan_endpoints(ix: Index) -> Iterator[Finding]:
    audited = {p.name for p in ix.pools} | set(ix.unreadable)
    for ref, endpoint in sorted(ix.endpoints.items()):
        for entry in (endpoint.get("status", {}).get("current", {}) or {}).get("ips", []):
            ip, pool = _bare(entry.get("ipv4", "")), entry.get("ipv4Pool", "")
            if pool in audited and f"{pool}:{ref}" not in ix.holders.get(ip, []):
                yield Finding(
                    Problem.ORPHAN_ENDPOINT,
                    ip,
                    (f"SpiderEndpoint/{ref}", f"SpiderIPPool/{pool}"),
                    f"SpiderEndpoint/{ref} records {ip} from {pool}, which has no such allocation",
                    f"delete SpiderEndpoint {ref} if its pod is gone, else recreate the pod",
                )


POOL_RULES: list[Callable[[Index, PoolRecords], Iterable[Finding]]] = [count_mismatch, over_capacity]
RECORD_RULES: list[Callable[[Index, Record], Iterable[Finding]]] = [
    out_of_range,
    leak,
    not_in_network_status,
    endpoint_disagrees,
]
CLUSTER_RULES: list[Callable[[Index], Iterable[Finding]]] = [
    unreadable_pools,
    duplicate_records,
    duplicate_running,
    orphan_endpoints,
]


def audit(snapshot: Snapshot, only_pools: set[str] | None = None) -> list[Finding]:
    """Every inconsistency, each with the objects involved and a suggested fix; Unreadable when it cannot audit."""
    _check(snapshot)
    _in_scope(snapshot, only_pools)
    ix = index(snapshot, only_pools)
    findings: list[Finding] = []
    for pool in ix.pools:
        for pool_rule in POOL_RULES:
            findings += pool_rule(ix, pool)
        for record in ix.records(pool):
            for record_rule in RECORD_RULES:
                findings += record_rule(ix, record)
    for rule in CLUSTER_RULES:
        findings += rule(ix)
    return findings


def finding_action(f: Any, status: Status = Status.FAIL) -> ActionResult:
    """A finding (this module's, or the cloud side's: `problem`, `ip`, `objects`, `message`, `fix`) as an action of
    the run's result model, so that the same table, JSON, JUnit and HTML report every audit's findings."""
    return ActionResult(
        f.problem,
        f.message,
        "api",
        ", ".join(f.objects),
        f.ip or "-",
        "success",
        status,
        f"{f.message}. Fix: {f.fix}",
        1,
        0.0,
        {"problem": f.problem, "fix": f.fix, "objects": list(f.objects)},
    )


def passed_action(name: str, subject: str, detail: str) -> ActionResult:
    """The one passing action of an audit without findings, saying what it covered."""
    return ActionResult(name, subject, "api", "audit", subject, "success", Status.PASS, detail, 1, 0.0)


def as_test_result(findings: list[Finding], snapshot: Snapshot, only_pools: set[str] | None = None) -> TestResult:
    """Findings in the run's result model, so the same table, JSON and JUnit report them."""
    result = TestResult("audit", "ipam-consistency", "pools, endpoints and pods agree (Spiderpool's e2e rule)")
    result.actions += [finding_action(f) for f in findings]
    pools = [p for p in snapshot.pools if only_pools is None or p["metadata"]["name"] in only_pools]
    if not findings:
        detail = f"{len(pools)} pools, {len(snapshot.endpoints)} endpoints, {len(snapshot.pods)} pods consistent"
        result.actions.append(passed_action("consistency", f"{len(pools)} pools", detail))
    result.finish()
    return result


def snapshot(cluster: Any, nodes: bool = False) -> Snapshot:
    """The same three lists, read live through the cluster interface; and the nodes, for the cloud side."""
    return Snapshot(
        cluster.list("SpiderIPPool"),
        cluster.list("SpiderEndpoint"),
        cluster.list("Pod"),
        cluster.list("Node") if nodes else [],
    )

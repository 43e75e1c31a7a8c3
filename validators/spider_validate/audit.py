"""IPAM consistency of SpiderIPPools, SpiderEndpoints and Pods, live or from `kubectl get -o json` dumps.

The rule Spiderpool's own e2e suite enforces after every test: for each record in a pool's allocatedIPs the
pod exists with the same UID, the IP appears exactly once in its network-status, and its SpiderEndpoint
agrees; allocatedIPCount == len(allocatedIPs) <= totalIPCount; and every address is inside the pool.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spider_validate import addresses
from spider_validate.context import network_status
from spider_validate.model import ActionResult, Status, TestResult

TERMINAL = {"Succeeded", "Failed"}


@dataclass(frozen=True)
class Finding:
    problem: str  # leak | duplicate | not-in-network-status | endpoint-missing | endpoint-mismatch |
    #               orphan-endpoint | count-mismatch | over-capacity | out-of-range | unreadable
    ip: str
    objects: tuple[str, ...]
    message: str
    fix: str


@dataclass
class Snapshot:
    pools: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]
    pods: list[dict[str, Any]]


class Unreadable(ValueError):
    """The input cannot be audited: not kubectl's shape, an object (named) malformed, or nothing to audit."""


DUMP_HINT = "kubectl get spiderippools,spiderendpoints,pods -A -o json"


def load_dump(path: Path) -> Snapshot:
    """Read `kubectl get spiderippools,spiderendpoints,pods -A -o json` (a List), one object, or a JSON array."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
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
    unknown = set(by_kind) - {"SpiderIPPool", "SpiderEndpoint", "Pod"}
    if unknown:
        raise Unreadable(f"unexpected kinds {sorted(unknown)}: dump spiderippools,spiderendpoints,pods only")
    return Snapshot(by_kind["SpiderIPPool"], by_kind["SpiderEndpoint"], by_kind["Pod"])


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


def audit(snapshot: Snapshot, only_pools: set[str] | None = None) -> list[Finding]:
    """Every inconsistency, each with the objects involved and a suggested fix; Unreadable when it cannot audit."""
    _check(snapshot)
    _in_scope(snapshot, only_pools)
    findings: list[Finding] = []
    pods = {_ref(p): p for p in snapshot.pods}
    endpoints = {_ref(e): e for e in snapshot.endpoints}
    holders: dict[str, list[str]] = defaultdict(list)  # ip -> "pool:ns/pod" records
    for pool in snapshot.pools:
        name = pool["metadata"]["name"]
        if only_pools is not None and name not in only_pools:
            continue
        pref = f"SpiderIPPool/{name}"
        status = pool.get("status", {}) or {}
        try:
            records: dict[str, Any] = json.loads(status.get("allocatedIPs") or "{}")
            if not isinstance(records, dict) or not all(isinstance(r, dict) for r in records.values()):
                raise ValueError("not an object of records")
            for ip in records:
                addresses.bounds(ip)
        except ValueError:  # json.JSONDecodeError included
            findings.append(
                Finding(
                    "unreadable",
                    "",
                    (pref,),
                    f"{pref} has an allocatedIPs that is not a JSON object of address records",
                    "inspect the pool; restart spiderpool-controller to rebuild its status",
                )
            )
            continue
        count = status.get("allocatedIPCount", 0) or 0
        if count != len(records):
            findings.append(
                Finding(
                    "count-mismatch",
                    "",
                    (pref,),
                    f"{pref} says allocatedIPCount {count} but holds {len(records)} records",
                    "restart spiderpool-controller to recount (the records are the truth)",
                )
            )
        total = status.get("totalIPCount")
        if total is not None and len(records) > total:
            findings.append(
                Finding(
                    "over-capacity",
                    "",
                    (pref,),
                    f"{pref} holds {len(records)} records but only {total} addresses",
                    "remove the records of pods that no longer exist, then shrink no pool in use",
                )
            )
        spec = pool.get("spec", {})
        for ip, record in sorted(records.items()):
            pod_ref, uid = record.get("pod", ""), record.get("podUid", "")
            holders[ip].append(f"{name}:{pod_ref}")
            objs = (pref, f"Pod/{pod_ref}")
            if not addresses.contains(spec.get("ips", []), ip) or addresses.contains(spec.get("excludeIPs") or [], ip):
                findings.append(
                    Finding(
                        "out-of-range",
                        ip,
                        objs,
                        f"{pref} allocated {ip} to {pod_ref}, outside its ips (or in excludeIPs)",
                        "delete the pod so that the address is released",
                    )
                )
            pod = pods.get(pod_ref)
            if pod is None or pod["metadata"].get("uid") != uid or pod.get("status", {}).get("phase") in TERMINAL:
                why = (
                    "is gone"
                    if pod is None
                    else "was recreated with another UID"
                    if pod["metadata"].get("uid") != uid
                    else f"has ended ({pod['status']['phase']})"
                )
                findings.append(
                    Finding(
                        "leak",
                        ip,
                        objs,
                        f"{pref} holds {ip} for pod {pod_ref} (uid {uid}), which {why}",
                        f"remove {ip} from {pref}'s allocatedIPs (Spiderpool's GC should; "
                        "restart spiderpool-controller to trigger it)",
                    )
                )
                continue
            seen = [i for entry in network_status(pod) for i in entry.get("ips", []) if _bare(i) == ip]
            if len(seen) != 1:
                findings.append(
                    Finding(
                        "not-in-network-status",
                        ip,
                        objs,
                        f"{ip} appears {len(seen)} times in {pod_ref}'s network-status",
                        "recreate the pod",
                    )
                )
            endpoint = endpoints.get(pod_ref)
            eref = f"SpiderEndpoint/{pod_ref}"
            current = (endpoint or {}).get("status", {}).get("current", {}) or {}
            if endpoint is None:
                findings.append(
                    Finding(
                        "endpoint-missing",
                        ip,
                        (*objs, eref),
                        f"{pref} holds {ip} for {pod_ref} but it has no SpiderEndpoint",
                        "recreate the pod so that Spiderpool records it",
                    )
                )
            elif current.get("uid") != uid or not any(
                _bare(e.get("ipv4", "")) == ip and e.get("ipv4Pool") == name for e in current.get("ips", [])
            ):
                findings.append(
                    Finding(
                        "endpoint-mismatch",
                        ip,
                        (*objs, eref),
                        f"{eref} does not record {ip} from {name} for uid {uid}",
                        "recreate the pod",
                    )
                )
    for ip, who in sorted(holders.items()):
        if len({w.split(":", 1)[1] for w in who}) > 1:
            findings.append(
                Finding(
                    "duplicate",
                    ip,
                    tuple(f"Pod/{w.split(':', 1)[1]}" for w in who),
                    f"{ip} is held by {len(who)} pods: {', '.join(who)}",
                    "delete all but one of these pods; check the pools for overlapping ranges",
                )
            )
    by_ip_pod: dict[str, set[str]] = defaultdict(set)
    for ref, pod in pods.items():
        if pod.get("status", {}).get("phase") == "Running":
            for entry in network_status(pod):
                for ip in entry.get("ips", []):
                    by_ip_pod[_bare(ip)].add(ref)
    for ip, refs in sorted(by_ip_pod.items()):
        if len(refs) > 1 and ip in holders and not any(f.problem == "duplicate" and f.ip == ip for f in findings):
            findings.append(
                Finding(
                    "duplicate",
                    ip,
                    tuple(f"Pod/{r}" for r in sorted(refs)),
                    f"{ip} is configured in {len(refs)} running pods: {', '.join(sorted(refs))}",
                    "delete all but one of these pods",
                )
            )
    audited = {
        p["metadata"]["name"] for p in snapshot.pools if only_pools is None or p["metadata"]["name"] in only_pools
    }
    for ref, endpoint in sorted(endpoints.items()):
        for entry in (endpoint.get("status", {}).get("current", {}) or {}).get("ips", []):
            ip, pool = _bare(entry.get("ipv4", "")), entry.get("ipv4Pool", "")
            if pool in audited and f"{pool}:{ref}" not in holders.get(ip, []):
                findings.append(
                    Finding(
                        "orphan-endpoint",
                        ip,
                        (f"SpiderEndpoint/{ref}", f"SpiderIPPool/{pool}"),
                        f"SpiderEndpoint/{ref} records {ip} from {pool}, which has no such allocation",
                        f"delete SpiderEndpoint {ref} if its pod is gone, else recreate the pod",
                    )
                )
    return findings


def as_test_result(findings: list[Finding], snapshot: Snapshot, only_pools: set[str] | None = None) -> TestResult:
    """Findings in the run's result model, so the same table, JSON and JUnit report them."""
    result = TestResult("audit", "ipam-consistency", "pools, endpoints and pods agree (Spiderpool's e2e rule)")
    for f in findings:
        result.actions.append(
            ActionResult(
                f.problem,
                f.message,
                "api",
                ", ".join(f.objects),
                f.ip or "-",
                "success",
                Status.FAIL,
                f"{f.message}. Fix: {f.fix}",
                1,
                0.0,
                {"problem": f.problem, "fix": f.fix, "objects": list(f.objects)},
            )
        )
    pools = [p for p in snapshot.pools if only_pools is None or p["metadata"]["name"] in only_pools]
    if not findings:
        result.actions.append(
            ActionResult(
                "consistency",
                f"{len(pools)} pools",
                "api",
                "audit",
                "pools",
                "success",
                Status.PASS,
                f"{len(pools)} pools, {len(snapshot.endpoints)} endpoints, {len(snapshot.pods)} pods consistent",
                1,
                0.0,
            )
        )
    result.finish()
    return result


def snapshot(cluster: Any) -> Snapshot:
    """The same three lists, read live through the cluster interface."""
    return Snapshot(cluster.list("SpiderIPPool"), cluster.list("SpiderEndpoint"), cluster.list("Pod"))

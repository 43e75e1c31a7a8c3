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


def load_dump(path: Path) -> Snapshot:
    """Read `kubectl get spiderippools,spiderendpoints,pods -A -o json` (a List) or a JSON array of objects."""
    data = json.loads(path.read_text())
    items = data.get("items", []) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("expected a List of objects (kubectl get ... -o json)")
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_kind[item.get("kind", "")].append(item)
    unknown = set(by_kind) - {"SpiderIPPool", "SpiderEndpoint", "Pod"}
    if unknown:
        raise ValueError(f"unexpected kinds {sorted(unknown)}: dump spiderippools,spiderendpoints,pods only")
    return Snapshot(by_kind["SpiderIPPool"], by_kind["SpiderEndpoint"], by_kind["Pod"])


def _ref(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def _bare(ip: str) -> str:
    return ip.split("/")[0]


def audit(snapshot: Snapshot, only_pools: set[str] | None = None) -> list[Finding]:
    """Every inconsistency, each with the objects involved and a suggested fix."""
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
        except json.JSONDecodeError:
            findings.append(
                Finding(
                    "unreadable",
                    "",
                    (pref,),
                    f"{pref} has an allocatedIPs that is not JSON",
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
        valid = set(addresses.expand(spec.get("ips", []))) - set(addresses.expand(spec.get("excludeIPs", [])))
        for ip, record in sorted(records.items()):
            pod_ref, uid = record.get("pod", ""), record.get("podUid", "")
            holders[ip].append(f"{name}:{pod_ref}")
            objs = (pref, f"Pod/{pod_ref}")
            if ip not in valid:
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

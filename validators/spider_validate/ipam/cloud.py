"""Spiderpool's pools and addresses held against what EC2 routes: pure functions over the audit's index and the
cloud inventory, one per rule.

On AWS a pod's address reaches its node only if EC2 assigned it to an interface of that node's instance; this
project gives pools the /28 prefixes delegated to the nodes' interfaces (`cdk/ipplan.py`). The rules partition the
ways that breaks, so that one fault is reported by one rule: each address of a pool pinned to node N is either in a
prefix of N's interfaces (fine), held by some interface (`cloud-conflict`: a private IP of any interface, or a
prefix of another node's), or held by none (`prefix-missing`: the prefix was detached, or the pool edited beyond
it). A running pod's address from a pool not pinned to its node must be in a prefix of its node's interfaces
(`pod-not-routed`). Prefixes no pool uses and reservations holding no interface's address are waste: warnings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from spider_validate.cloud.ec2 import CloudError, Ec2, Interface
from spider_validate.cloud.inventory import Inventory, gather, node_ref
from spider_validate.cluster import addresses
from spider_validate.engine.model import Status, TestResult
from spider_validate.ipam.audit import Index, Record, Snapshot, finding_action, index, passed_action

Span = tuple[int, int]  # first and last address, as integers


class CloudRule(StrEnum):
    PREFIX_MISSING = "prefix-missing"
    CLOUD_CONFLICT = "cloud-conflict"
    POD_NOT_ROUTED = "pod-not-routed"
    UNUSED_PREFIX = "unused-prefix"
    UNUSED_RESERVATION = "unused-reservation"


WARNINGS = {CloudRule.UNUSED_PREFIX, CloudRule.UNUSED_RESERVATION}


@dataclass(frozen=True)
class CloudFinding:
    problem: CloudRule
    ip: str  # the addresses concerned ("a-b" ranges joined by ", "), or "" for a whole pool or reservation
    objects: tuple[str, ...]
    message: str
    fix: str

    @property
    def warning(self) -> bool:
        """Waste, not breakage: reported, but it does not fail the audit."""
        return self.problem in WARNINGS


@dataclass(frozen=True)
class Pool:
    """What the rules read of a SpiderIPPool: its name, the nodes it is pinned to, its usable addresses."""

    name: str
    nodes: tuple[str, ...]
    spans: tuple[Span, ...]

    @property
    def ref(self) -> str:
        return f"SpiderIPPool/{self.name}"


@dataclass(frozen=True)
class Allocation:
    """A running pod's address: its pool, pod reference and the node it runs on."""

    ip: str
    pool: str
    pod: str
    node: str


def _subtract(spans: Iterable[Span], holes: Iterable[Span]) -> list[Span]:
    out = sorted(spans)
    for lo, hi in sorted(holes):
        out = [piece for a, b in out for piece in ((a, min(b, lo - 1)), (max(a, hi + 1), b)) if piece[0] <= piece[1]]
    return out


def _intersect(spans: Iterable[Span], other: Span) -> list[Span]:
    return [(max(a, other[0]), min(b, other[1])) for a, b in spans if max(a, other[0]) <= min(b, other[1])]


def pool(obj: dict[str, Any]) -> Pool:
    """A SpiderIPPool object (already checked by the audit's `_check`) as the rules see it: IPv4 `ips` minus
    `excludeIPs`."""
    spec = obj.get("spec") or {}
    ips = [addresses.bounds(e) for e in spec.get("ips") or [] if ipaddress.ip_address(e.split("-")[0]).version == 4]
    excluded = [addresses.bounds(e) for e in spec.get("excludeIPs") or []]
    return Pool(obj["metadata"]["name"], tuple(spec.get("nodeName") or ()), tuple(_subtract(ips, excluded)))


def _cidr_span(cidr: str) -> Span:
    net = ipaddress.IPv4Network(cidr)
    return int(net.network_address), int(net.broadcast_address)


def _point(ip: str) -> Span:
    return int(ipaddress.IPv4Address(ip)), int(ipaddress.IPv4Address(ip))


def _show(spans: Iterable[Span]) -> str:
    text = [
        str(ipaddress.IPv4Address(a)) + ("" if a == b else f"-{ipaddress.IPv4Address(b)}") for a, b in sorted(spans)
    ]
    return ", ".join(text)


def _prefixes_of(spans: Iterable[Span]) -> list[str]:
    """The /28 prefixes (EC2's only IPv4 prefix size) that would hold these addresses."""
    blocks = sorted({i & ~0xF for a, b in spans for i in range(a & ~0xF, b + 1, 16)})
    return [f"{ipaddress.IPv4Address(b)}/28" for b in blocks]


def _who(inv: Inventory, eni: Interface) -> str:
    node = inv.node_of(eni)
    return f"{eni.id} (node {node})" if node else f"{eni.id} (instance {eni.instance or 'none'})"


def _prefix_spans(enis: Iterable[Interface]) -> list[Span]:
    return [_cidr_span(p) for eni in enis for p in eni.prefixes]


def _held(enis: Iterable[Interface]) -> list[Span]:
    """Every address EC2 assigned to these interfaces: their prefixes and private IPs."""
    enis = list(enis)
    return _prefix_spans(enis) + [_point(ip) for e in enis for ip in e.private_ips]


@dataclass
class View:
    """What every rule reads, built once: the audited pools, the spans of every pool (audited or not: a prefix
    another pool uses is not waste), the running pods' addresses, the inventory."""

    pools: list[Pool]
    used: list[Span]
    allocations: list[Allocation]
    inv: Inventory

    def node_enis(self, nodes: Iterable[str]) -> list[Interface]:
        return [eni for n in nodes for eni in self.inv.of_node(n)]


# -- the rules --------------------------------------------------------------------------------------------------


def prefix_missing(v: View) -> Iterator[CloudFinding]:
    """A pool pinned to a node whose addresses no interface holds: EC2 routes them nowhere."""
    held = _held(v.inv.interfaces)
    for p in v.pools:
        for node in p.nodes:
            lost = _subtract(p.spans, held)
            if not lost or node not in v.inv.instances:  # a node not in the cluster: no pod gets its addresses
                continue
            enis = v.inv.of_node(node)
            owned = ", ".join(f"{e.id} {' '.join(e.prefixes) or '(no prefix)'}" for e in enis)
            primary = enis[0].id if enis else "ENI"
            needed = " ".join(_prefixes_of(lost))
            yield CloudFinding(
                CloudRule.PREFIX_MISSING,
                _show(lost),
                (p.ref, f"Node/{node}"),
                f"{p.ref} is pinned to node {node}, but EC2 assigns {_show(lost)} to no interface: no prefix of "
                f"{node}'s interfaces ({owned}) holds them, so their pods are unreachable",
                f"if the prefix was detached, assign it again: `aws ec2 assign-private-ip-addresses "
                f"--network-interface-id {primary} --ipv4-prefixes {needed}` (or `cdktn deploy`, which restores the "
                f"stack's prefixes); if the pool was edited, give it back its prefix's range (`helm upgrade` "
                "re-applies the chart's pools)",
            )


def cloud_conflict(v: View) -> Iterator[CloudFinding]:
    """A pool address EC2 gives to an interface as a private IP, or (for a pinned pool) in a prefix of an interface
    of another node: Spiderpool would hand out an address EC2 delivers elsewhere."""
    for p in v.pools:
        own = {e.id for e in v.node_enis(p.nodes)}
        for eni in v.inv.interfaces:
            ips = [s for ip in eni.private_ips for s in _intersect(p.spans, _point(ip))]
            if ips:
                yield CloudFinding(
                    CloudRule.CLOUD_CONFLICT,
                    _show(ips),
                    (p.ref, f"NetworkInterface/{eni.id}"),
                    f"{_show(ips)} of {p.ref} is also a private IP of {_who(v.inv, eni)}: EC2 delivers it to that "
                    "interface's host, not to a pod",
                    f"exclude it from the pool (spec.excludeIPs), or unassign it: `aws ec2 "
                    f"unassign-private-ip-addresses --network-interface-id {eni.id} --private-ip-addresses "
                    f"{' '.join(ipaddress.IPv4Address(a).compressed for a, _ in ips)}`",
                )
            foreign = [] if not p.nodes or eni.id in own else _prefix_spans([eni])
            overlap = [s for span in foreign for s in _intersect(p.spans, span)]
            if overlap:
                yield CloudFinding(
                    CloudRule.CLOUD_CONFLICT,
                    _show(overlap),
                    (p.ref, f"NetworkInterface/{eni.id}"),
                    f"{_show(overlap)} of {p.ref} (pinned to {', '.join(p.nodes)}) lies in a prefix of "
                    f"{_who(v.inv, eni)}: EC2 routes it to that interface",
                    "give the pool back its own node's prefix range (`helm upgrade` re-applies the chart's pools)",
                )


def pod_not_routed(v: View) -> Iterator[CloudFinding]:
    """A running pod whose address (from a pool not pinned to its node) EC2 does not route to its node. Pools
    pinned to the pod's node are the pool rules' (prefix-missing, cloud-conflict) concern."""
    pinned = {p.name: p.nodes for p in v.pools}
    for a in v.allocations:
        if a.node in pinned.get(a.pool, ()) or a.node not in v.inv.instances:
            continue
        point = _point(a.ip)
        if any(_intersect([point], _point(ip)) for e in v.inv.interfaces for ip in e.private_ips):
            continue  # a private IP of an interface: cloud-conflict's
        if any(_intersect([point], s) for s in _prefix_spans(v.inv.of_node(a.node))):
            continue
        holder = next((e for e in v.inv.interfaces if any(_intersect([point], s) for s in _prefix_spans([e]))), None)
        where = f"to {_who(v.inv, holder)}" if holder else "to no interface"
        yield CloudFinding(
            CloudRule.POD_NOT_ROUTED,
            a.ip,
            (f"SpiderIPPool/{a.pool}", f"Pod/{a.pod}", f"Node/{a.node}"),
            f"pod {a.pod} runs on node {a.node} with {a.ip} (SpiderIPPool/{a.pool}), but EC2 routes {a.ip} "
            f"{where}, not to {a.node}: traffic to the pod is dropped",
            f"pin SpiderIPPool/{a.pool} to the node whose prefix holds it (spec.nodeName), then delete the pod so "
            f"that it gets an address of {a.node}'s pool",
        )


def unused_prefix(v: View) -> Iterator[CloudFinding]:
    """A prefix attached to a node that no pool's range touches: addresses EC2 keeps for pods that never come."""
    for node in sorted(v.inv.instances):
        for eni in v.inv.of_node(node):
            for prefix in eni.prefixes:
                if not _intersect(v.used, _cidr_span(prefix)):
                    yield CloudFinding(
                        CloudRule.UNUSED_PREFIX,
                        prefix,
                        (f"Node/{node}", f"NetworkInterface/{eni.id}"),
                        f"prefix {prefix} of {eni.id} (node {node}) is in no pool",
                        f"add a pool for it, or unassign it: `aws ec2 unassign-private-ip-addresses "
                        f"--network-interface-id {eni.id} --ipv4-prefixes {prefix}`",
                    )


def unused_reservation(v: View) -> Iterator[CloudFinding]:
    """A subnet CIDR reservation no interface's prefix or address lies in."""
    held = _held(v.inv.interfaces)
    for r in v.inv.reservations:
        if not any(_intersect([span], _cidr_span(r.cidr)) for span in held):
            yield CloudFinding(
                CloudRule.UNUSED_RESERVATION,
                r.cidr,
                (f"SubnetCidrReservation/{r.id}",),
                f"{r.type} reservation {r.id} ({r.cidr} of {r.subnet}) holds no interface's prefix or address",
                f"delete it if nothing will use it: `aws ec2 delete-subnet-cidr-reservation "
                f"--subnet-cidr-reservation-id {r.id}`",
            )


RULES: list[Callable[[View], Iterable[CloudFinding]]] = [
    prefix_missing,
    cloud_conflict,
    pod_not_routed,
    unused_prefix,
    unused_reservation,
]


def _running_on(r: Record) -> str | None:
    """The node of the record's pod when it is that pod (same UID) and runs."""
    pod = r.pod if r.live else None
    if pod is None or pod.get("status", {}).get("phase") != "Running":
        return None
    return (pod.get("spec") or {}).get("nodeName") or None


def view(ix: Index, all_pools: list[dict[str, Any]], inv: Inventory) -> View:
    """The rules' view of the audit's index (`audit.Index`: the audited pools and their records) and the inventory.
    Allocations are the IPv4 records of pods that run (the records of gone pods are the audit's leaks)."""
    allocations = [
        Allocation(r.ip, r.pool.name, r.pod_ref, node)
        for p in ix.pools
        for r in ix.records(p)
        if (node := _running_on(r)) and ipaddress.ip_address(r.ip).version == 4
    ]
    used = [s for obj in all_pools for s in pool(obj).spans]
    return View([pool(p.pool) for p in ix.pools], used, allocations, inv)


def reconcile(v: View) -> list[CloudFinding]:
    """Every finding of every rule, failures and warnings, in rule order."""
    return [f for rule in RULES for f in rule(v)]


def check(ec2: Ec2, snap: Snapshot, only_pools: set[str] | None = None) -> tuple[list[CloudFinding], Inventory]:
    """The cloud side of an audit whose Kubernetes side (`audit.audit`) has read `snap`: the nodes' instances and
    interfaces from EC2, then the rules; CloudError when EC2 cannot be read or a node cannot be found in it."""
    if not snap.nodes:
        raise CloudError(
            "no Node to map to EC2 instances: the cloud side needs the nodes (dump them too: "
            "`kubectl get spiderippools,spiderendpoints,pods,nodes -A -o json`)"
        )
    inv = gather(ec2, [node_ref(n) for n in snap.nodes])
    return reconcile(view(index(snap, only_pools), snap.pools, inv)), inv


def as_test_result(findings: list[CloudFinding], inv: Inventory) -> TestResult:
    """The cloud side's findings in the run's result model: failures fail the test, warnings only warn."""
    result = TestResult(
        "audit", "ipam-cloud", f"pools and pods' addresses are the ones EC2 routes to their nodes ({inv.where})"
    )
    result.actions += [finding_action(f, Status.WARN if f.warning else Status.FAIL) for f in findings]
    if not any(not f.warning for f in findings):
        detail = (
            f"{len(inv.instances)} nodes' instances, {len(inv.interfaces)} interfaces, {len(inv.reservations)} "
            f"reservations: every pool inside its node's prefixes ({inv.calls} EC2 calls)"
        )
        result.actions.append(passed_action("cloud", f"{len(inv.instances)} nodes", detail))
    result.finish()
    return result

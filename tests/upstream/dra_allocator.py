"""The scheduler's structured-parameters allocator for Dynamic Resource Allocation, from kubernetes/dynamic-resource-
allocation at 3d03671 (staging/src/k8s.io/dynamic-resource-allocation in kubernetes; resource.k8s.io/v1):

- structured/internal/stable/pools_stable.go, GatherPools (lines 53-130): the pools of the slices that target the
  node (`nodeName`, `allNodes` or `nodeSelector`); per pool the slices of the newest generation; a pool missing
  slices of that generation is incomplete, one with a device name twice invalid (validateDeviceNames).
- structured/internal/stable/allocator_stable.go, Allocate (lines 110-430): every request checked first
  (validateDeviceRequest, lines 438-516: a selector without CEL, no class name, an unknown class, the count modes
  ExactCount and All, an All request on an incomplete or invalid pool), at most AllocationResultsMaxSize devices per
  claim, `matchAttribute` constraints (lines 688-790); then allocateOne (lines 796-1027), an exhaustive search
  with backtracking that takes the first solution: for each device of each complete, valid pool, not in use, whose
  class and request selectors match (isSelectable and selectorsMatch, lines 1029-1125: a CEL compile or runtime
  error is the allocation's error, naming the class or the claim), within the constraints; no solution is no
  result and no error, unless an invalid pool was seen; the node selector of the result (createNodeSelector).
- cel/compile.go, DeviceMatches (lines 326-378): `device.driver`, `device.attributes[domain][id]` (an attribute
  without a domain is the driver's; a domain without attributes is an empty map), `device.capacity`; a result that
  is not a bool is an error.

The CEL expressions are evaluated by cel-python (celpy), a CEL implementation, not by matching strings. Where it
differs from cel-go under Kubernetes' declarations: an undeclared identifier is a compile error in Kubernetes (its
environment declares `device` only) and a runtime error in celpy, reported here as the compile error it is;
Kubernetes' extension functions (quantity, semver) are not modelled. Not modelled either, with the features that
gate them off as in the stable allocator: prioritized lists (`firstAvailable`, refused as with DRAPrioritizedList
off), admin access (refused as with DRAAdminAccess off), device taints, partitionable devices and binding
conditions; the validator's claims use none of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

import celpy

from tests.upstream.scheduling import Node, selector_matches

#: k8s.io/api/resource/v1 types.go, AllocationResultsMaxSize.
ALLOCATION_RESULTS_MAX_SIZE = 32

Obj = dict[str, Any]
DeviceId = tuple[str, str, str]  # driver, pool, device


class AllocationError(Exception):
    """What Allocate returns as its error: the scheduler reports it for the node and the pod stays pending."""


@dataclass
class Pool:
    driver: str
    name: str
    slices: list[Obj] = field(default_factory=list)
    incomplete: bool = False
    invalid: bool = False

    @property
    def id(self) -> str:
        return f"{self.driver}/{self.name}"


def _targets(slice_: Obj, node: Node) -> bool:
    """NodeMatches (pools_stable.go lines 37-50) on the slice's node selection."""
    spec = slice_["spec"]
    if spec.get("nodeName"):
        return bool(spec["nodeName"] == node.name)
    if spec.get("allNodes"):
        return True
    if spec.get("nodeSelector"):
        return selector_matches(spec["nodeSelector"], node)
    return False  # per-device node selection or counter sets: partitionable devices, off


def gather_pools(slices: list[Obj], node: Node) -> list[Pool]:
    pools: dict[tuple[str, str], list[Obj]] = {}
    for s in slices:
        if s["spec"].get("perDeviceNodeSelection") or s["spec"].get("sharedCounters") or not _targets(s, node):
            continue
        key = (s["spec"]["driver"], s["spec"]["pool"]["name"])
        have = pools.setdefault(key, [])
        generation = s["spec"]["pool"]["generation"]
        if have and generation < have[0]["spec"]["pool"]["generation"]:
            continue
        if have and generation > have[0]["spec"]["pool"]["generation"]:
            have.clear()
        have.append(s)
    result = []
    for (driver, name), have in sorted(pools.items()):
        pool = Pool(driver, name)
        generation, count = have[0]["spec"]["pool"]["generation"], have[0]["spec"]["pool"]["resourceSliceCount"]
        if len(have) != count:
            # checkSlicesInPool: obsolete when a newer generation exists (in slices for other nodes too), else
            # complete only if every slice of that generation exists.
            same = [s for s in slices if (s["spec"]["driver"], s["spec"]["pool"]["name"]) == (driver, name)]
            if any(s["spec"]["pool"]["generation"] > generation for s in same):
                continue
            if len([s for s in same if s["spec"]["pool"]["generation"] == generation]) != count:
                result.append(Pool(driver, name, incomplete=True))
                continue
        names = [d["name"] for s in have for d in s["spec"].get("devices", [])]
        pool.invalid = len(names) != len(set(names))
        pool.slices = [] if pool.invalid else have
        result.append(pool)
    return result


# -- CEL -----------------------------------------------------------------------------------------------------------

_ENV = celpy.Environment()
_VALUE_KEYS = ("bool", "int", "string", "version")  # a DeviceAttribute holds exactly one


@cache
def _program(expression: str) -> Any:
    return _ENV.program(_ENV.compile(expression))


def _qualified(name: str, driver: str) -> tuple[str, str]:
    """parseQualifiedName: `domain/id`, or the driver's domain for a bare id."""
    domain, _, ident = name.rpartition("/")
    return (domain or driver), ident


def device_matches(expression: str, driver: str, device: Obj) -> bool:
    """DeviceMatches: raises ValueError("compile: ...") or ValueError("runtime: ...") as cel-go would fail."""
    try:
        program = _program(expression)
    except celpy.CELParseError as exc:
        raise ValueError(f"compile: {exc}") from exc
    attributes: dict[str, dict[str, Any]] = {}
    for name, attribute in (device.get("attributes") or {}).items():
        domain, ident = _qualified(name, driver)
        (value,) = [attribute[k] for k in _VALUE_KEYS if k in attribute]
        attributes.setdefault(domain, {})[ident] = value
    capacity: dict[str, dict[str, Any]] = {}
    for name, cap in (device.get("capacity") or {}).items():
        domain, ident = _qualified(name, driver)
        capacity.setdefault(domain, {})[ident] = cap["value"]
    device_value = celpy.celtypes.MapType(
        {
            celpy.celtypes.StringType("driver"): celpy.celtypes.StringType(driver),
            celpy.celtypes.StringType("allowMultipleAllocations"): celpy.celtypes.BoolType(
                bool(device.get("allowMultipleAllocations"))
            ),
            celpy.celtypes.StringType("attributes"): _DefaultMap(
                cast(Mapping[Any, Any], celpy.json_to_cel(attributes))
            ),
            celpy.celtypes.StringType("capacity"): _DefaultMap(cast(Mapping[Any, Any], celpy.json_to_cel(capacity))),
        }
    )
    activation = {"device": device_value}
    try:
        result = program.evaluate(activation)
    except celpy.CELEvalError as exc:
        kind = "compile" if "undeclared reference" in str(exc) else "runtime"
        raise ValueError(f"{kind}: {exc.args[0] if exc.args else exc}") from exc
    if isinstance(result, celpy.CELEvalError):
        raise ValueError(f"runtime: {result.args[0] if result.args else result}")
    if not isinstance(result, celpy.celtypes.BoolType):
        raise ValueError(f"runtime: CEL result of type {type(result).__name__} could not be converted to bool")
    return bool(result)


class _DefaultMap(celpy.celtypes.MapType):
    """newStringInterfaceMapWithDefault: a domain without attributes reads as an empty map."""

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(key) if key in self else celpy.celtypes.MapType()


# -- the allocator ---------------------------------------------------------------------------------------------


@dataclass
class _Request:
    claim: Obj
    name: str
    exactly: Obj
    cls: Obj
    count: int
    all_devices: list[tuple[Pool, Obj, Obj]] = field(default_factory=list)


def _claim_name(claim: Obj) -> str:
    meta = claim["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


class _Allocator:
    def __init__(self, node: Node, claims: list[Obj], classes: dict[str, Obj], pools: list[Pool], used: set[DeviceId]):
        self.node, self.claims, self.classes, self.pools, self.used = node, claims, classes, pools, used
        self.requests: list[list[_Request]] = []
        self.results: list[list[tuple[str, DeviceId, Obj]]] = [[] for _ in claims]
        self.allocating: set[DeviceId] = set()

    def check(self) -> None:
        for claim in self.claims:
            requests, minimum = [], 0
            for req in claim["spec"]["devices"].get("requests", []):
                if req.get("firstAvailable"):
                    raise AllocationError(
                        f"claim {_claim_name(claim)}, request {req['name']}: has subrequests, but the "
                        "DRAPrioritizedList feature is disabled"
                    )
                requests.append(self.request(claim, req))
                minimum += requests[-1].count
            if minimum > ALLOCATION_RESULTS_MAX_SIZE:
                raise AllocationError(
                    f"claim {_claim_name(claim)}: number of requested devices {minimum} exceeds the claim limit of "
                    f"{ALLOCATION_RESULTS_MAX_SIZE}"
                )
            for i, constraint in enumerate(claim["spec"]["devices"].get("constraints", [])):
                if not constraint.get("matchAttribute"):
                    raise AllocationError(
                        f"claim {_claim_name(claim)}, constraint #{i}: empty constraint (unsupported constraint type?)"
                    )
            self.requests.append(requests)

    def request(self, claim: Obj, req: Obj) -> _Request:
        where = f"claim {_claim_name(claim)}, request {req['name']}"
        exactly = req.get("exactly") or {}
        for i, selector in enumerate(exactly.get("selectors", [])):
            if not (selector.get("cel") or {}).get("expression"):
                raise AllocationError(f"{where}, selector #{i}: CEL expression empty (unsupported selector type?)")
        if exactly.get("adminAccess"):
            raise AllocationError(f"{where}: admin access is requested, but the feature is disabled")
        if not exactly.get("deviceClassName"):
            raise AllocationError(f"{where}: missing device class name (unsupported request type?)")
        cls = self.classes.get(exactly["deviceClassName"])
        if cls is None:
            raise AllocationError(
                f"{where}: could not retrieve device class {exactly['deviceClassName']}: deviceclass.resource.k8s.io "
                f'"{exactly["deviceClassName"]}" not found'
            )
        mode = exactly.get("allocationMode", "ExactCount")
        r = _Request(claim, req["name"], exactly, cls, 0)
        if mode == "ExactCount":
            r.count = int(exactly.get("count", 1))
        elif mode == "All":
            for pool in self.pools:
                if pool.incomplete:
                    raise AllocationError(
                        f"{where}: asks for all devices, but resource pool {pool.id} is currently being updated"
                    )
                if pool.invalid:
                    raise AllocationError(
                        f"{where}: asks for all devices, but resource pool {pool.id} is currently invalid"
                    )
            r.all_devices = [(p, s, d) for p, s, d in self.devices() if self.selectable(r, s, d)]
            r.count = len(r.all_devices)
        else:
            raise AllocationError(f"{where}: unsupported count mode {mode}")
        return r

    def devices(self) -> Iterator[tuple[Pool, Obj, Obj]]:
        for pool in self.pools:
            if not (pool.incomplete or pool.invalid):
                for s in pool.slices:
                    for d in s["spec"].get("devices", []):
                        yield pool, s, d

    def selectable(self, r: _Request, slice_: Obj, device: Obj) -> bool:
        if device.get("bindingConditions"):
            return False  # DRADeviceBindingConditions off
        driver = slice_["spec"]["driver"]
        for owner, selectors in (
            (f"class {r.cls['metadata']['name']}", r.cls["spec"].get("selectors", [])),
            (f"claim {_claim_name(r.claim)}", r.exactly.get("selectors", [])),
        ):
            for i, selector in enumerate(selectors):
                try:
                    if not device_matches(selector["cel"]["expression"], driver, device):
                        return False
                except ValueError as exc:
                    kind, _, why = str(exc).partition(": ")
                    on = (
                        ""
                        if kind == "compile"
                        else f" on device {driver}/{slice_['spec']['pool']['name']}/{device['name']}"
                    )
                    raise AllocationError(f"{owner}: selector #{i}{on}: CEL {kind} error: {why}") from exc
        return True

    def constraints_hold(self, ci: int, request: str, device: Obj, driver: str) -> bool:
        """matchAttributeConstraint.add: every device of the named requests (all, when none are named) has the
        attribute, with one value."""
        chosen = [(req, d, drv) for req, (drv, _, _), d in self.results[ci]] + [(request, device, driver)]
        for constraint in self.claims[ci]["spec"]["devices"].get("constraints", []):
            names = constraint.get("requests") or []
            values = set()
            for req, d, drv in chosen:
                if names and req not in names:
                    continue
                domain, ident = _qualified(constraint["matchAttribute"], drv)
                attribute = next(
                    (v for k, v in (d.get("attributes") or {}).items() if _qualified(k, drv) == (domain, ident)), None
                )
                if attribute is None:
                    return False
                values.add(tuple(sorted(attribute.items())))
            if len(values) > 1:
                return False
        return True

    def search(self, ci: int = 0, ri: int = 0, di: int = 0) -> bool:
        if ci == len(self.claims):
            return True
        if ri == len(self.requests[ci]):
            return self.search(ci + 1)
        r = self.requests[ci][ri]
        all_mode = r.exactly.get("allocationMode", "ExactCount") == "All"
        if all_mode and not r.all_devices:
            return False  # at least one device is required for "All"
        if di == r.count:
            return self.search(ci, ri + 1)
        if all_mode:
            pool, slice_, device = r.all_devices[di]
            did = (pool.driver, pool.name, device["name"])
            if did in self.used or did in self.allocating:
                return False
            if not self.constraints_hold(ci, r.name, device, pool.driver):
                raise AllocationError(
                    f"claim {_claim_name(r.claim)}, request {r.name}: cannot add device {'/'.join(did)} because a "
                    "claim constraint would not be satisfied"
                )
            return self.take(ci, ri, di, r, did, slice_, device)
        for pool, slice_, device in self.devices():
            did = (pool.driver, pool.name, device["name"])
            if did in self.used or did in self.allocating:
                continue
            if not self.selectable(r, slice_, device) or not self.constraints_hold(ci, r.name, device, pool.driver):
                continue
            if self.take(ci, ri, di, r, did, slice_, device):
                return True
        return False

    def take(self, ci: int, ri: int, di: int, r: _Request, did: DeviceId, slice_: Obj, device: Obj) -> bool:
        self.allocating.add(did)
        self.results[ci].append((r.name, did, {**device, "_slice": slice_}))
        if self.search(ci, ri, di + 1):
            return True
        self.results[ci].pop()
        self.allocating.discard(did)
        return False


def _node_selector(results: list[tuple[str, DeviceId, Obj]]) -> Obj | None:
    """createNodeSelector: a node-local device pins the node; otherwise the union of the slices' selectors."""
    term: Obj = {}
    for _, _, device in results:
        spec = device["_slice"]["spec"]
        if spec.get("nodeName"):
            return {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [spec["nodeName"]]}]}
                ]
            }
        for key in ("matchFields", "matchExpressions"):
            for t in (spec.get("nodeSelector") or {}).get("nodeSelectorTerms", [])[:1]:
                for req in t.get(key, []):
                    if req not in term.setdefault(key, []):
                        term[key].append(req)
    return {"nodeSelectorTerms": [term]} if term else None


def allocate(
    node: Node, claims: list[Obj], classes: list[Obj], slices: list[Obj], allocated: set[DeviceId]
) -> list[Obj] | None:
    """Allocate: one `status.allocation` per claim, None when the node has no solution. Raises AllocationError."""
    pools = gather_pools(slices, node)
    alloc = _Allocator(node, claims, {c["metadata"]["name"]: c for c in classes}, pools, allocated)
    alloc.check()
    if not alloc.search():
        if any(p.invalid for p in pools):
            raise AllocationError("invalid resource pools were encountered")
        return None
    return [
        {
            "devices": {
                "results": [{"request": req, "driver": d, "pool": p, "device": n} for req, (d, p, n), _ in results]
            },
            **({"nodeSelector": sel} if (sel := _node_selector(results)) else {}),
        }
        for results in alloc.results
    ]


def allocated_devices(claims: list[Obj]) -> set[DeviceId]:
    """The devices of every claim's `status.allocation` (the scheduler's allocatedDevices)."""
    return {
        (r["driver"], r["pool"], r["device"])
        for c in claims
        for r in (((c.get("status") or {}).get("allocation") or {}).get("devices") or {}).get("results", [])
    }

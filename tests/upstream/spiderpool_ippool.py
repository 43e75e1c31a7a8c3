"""Spiderpool v1.2.2's SpiderIPPool admission webhook (spidernet-io/spiderpool tag v1.2.2, pkg/ippoolmanager/), every
rule of its mutating and validating halves, on the address rules of pkg/ip (tests/upstream/spiderpool_ip.py) and
apimachinery's errors (tests/upstream/apimachinery.py), each answer with upstream's reason and message.

Served by spiderpool-controller (cmd/spiderpool-controller/cmd/daemon.go:383-392), configured from spiderpool-conf's
conf.yml (pkg/types/k8s.go:108-119; charts/spiderpool/templates/configmap.yaml:18-28): enableIPv4, enableIPv6,
enableSpiderSubnet (the chart's default true), enableValidatingResourcesDeletedWebhook (default false). The chart
registers the mutating half for CREATE and UPDATE and the validating half for CREATE, UPDATE and DELETE
(charts/spiderpool/templates/tls.yaml:63-91, :228-254), both failurePolicy Fail.

- ippool_mutate.go:24-101 (Default, never refusing: ippool_webhook.go:55-69 logs a failure and admits the object as
  mutated so far): nothing for a terminating pool; the finalizer; ipVersion from the subnet; the
  `ipam.spidernet.io/ippool-cidr` label; with SpiderSubnet on, the SpiderSubnet of that CIDR label as controller
  (:103-143) and its gateway and routes when the pool has none (:145-156); `ips`, then `excludeIPs`, merged when more
  than one.
- ippool_webhook.go:74-101 (ValidateCreate), ippool_validate.go:33-57: ipVersion (:147-182), the subnet a CIDR written
  as Go prints it and no other pool of its version on an overlapping subnet (:184-229; the same name is
  AlreadyExists), then the spec (:108-117: the pool's ranges inside its subnet and apart (pkg/ip/subnet.go NewCIDR),
  no address shared with a pool of the same `ippool-cidr` label (:231-267), the gateway in the subnet and excluded
  if within `ips` (:269-297), each route's dst a CIDR of the version, not the default route, not twice, its gw in
  the subnet (:299-338)) and podAffinity (:382-418).
- ippool_webhook.go:104-137 (ValidateUpdate): a terminating pool only loses its finalizer; ippool_validate.go:59-87:
  ipVersion and subnet unchanged (:89-106), ipVersion, spec, podAffinity, and no allocated address left out of the
  pool (:119-145). The object it checks carries the stored status: with the status subresource the API server keeps
  the old status on an update (its PrepareForUpdate).
- ippool_subnet_validate.go:23-127: with SpiderSubnet on, a pool a SpiderSubnet controls keeps its addresses inside
  that subnet's, and an auto-created pool (label `ipam.spidernet.io/owner-application-name`) exactly the ones the
  subnet's status.controlledIPPools records for it.
- ippool_webhook.go:140-162 (ValidateDelete): with enableValidatingResourcesDeletedWebhook, no pool with allocated
  addresses is deleted.

The webhook does not look at nodeName, nodeAffinity, namespaceName, namespaceAffinity, multusName, default or disable:
those are the IPAM's filters (tests/upstream/spiderpool.py pool_filter_error) and the CRD's schema (tests/crds.py).
Go walks a map (matchLabels, allocatedIPs) in random order; the model walks it sorted, so where upstream may name any
of several offenders, the model names one of them.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from tests.upstream import apimachinery as am
from tests.upstream import spiderpool_ip as ip

FINALIZER = "spiderpool.spidernet.io"  # pkg/constant/k8s.go:138 SpiderFinalizer
LABEL_CIDR = "ipam.spidernet.io/ippool-cidr"  # k8s.go:92
LABEL_SUBNET_CIDR = "ipam.spidernet.io/subnet-cidr"  # k8s.go:91
LABEL_OWNER_SUBNET = "ipam.spidernet.io/owner-spider-subnet"  # k8s.go:80
LABEL_OWNER_APPLICATION = "ipam.spidernet.io/owner-application-name"  # k8s.go:84, utils.go:18-23 IsAutoCreatedIPPool
AUTO_POOL_AFFINITIES = [f"ipam.spidernet.io/{k}" for k in ("app-api-group", "app-api-version", "app-kind",
                                                          "app-namespace", "app-name")]  # fmt: skip # k8s.go:95-100
GROUP_KIND = "SpiderIPPool.spiderpool.spidernet.io"  # schema.GroupKind{spiderpool.spidernet.io, SpiderIPPool}
#: the webhooks' names (tls.yaml:81, :240) and the resource, as the API server names them in a denial
WEBHOOK, RESOURCE = "spiderippool.spiderpool.spidernet.io", "spiderippools.spiderpool.spidernet.io"
_FULL = "total IP addresses of an IPPool are jointly determined by 'spec.ips' and 'spec.excludeIPs'"


class _Stop(Exception):
    """mutateIPPool returned an error: Default logs it and admits the object as it is."""


def _controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    """metav1.GetControllerOf: the owner reference with controller true."""
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def _spec(pool: dict[str, Any]) -> dict[str, Any]:
    return pool.get("spec") or {}


@dataclass(frozen=True)
class IPPoolWebhook:
    """The webhook as spiderpool-controller sets it up; `subnets` and `pools` are what the API lists."""

    enable_ipv4: bool = True
    enable_ipv6: bool = True
    enable_spider_subnet: bool = True
    enable_deleted_webhook: bool = False

    @classmethod
    def from_conf(cls, conf_yml: str) -> IPPoolWebhook:
        """From spiderpool-conf's conf.yml, as the controller reads it (yaml.Unmarshal: a missing key is false)."""
        conf = yaml.safe_load(conf_yml) or {}
        return cls(
            bool(conf.get("enableIPv4")),
            bool(conf.get("enableIPv6")),
            bool(conf.get("enableSpiderSubnet")),
            bool(conf.get("enableValidatingResourcesDeletedWebhook")),
        )

    @classmethod
    def of_chart(cls, rendered: list[dict[str, Any]]) -> IPPoolWebhook:
        """From the spiderpool-conf ConfigMap a chart renders (configmap.yaml: conf.yml beside clusterNetwork)."""
        (conf,) = [o["data"]["conf.yml"] for o in rendered if o["kind"] == "ConfigMap" and
                   {"conf.yml", "clusterNetwork"} <= set(o.get("data") or {})]  # fmt: skip
        return cls.from_conf(conf)

    # -- mutating ---------------------------------------------------------------------------------------------

    def default(self, pool: dict[str, Any], subnets: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        """The pool as the mutating webhook returns it (ippool_mutate.go:24-101)."""
        out = copy.deepcopy(pool)
        meta = out.setdefault("metadata", {})
        if meta.get("deletionTimestamp"):
            return out
        if FINALIZER not in (meta.get("finalizers") or []):
            meta["finalizers"] = [*(meta.get("finalizers") or []), FINALIZER]
        with contextlib.suppress(_Stop, ip.GoError):
            self._mutate(out, subnets)
        return out

    def _mutate(self, pool: dict[str, Any], subnets: Sequence[dict[str, Any]]) -> None:
        spec, meta = pool.setdefault("spec", {}), pool["metadata"]
        subnet = spec.get("subnet", "")
        if spec.get("ipVersion") is None:  # :38-51
            if ip.is_ipv4_cidr(subnet):
                spec["ipVersion"] = 4
            elif ip.is_ipv6_cidr(subnet):
                spec["ipVersion"] = 6
            else:
                raise _Stop
        cidr = ip.cidr_to_label_value(spec["ipVersion"], subnet)  # :53-64
        meta["labels"] = {**(meta.get("labels") or {}), LABEL_CIDR: cidr}
        if self.enable_spider_subnet:  # :66-76
            owner = self._set_controller_subnet(pool, cidr, subnets)
            if owner is not None:
                inherited = _spec(owner)
                if inherited.get("gateway") is not None and spec.get("gateway") is None:
                    spec["gateway"] = inherited["gateway"]
                if inherited.get("routes") and spec.get("routes") is None:
                    spec["routes"] = copy.deepcopy(inherited["routes"])
        for key in ("ips", "excludeIPs"):  # :78-98
            if len(spec.get(key) or []) > 1:
                spec[key] = ip.merge_ip_ranges(spec["ipVersion"], spec[key])

    @staticmethod
    def _set_controller_subnet(
        pool: dict[str, Any], cidr: str, subnets: Sequence[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """setControllerSubnet (:103-143): the first SpiderSubnet labelled with the pool's CIDR becomes its controller
        (controller-runtime SetControllerReference: refused when another object already controls the pool)."""
        meta, owner = pool["metadata"], _controller(pool)
        if owner is not None and meta["labels"].get(LABEL_OWNER_SUBNET) == owner.get("name"):
            return None
        found = sorted(
            (s for s in subnets if (s["metadata"].get("labels") or {}).get(LABEL_SUBNET_CIDR) == cidr),
            key=lambda s: s["metadata"]["name"],
        )
        if not found:
            return None
        subnet = found[0]
        ref = {"apiVersion": "spiderpool.spidernet.io/v2beta1", "kind": "SpiderSubnet",
               "name": subnet["metadata"]["name"], "uid": subnet["metadata"].get("uid", ""),
               "blockOwnerDeletion": True, "controller": True}  # fmt: skip
        if owner is None or owner.get("uid") != ref["uid"]:  # IsControlledBy compares UIDs
            same = owner is not None and (owner.get("apiVersion", "").split("/")[0], owner.get("kind"),
                                          owner.get("name")) == ("spiderpool.spidernet.io", "SpiderSubnet", ref["name"])  # fmt: skip # noqa: E501
            if owner is not None and not same:
                raise _Stop  # AlreadyOwnedError
            refs = [r for r in meta.get("ownerReferences") or [] if r is not owner]
            meta["ownerReferences"] = [*refs, ref]
        meta["labels"][LABEL_OWNER_SUBNET] = subnet["metadata"]["name"]
        return subnet

    # -- validating -------------------------------------------------------------------------------------------

    def validate_create(
        self,
        pool: dict[str, Any],
        pools: list[dict[str, Any]],
        subnets: Sequence[dict[str, Any]] = (),
    ) -> am.StatusError | None:
        """ValidateCreate (ippool_webhook.go:74-101): None admits."""
        name = pool["metadata"]["name"]
        errors = self._create_errors(pool, pools)
        if not errors and self.enable_spider_subnet and (error := self._subnet_error(pool, subnets)):
            errors = [error]
        if not errors:
            return None
        if "AlreadyExists" in am.aggregate(errors):  # :88-90, Spiderpool issue 3321
            return am.new_already_exists(GROUP_KIND, name)  # Resource(KindSpiderIPPool)
        return am.new_invalid(GROUP_KIND, name, errors)

    def _create_errors(self, pool: dict[str, Any], pools: list[dict[str, Any]]) -> list[am.FieldError]:
        """validateCreateIPPool (ippool_validate.go:33-57)."""
        spec = _spec(pool)
        if error := self._version_error(spec.get("ipVersion")):
            return [error]
        if error := _cidr_error(pool, pools):
            return [error]
        errors = [error] if (error := _spec_error(pool, pools)) else []
        return errors + _pod_affinity_errors(pool)

    def validate_update(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        pools: list[dict[str, Any]],
        subnets: Sequence[dict[str, Any]] = (),
    ) -> am.StatusError | None:
        """ValidateUpdate (ippool_webhook.go:104-137) of `new` (after the mutating webhook) replacing `old`."""
        meta = new["metadata"]
        if meta.get("deletionTimestamp"):
            if FINALIZER not in (meta.get("finalizers") or []):
                return None
            return am.new_forbidden("", "", "cannot update a terminating IPPool")
        new = {**new, "status": old.get("status")}  # the status subresource: the stored status stays
        errors = self._update_errors(old, new, pools)
        if not errors and self.enable_spider_subnet and (error := self._subnet_error(new, subnets)):
            errors = [error]
        return am.new_invalid(GROUP_KIND, meta["name"], errors) if errors else None

    def _update_errors(
        self, old: dict[str, Any], new: dict[str, Any], pools: list[dict[str, Any]]
    ) -> list[am.FieldError]:
        """validateUpdateIPPool (ippool_validate.go:59-106)."""
        before, after = _spec(old), _spec(new)
        if None not in (before.get("ipVersion"), after.get("ipVersion")) and before["ipVersion"] != after["ipVersion"]:
            return [am.FieldError(am.FORBIDDEN, "spec.ipVersion", detail="is not changeable")]
        if before.get("subnet", "") != after.get("subnet", ""):
            return [am.FieldError(am.FORBIDDEN, "spec.subnet", detail="is not changeable")]
        if error := self._version_error(after.get("ipVersion")):
            return [error]
        if error := _spec_error(new, pools):
            return [error]
        if errors := _pod_affinity_errors(new):
            return errors
        return [error] if (error := _in_use_error(new)) else []

    def validate_delete(self, pool: dict[str, Any]) -> am.StatusError | None:
        """ValidateDelete (ippool_webhook.go:140-162)."""
        count = (pool.get("status") or {}).get("allocatedIPCount")
        if not self.enable_deleted_webhook or not count or count <= 0:
            return None
        name = pool["metadata"]["name"]
        return am.new_forbidden(RESOURCE, name, f"cannot delete an IPPool with allocated IPs({count})")

    def _version_error(self, version: Any) -> am.FieldError | None:
        """validateIPPoolIPVersion (ippool_validate.go:147-182)."""
        if version is None:
            return am.FieldError(
                am.INVALID, "spec.ipVersion", None, "is not generated correctly, 'spec.subnet' may be invalid"
            )
        if version not in (4, 6):
            return am.not_supported("spec.ipVersion", version, ["4", "6"])
        if not (self.enable_ipv4 if version == 4 else self.enable_ipv6):
            return am.FieldError(am.FORBIDDEN, "spec.ipVersion", detail=f"IPv{version} is disabled")
        return None

    @staticmethod
    def _subnet_error(pool: dict[str, Any], subnets: Sequence[dict[str, Any]]) -> am.FieldError | None:
        """validateSubnetTotalIPsContainsIPPoolTotalIPs (ippool_subnet_validate.go:51-89) and, for an auto-created
        pool, validateNewAutoPoolTotalIPsWithinSubnet (:91-127)."""
        owner, spec, name = _controller(pool), _spec(pool), pool["metadata"]["name"]
        if owner is None:
            return None
        try:
            mine = ip.assemble_total_ips(spec["ipVersion"], spec.get("ips") or [], spec.get("excludeIPs") or [])
        except ip.GoError as e:
            return am.FieldError(
                am.INTERNAL, "spec.ips", detail=f"failed to assemble the total IP addresses of the IPPool {name}: {e}"
            )
        if not mine:
            return None
        subnet = next((s for s in subnets if s["metadata"]["name"] == owner.get("name")), None)
        if subnet is None:
            missing = f'spidersubnets.spiderpool.spidernet.io "{owner.get("name")}" not found'
            return am.FieldError(
                am.INTERNAL, "spec.subnet", detail=f"failed to get controller Subnet {owner.get('name')}: {missing}"
            )
        theirs = _spec(subnet)
        try:
            total = ip.assemble_total_ips(theirs["ipVersion"], theirs.get("ips") or [], theirs.get("excludeIPs") or [])
        except ip.GoError as e:
            return am.FieldError(
                am.INTERNAL,
                "spec.ips",
                detail=f"failed to assemble the total IP addresses of the Subnet {subnet['metadata']['name']}: {e}",
            )
        if outside := [a for a in mine if a not in set(total)]:
            ranges = " ".join(ip.convert_ips_to_ranges(spec["ipVersion"], outside))
            return am.FieldError(
                am.FORBIDDEN,
                "spec.ips",
                detail=f"add some IP ranges [{ranges}] that are not contained in controller Subnet {subnet['metadata']['name']}, {_FULL}",  # noqa: E501
            )
        if LABEL_OWNER_APPLICATION not in (pool["metadata"].get("labels") or {}):
            return None
        return _auto_pool_error(name, sorted(mine), subnet)


def _auto_pool_error(name: str, mine: list[int], subnet: dict[str, Any]) -> am.FieldError | None:
    """validateNewAutoPoolTotalIPsWithinSubnet (ippool_subnet_validate.go:91-127): the pool's addresses are the ones the
    subnet's status.controlledIPPools (a JSON string {pool: {ips: [...]}}) holds for it."""
    recorded = (subnet.get("status") or {}).get("controlledIPPools")
    try:
        entry = (json.loads(recorded) if recorded is not None else {}).get(name)
    except ValueError as e:  # encoding/json's message is not ported
        return am.FieldError(
            am.INTERNAL,
            "spec.subnet",
            detail=f"failed unsharmal SpiderSubnet {subnet['metadata']['name']} Status.ControlledIPPools: {e}",
        )
    held: list[int] = []
    if entry is not None:
        try:
            held = sorted(ip.addresses(ip.parse_ip_ranges(_spec(subnet)["ipVersion"], entry.get("ips") or [])))
        except ip.GoError as e:
            return am.FieldError(
                am.INTERNAL,
                "spec.subnet",
                detail=f"failed to parse SpiderSubnet {subnet['metadata']['name']} controlledIPPool {name} IPs: {e} ",
            )
    if held != mine:
        return am.FieldError(
            am.FORBIDDEN,
            "spec.ips",
            detail="it's illegal to update AutoPool.Spec.IPs that are different from corresponding SpiderSubnet.Status.ControlledIPPools",  # noqa: E501
        )
    return None


def _cidr_error(pool: dict[str, Any], pools: list[dict[str, Any]]) -> am.FieldError | None:
    """validateIPPoolCIDR (ippool_validate.go:184-229): every pool of the version, listed by name."""
    spec, name = _spec(pool), pool["metadata"]["name"]
    version, subnet = spec["ipVersion"], spec.get("subnet", "")
    try:
        ip.is_cidr(version, subnet)
        ip.is_format_cidr(subnet)
    except ip.GoError as e:
        return am.FieldError(am.INVALID, "spec.subnet", subnet, str(e))
    for other in sorted(pools, key=lambda p: p["metadata"]["name"]):
        theirs = _spec(other)
        if theirs.get("ipVersion") is None:
            raise NotImplementedError("a stored pool without ipVersion: Go dereferences nil (:202)")
        if theirs["ipVersion"] != version:
            continue
        if other["metadata"]["name"] == name:
            return am.FieldError(am.INTERNAL, "spec.subnet", detail=f"IPPool {name} AlreadyExists")
        if theirs.get("subnet", "") == subnet:
            continue
        try:
            overlap = ip.is_cidr_overlap(version, subnet, theirs.get("subnet", ""))
        except ip.GoError as e:
            return am.FieldError(
                am.INTERNAL, "spec.subnet", detail=f"failed to compare whether 'spec.subnet' overlaps: {e}"
            )
        if overlap:
            detail = f"overlap with IPPool {other['metadata']['name']} which 'spec.subnet' is {theirs['subnet']}"
            return am.FieldError(am.INVALID, "spec.subnet", subnet, detail)
    return None


def _spec_error(pool: dict[str, Any], pools: list[dict[str, Any]]) -> am.FieldError | None:
    """validateIPPoolSpec (ippool_validate.go:108-117)."""
    spec = _spec(pool)
    return (
        _available_ips_error(pool, pools)
        or _gateway_error(spec)
        or _routes_error(spec["ipVersion"], spec.get("subnet", ""), spec.get("routes") or [])
    )


def _available_ips_error(pool: dict[str, Any], pools: list[dict[str, Any]]) -> am.FieldError | None:
    """validateIPPoolAvailableIPs (ippool_validate.go:231-267): the pools labelled with the same CIDR, by name."""
    spec, name = _spec(pool), pool["metadata"]["name"]
    subnet = spec.get("subnet", "")
    try:
        mine = ip.CIDR(subnet, spec.get("ips") or [], spec.get("excludeIPs") or [])
    except ip.GoError as e:
        return am.FieldError(am.INVALID, "spec.subnet", subnet, str(e))
    try:
        cidr = ip.cidr_to_label_value(spec["ipVersion"], subnet)
    except ip.GoError as e:
        return am.FieldError(
            am.INTERNAL, "spec.ips", detail=f"failed to parse CIDR {subnet} as a valid label value: {e}"
        )
    same = [p for p in pools if (p["metadata"].get("labels") or {}).get(LABEL_CIDR) == cidr]
    for other in sorted(same, key=lambda p: p["metadata"]["name"]):
        if other["metadata"]["name"] == name:
            continue
        theirs = _spec(other)
        try:
            existing = ip.CIDR(theirs.get("subnet", ""), theirs.get("ips") or [], theirs.get("excludeIPs") or [])
        except ip.GoError as e:
            return am.FieldError(am.INVALID, "spec.subnet", theirs.get("subnet", ""), str(e))
        if overlaps := mine.overlaps(existing.ranges):
            detail = f"overlap with IPPool {other['metadata']['name']} in IP ranges [{' '.join(overlaps)}], {_FULL}"
            return am.FieldError(am.FORBIDDEN, "spec.ips", detail=detail)
    return None


def _contains_error(path: str, version: int, subnet: str, address: str) -> am.FieldError | None:
    """ValidateContainsIP (ippool_validate.go:361-380)."""
    try:
        inside = ip.contains_ip(version, subnet, address)
    except ip.GoError as e:
        return am.FieldError(am.INVALID, path, address, str(e))
    return (
        None
        if inside
        else am.FieldError(am.INVALID, path, address, f"not pertains to the 'spec.subnet' {subnet} of IPPool")
    )


def _range_contains(version: int, ip_range: str, address: str) -> bool:
    """IPRangeContainsIP with its error ignored (ippool_validate.go:279, :286)."""
    try:
        return ip.ip_range_contains_ip(version, ip_range, address)
    except ip.GoError:
        return False


def _gateway_error(spec: dict[str, Any]) -> am.FieldError | None:
    """validateIPPoolGateway (ippool_validate.go:269-297): inside the subnet; one of `ips` only if excluded."""
    gateway, version = spec.get("gateway"), spec["ipVersion"]
    if gateway is None:
        return None
    if error := _contains_error("spec.gateway", version, spec.get("subnet", ""), gateway):
        return error
    if any(_range_contains(version, r, gateway) for r in spec.get("excludeIPs") or []):
        return None
    for i, r in enumerate(spec.get("ips") or []):
        if _range_contains(version, r, gateway):
            detail = f"conflicts with 'spec.gateway' {gateway}, add the gateway IP address to 'spec.excludeIPs' or remove it from 'spec.ips'"  # noqa: E501
            return am.FieldError(am.INVALID, f"spec.ips[{i}]", r, detail)
    return None


def _routes_error(version: int, subnet: str, routes: list[dict[str, Any]]) -> am.FieldError | None:
    """validateIPPoolRoutes (ippool_validate.go:299-338)."""
    seen = set()
    for i, route in enumerate(routes):
        dst, where = route.get("dst", ""), f"spec.routes[{i}]"
        if dst == {4: "0.0.0.0/0", 6: "::/0"}.get(version):
            return am.FieldError(
                am.INVALID, f"{where}.dst", dst, "please specify 'spec.gateway' to configure the default route"
            )
        if dst in seen:
            return am.FieldError(am.INVALID, f"{where}.dst", dst, "duplicate route with the same dst")
        seen.add(dst)
        try:
            ip.is_cidr(version, dst)
        except ip.GoError as e:
            return am.FieldError(am.INVALID, f"{where}.dst", dst, str(e))
        if error := _contains_error(f"{where}.gw", version, subnet, route.get("gw", "")):
            return error
    return None


def _pod_affinity_errors(pool: dict[str, Any]) -> list[am.FieldError]:
    """validateIPPoolPodAffinity (ippool_validate.go:382-418)."""
    affinity = _spec(pool).get("podAffinity")
    if affinity is None:
        return []
    shown = am.label_selector_go_syntax(affinity)
    if LABEL_OWNER_APPLICATION in (pool["metadata"].get("labels") or {}):  # an auto-created pool
        extra = [k for k in affinity.get("matchLabels") or {} if k not in AUTO_POOL_AFFINITIES]
        errors = [
            am.FieldError(
                am.INVALID,
                "spec.podAffinity",
                shown,
                "it's invalid to add additional podAffinity matchLabels for auto-created SpiderIPPool",
            )
        ] * len(extra)
        if affinity.get("matchExpressions"):
            errors.append(
                am.FieldError(
                    am.INVALID,
                    "spec.podAffinity",
                    shown,
                    "it's invalid to add additional podAffinity matchExpressions for auto-created SpiderIPPool",
                )
            )
        return errors
    errors = am.label_selector_errors(affinity, "spec.podAffinity")
    if not (affinity.get("matchLabels") or affinity.get("matchExpressions")):
        errors.append(
            am.FieldError(am.INVALID, "spec.podAffinity", shown, "empty podAffinity is invalid for SpiderIPPool")
        )
    return errors


def _in_use_error(pool: dict[str, Any]) -> am.FieldError | None:
    """validateIPPoolIPInUse (ippool_validate.go:119-145): every allocated address is still the pool's."""
    spec, name = _spec(pool), pool["metadata"]["name"]
    raw = (pool.get("status") or {}).get("allocatedIPs")
    try:
        records = json.loads(raw) if raw is not None else {}
        if not isinstance(records, dict | None) or not all(isinstance(r, dict) for r in (records or {}).values()):
            raise ValueError("json: cannot unmarshal into spiderpoolv2beta1.PoolIPAllocations")
    except ValueError as e:  # encoding/json's message is not ported
        return am.FieldError(
            am.INTERNAL, "spec.ips", detail=f"failed to unmarshal the allocated IP records of IPPool {name}: {e}"
        )
    try:
        total = ip.assemble_total_ips(spec["ipVersion"], spec.get("ips") or [], spec.get("excludeIPs") or [])
    except ip.GoError as e:
        return am.FieldError(
            am.INTERNAL, "spec.ips", detail=f"failed to assemble the total IP addresses of the IPPool {name}: {e}"
        )
    texts = {ip.ip_text(spec["ipVersion"], a) for a in total}
    for address, allocation in sorted((records or {}).items()):
        if address not in texts:
            pod = allocation.get("pod", "")
            detail = f"remove an IP address {address} that is being used by Pod {pod}, {_FULL}"
            return am.FieldError(am.FORBIDDEN, "spec.ips", detail=detail)
    return None


def admission_denial(error: am.StatusError, name: str) -> str:
    """The API server's message for a webhook's refusal (kubernetes staging/src/k8s.io/apiserver/pkg/admission/plugin/
    webhook/errors/statuserror.go, ToStatusErr): the resource and name, then the webhook's own message."""
    return f'{RESOURCE} {am.go_quote(name)} is forbidden: admission webhook "{WEBHOOK}" denied the request: {error}'


def pool_finalizer_removable(allocated_ips: dict[str, Any] | None) -> bool:
    """pkg/ippoolmanager/ippool_informer.go:297-309: a dying pool loses its finalizer only with no allocation."""
    return not allocated_ips

"""Spiderpool v1.2.2's SpiderCoordinator (spidernet-io/spiderpool tag v1.2.2): the default one spiderpool-init
creates from the chart's values, and the admission rules every coordinator block passes (a SpiderCoordinator's, and a
SpiderMultusConfig's `coordinator`), each answer with upstream's message.

- cmd/spiderpool-init/cmd/config.go:124-188 (the SPIDERPOOL_INIT_DEFAULT_COORDINATOR_* variables the chart's
  templates/pod.yaml:36-55 sets from `coordinator.*`; a bad one is logger.Fatal: the hook job fails) and
  root.go:36-57 (the object it creates; Go's omitempty drops an empty hijackCIDR or policyRoutes).
- pkg/coordinatormanager/coordinator_mutate.go:23-88 (Default: coordinator_webhook.go:40-55 logs a failure and
  admits the object as mutated so far): mode, tunePodRoutes, hostRuleTable, podRPFilter, txQueueLen,
  vethLinkAddress and vethMTU defaulted; nothing more for a terminating one; then podCIDRType required, a bare
  address of hijackCIDR given its /32 or /128, each policy route's dst as ParseIPOrCIDR prints it, the finalizer.
- coordinator_validate.go:56-218 (ValidateCoordinatorSpec): podCIDRType one of coordinator_informer.go:63's (and
  present, for a SpiderCoordinator), each hijackCIDR (named extraCIDR in the error) and policy route dst an address
  or prefix, each route's gw an address of its dst's family, podMACPrefix two hex bytes of a unicast MAC,
  txQueueLen not negative, podRPFilter present (SpiderCoordinator) and, when not negative, 0, 1 or 2,
  vethLinkAddress an address, vethMTU positive. coordinator_webhook.go:58-107: the SpiderCoordinator webhook answers
  create and update with NewInvalid, admits every delete; it is served when enableCoordinator (daemon.go:394-399)
  and registered by the chart with coordinator.enabled (tls.yaml:119-145, :279-306).
The CRD's schema (mode's and podCIDRType's enums, vethMTU's minimum) is tests/crds.py's to check.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from typing import Any

from tests.upstream import apimachinery as am
from tests.upstream import spiderpool_ip as ip

SUPPORTED_POD_CIDR_TYPES = ["auto", "cluster", "calico", "cilium", "none"]  # coordinator_informer.go:55-63
FINALIZER = "spiderpool.spidernet.io"  # pkg/constant/k8s.go:138
GROUP_KIND = "SpiderCoordinator.spiderpool.spidernet.io"
_ENV = "SPIDERPOOL_INIT_DEFAULT_COORDINATOR_"  # config.go:28-57


class InitExit(Exception):
    """spiderpool-init's logger.Fatal: it exits 1 with this message, and its hook job fails."""


def _go_parse_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {am.go_quote(text)}: invalid syntax")


def init_coordinator(env: dict[str, str]) -> dict[str, Any] | None:
    """The SpiderCoordinator spiderpool-init creates from its environment (config.go:124-188, root.go:36-57), or None
    when it is told to create none."""
    plain = {k.removeprefix(_ENV): v.replace('"', "") for k, v in env.items() if k.startswith(_ENV)}
    if not plain.get("NAME"):
        return None
    tune = plain.get("TUNE_POD_ROUTES", "")
    try:
        spec: dict[str, Any] = {"mode": plain.get("MODE") or "auto", "podCIDRType": plain.get("POD_CIDR_TYPE", ""),
                                "tunePodRoutes": _go_parse_bool(tune)}  # fmt: skip
    except ValueError as e:
        raise InitExit(f"ENV {_ENV}TUNE_POD_ROUTES {tune}: {e}") from None
    spec |= {"podDefaultRouteNIC": "", "podMACPrefix": ""}
    hijack = env.get(f"{_ENV}HIJACK_CIDR", "")
    for junk in ('"', "\\", "[", "]"):
        hijack = hijack.replace(junk, "")
    try:
        spec["hijackCIDR"] = [ip.parse_ip_or_cidr(c) for c in hijack.replace(",", " ").split()]
    except ip.GoError as e:
        raise InitExit(f"ENV {_ENV}HIJACK_CIDR invalid: {e}") from None
    spec["policyRoutes"] = _init_routes(env.get(f"{_ENV}POLICY_ROUTES", ""))
    spec["vethLinkAddress"] = plain.get("VETH_LINK_ADDRESS", "")
    mtu = plain.get("VETH_MTU", "")
    if not re.fullmatch("[+-]?[0-9]+", mtu or "1500"):  # strconv.Atoi
        raise InitExit(f"ENV {_ENV}VETH_MTU {mtu}: strconv.Atoi: parsing {am.go_quote(mtu)}: invalid syntax")
    spec["vethMTU"] = int(mtu or "1500")
    if spec["vethMTU"] <= 0:
        raise InitExit(f"ENV {_ENV}VETH_MTU {mtu}: veth MTU must be greater than 0")
    spec = {k: v for k, v in spec.items() if v != []}  # omitempty
    return {
        "apiVersion": "spiderpool.spidernet.io/v2beta1",
        "kind": "SpiderCoordinator",
        "metadata": {"name": plain["NAME"]},
        "spec": spec,
    }


def _init_routes(text: str) -> list[dict[str, Any]]:
    """config.go:162-174: the routes' JSON (backslashes dropped), each dst as ParseIPOrCIDR prints it."""
    if not text:
        return []
    try:
        routes = json.loads(text.replace("\\", ""))
        if not isinstance(routes, list | None) or not all(isinstance(r, dict) for r in routes or []):
            raise ValueError("json: cannot unmarshal into []v2beta1.Route")
    except ValueError as e:  # encoding/json's message is not ported
        raise InitExit(f"ENV {_ENV}POLICY_ROUTES invalid: {e}") from None
    out = []
    for route in routes or []:
        try:
            out.append({"dst": ip.parse_ip_or_cidr(route.get("dst", "")), "gw": route.get("gw", "")})
        except ip.GoError as e:
            raise InitExit(f"ENV {_ENV}POLICY_ROUTES invalid route dst: {e}") from None
    return out


def default(coordinator: dict[str, Any]) -> dict[str, Any]:
    """The SpiderCoordinator as the mutating webhook returns it (coordinator_mutate.go:23-88)."""
    out = copy.deepcopy(coordinator)
    spec, meta = out.setdefault("spec", {}), out.setdefault("metadata", {})
    for key, value in (("mode", "auto"), ("tunePodRoutes", True), ("hostRuleTable", 500), ("podRPFilter", 0),
                       ("txQueueLen", 0), ("vethLinkAddress", ""), ("vethMTU", 1500)):  # fmt: skip
        if spec.get(key) is None:
            spec[key] = value
    if meta.get("deletionTimestamp") or spec.get("podCIDRType") is None:
        return out
    with contextlib.suppress(ip.GoError):
        for i, cidr in enumerate(spec.get("hijackCIDR") or []):
            if "/" not in cidr:
                address, _ = ip.netip_addr(cidr)
                spec["hijackCIDR"][i] = f"{cidr}/{address.max_prefixlen}"
        for route in spec.get("policyRoutes") or []:
            route["dst"] = ip.parse_ip_or_cidr(route.get("dst", ""))
        if FINALIZER not in (meta.get("finalizers") or []):
            meta["finalizers"] = [*(meta.get("finalizers") or []), FINALIZER]
    return out


def spec_error(spec: dict[str, Any], require_optional_type: bool) -> am.FieldError | None:
    """ValidateCoordinatorSpec (coordinator_validate.go:56-109)."""
    cidr_type = spec.get("podCIDRType")
    if require_optional_type and cidr_type is None:
        return am.not_supported("spec.podCIDRType", "", SUPPORTED_POD_CIDR_TYPES)
    if cidr_type is not None and cidr_type not in SUPPORTED_POD_CIDR_TYPES:
        return am.not_supported("spec.podCIDRType", cidr_type, SUPPORTED_POD_CIDR_TYPES)
    for i, cidr in enumerate(spec.get("hijackCIDR") or []):  # :123-140
        try:
            ip.parse_ip_or_cidr(cidr)
        except ip.GoError as e:
            return am.FieldError(am.INVALID, f"spec.extraCIDR[{i}]", cidr, str(e))
    if error := _routes_error(spec.get("policyRoutes") or []):
        return error
    if error := _mac_prefix_error(spec.get("podMACPrefix")):
        return error
    if (spec.get("txQueueLen") or 0) < 0:
        return am.FieldError(am.INVALID, "spec.txQueueLen", spec["txQueueLen"], "txQueueLen can't be less than 0")
    rp_filter = spec.get("podRPFilter")
    if require_optional_type and rp_filter is None:
        return am.not_supported("spec.podRPFilter", None, ["0", "1", "2"])
    if rp_filter is not None and rp_filter >= 0 and rp_filter not in (0, 1, 2):  # :207-218
        return am.not_supported("spec.podRPFilter", rp_filter, ["0", "1", "2"])
    link = spec.get("vethLinkAddress")
    if link:
        try:
            ip.netip_addr(link)
        except ip.GoError:
            return am.FieldError(am.INVALID, "spec.vethLinkAddress", link, "vethLinkAddress is an invalid IP address")
    if spec.get("vethMTU") is not None and spec["vethMTU"] <= 0:
        return am.FieldError(am.INVALID, "spec.vethMTU", spec["vethMTU"], "vethMTU must be greater than 0")
    return None


def _routes_error(routes: list[dict[str, Any]]) -> am.FieldError | None:
    """validateCoordinatorPolicyRoutes (coordinator_validate.go:142-173)."""
    for i, route in enumerate(routes):
        dst, gw = route.get("dst", ""), route.get("gw", "")
        try:
            prefix, _ = ip.netip_prefix(dst)
        except ip.GoError as e:
            return am.FieldError(am.INVALID, f"spec.policyRoutes[{i}].dst", dst, str(e))
        try:
            address, _ = ip.netip_addr(gw)
        except ip.GoError:
            return am.FieldError(am.INVALID, f"spec.policyRoutes[{i}].gw", gw, "gw is an invalid IP address")
        if prefix.version != address.version:
            shown = am.GoSyntax(f"v2beta1.Route{{Dst:{am.go_quote(dst)}, Gw:{am.go_quote(gw)}}}")
            return am.FieldError(am.INVALID, f"spec.policyRoutes[{i}]", shown, "dst and gw must use the same IP family")
    return None


def _mac_prefix_error(prefix: str | None) -> am.FieldError | None:
    """validateCoordinatorPodMACPrefix (coordinator_validate.go:175-205): two bytes in hex (strconv.ParseInt base 16,
    a sign allowed), the first one's lowest bit 0 as "%08b" prints it."""
    if not prefix:
        return None
    parts = prefix.split(":")
    if len(parts) != 2 or not all(len(p) == 2 and re.fullmatch("[+-]?[0-9a-fA-F]+", p) for p in parts):
        return am.FieldError(am.INVALID, "spec.podMACPrefix", prefix, "not a valid MAC prefix")
    if f"{int(parts[0], 16):08b}"[7] != "0":
        detail = "not a unicast MAC: the lowest bit of the first byte must be 0"
        return am.FieldError(am.INVALID, "spec.podMACPrefix", prefix, detail)
    return None


def validate(coordinator: dict[str, Any]) -> am.StatusError | None:
    """ValidateCreate and ValidateUpdate (coordinator_webhook.go:58-101, coordinator_validate.go:30-54): the same
    check of the new object's spec."""
    error = spec_error(coordinator.get("spec") or {}, True)
    return am.new_invalid(GROUP_KIND, coordinator["metadata"]["name"], [error]) if error else None

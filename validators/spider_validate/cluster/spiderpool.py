"""The shapes of Spiderpool's and Multus' objects that the suites, the audit, the watch and the lab read and write.

- Pool annotations: Spiderpool pkg/constant/annotation.go (AnnoPodIPPool "ipam.spidernet.io/ippool", one pool list
  for the default interface; AnnoPodIPPools "ipam.spidernet.io/ippools", a list per interface).
- A full pool's error: Spiderpool pkg/constant/errors.go, ErrIPUsedOut "all IP addresses used out".
- SpiderIPPool status.allocatedIPs: a JSON string of {ip: {"pod": "ns/name", "podUid": ..., ...}}.
- Multus: "k8s.v1.cni.cncf.io/networks" (secondary networks), "v1.multus-cni.io/default-network", and the
  "k8s.v1.cni.cncf.io/network-status" it writes (a JSON list of {interface, ips, ...}).
"""

from __future__ import annotations

import json
from typing import Any

IPPOOL = "ipam.spidernet.io/ippool"
IPPOOLS = "ipam.spidernet.io/ippools"
USED_OUT = "all IP addresses used out"
NETWORKS = "k8s.v1.cni.cncf.io/networks"
DEFAULT_NETWORK = "v1.multus-cni.io/default-network"
NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"


def pool_annotation(interface: str, pools: tuple[str, ...]) -> dict[str, str]:
    """The annotation asking for `pools` on the default interface (eth0) or a secondary one."""
    if interface == "eth0":
        return {IPPOOL: json.dumps({"ipv4": list(pools)})}
    return {IPPOOLS: json.dumps([{"interface": interface, "ipv4": list(pools)}])}


def requested_pools(pod: dict[str, Any]) -> list[str]:
    """The IPv4 pools a pod's annotations ask for."""
    annotations = pod.get("metadata", {}).get("annotations", {})
    if IPPOOL in annotations:
        return list(json.loads(annotations[IPPOOL]).get("ipv4", []))
    if IPPOOLS in annotations:
        return [name for entry in json.loads(annotations[IPPOOLS]) for name in entry.get("ipv4", [])]
    return []


def allocated_ips(pool: dict[str, Any]) -> dict[str, Any]:
    """status.allocatedIPs parsed; ValueError (json.JSONDecodeError) when it is not JSON."""
    return dict(json.loads((pool.get("status", {}) or {}).get("allocatedIPs") or "{}"))


def network_status(pod: dict[str, Any]) -> list[dict[str, Any]]:
    raw = pod.get("metadata", {}).get("annotations", {}).get(NETWORK_STATUS, "[]")
    try:
        status = json.loads(raw)
    except json.JSONDecodeError:
        return []
    return status if isinstance(status, list) else []


def underlay_ip(pod: dict[str, Any], interface: str) -> str:
    """The first IPv4 address of `interface` in the pod's network-status (empty when not there yet)."""
    for entry in network_status(pod):
        if entry.get("interface") == interface:
            ips = [ip for ip in entry.get("ips", []) if ":" not in ip]
            return str(ips[0]) if ips else ""
    return ""

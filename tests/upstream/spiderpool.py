"""The rules of Spiderpool v1.2.2 the chart relies on, from spidernet-io/spiderpool tag v1.2.2.

Each function names the upstream file and lines it encodes; tests run the chart's objects through them.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from spider_validate import addresses


#: cmd/spiderpool-init/cmd/config.go:365-384: the default-CNI SpiderMultusConfig spiderpool-init creates when
#: `multus.multusCNI.defaultCniCRName` is set (multus.go:26-29: its cniType is then always "custom"), no labels.
#: client.go:143-156: it creates it unless it exists (AlreadyExists is success).
def init_placeholder(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "spiderpool.spidernet.io/v2beta1",
        "kind": "SpiderMultusConfig",
        "metadata": {"name": name, "namespace": namespace, "annotations": {}},
        "spec": {"cniType": "custom", "enableCoordinator": False},
    }


# pkg/k8s/apis/spiderpool.spidernet.io/v2beta1/spidermultus_types.go:34-76: cniType -> its block's JSON name
_CNI_BLOCKS = {"macvlan": "macvlan", "ipvlan": "ipvlan", "vlan": "vlan", "sriov": "sriov", "ovs": "ovs",
               "ib-sriov": "ibsriov", "ipoib": "ipoib", "custom": "customCNI"}  # fmt: skip


def mutate_multus_config(smc: dict[str, Any]) -> dict[str, Any]:
    """pkg/multuscniconfig/multusconfig_mutate.go:15-69 (the fields validation looks at)."""
    out = copy.deepcopy(smc)
    spec = out.setdefault("spec", {})
    spec.setdefault("cniType", "custom")  # :21-23
    if spec["cniType"] == "custom" and spec.get("customCNI") is None:  # :39-42
        spec["customCNI"] = ""
    if spec["cniType"] == "custom":  # :46-48
        spec["enableCoordinator"] = False
    block = spec.get(_CNI_BLOCKS[spec["cniType"]])
    if spec["cniType"] in ("macvlan", "ipvlan") and isinstance(block, dict):  # :71-98, :107-134
        block.setdefault("vlanID", 0)
        block.setdefault("mtu", 0)
        block.setdefault("rdmaResourceName", "")
        block.setdefault("ippools", {"ipv4": [], "ipv6": []})
    return out


def validate_multus_config(smc: dict[str, Any]) -> str | None:
    """pkg/multuscniconfig/multusconfig_validate.go:90-171: the error the webhook returns, None when accepted."""
    spec = smc["spec"]
    cni = spec.get("cniType")
    if cni is None:
        return "CniType must not be nil"
    own = _CNI_BLOCKS[cni]
    if cni != "custom" and spec.get(own) is None:  # :100-102, :137-139
        return f"spec.{own}Config: Required value: no spec.{own}Config specified"
    others = [b for c, b in _CNI_BLOCKS.items() if c != cni and spec.get(b) is not None]  # checkExistedConfig :61-88
    if others:  # :120-122, :157-159
        return f"spec.cniType: Forbidden: the cniType {cni} only supports spec.{own}Config, please remove other CNIs"
    if cni in ("macvlan", "ipvlan") and not (spec[own].get("master") or spec[own].get("bond")):
        return f"spec.{own}Config: Invalid value: master must be set"  # validateVlanCNIConfig
    return None


#: pkg/constant: the finalizer the IPPool mutating webhook adds (pkg/ippoolmanager/ippool_mutate.go).
POOL_FINALIZER = "spiderpool.spidernet.io"


def pool_finalizer_removable(allocated_ips: dict[str, Any] | None) -> bool:
    """pkg/ippoolmanager/ippool_informer.go:300-309: a dying pool loses its finalizer only with no allocation."""
    return not allocated_ips


def pool_update_refusal(pool: dict[str, Any], others: list[dict[str, Any]], allocated: dict[str, str]) -> str | None:
    """pkg/ippoolmanager/ippool_validate.go: why the IPPool webhook refuses a create or update, or None.

    :231-268 (validateIPPoolAvailableIPs): no address shared with another pool of the same subnet;
    :119-145 (validateIPPoolIPInUse): no allocated address removed from the pool.
    """
    mine = set(addresses.expand(pool["spec"]["ips"])) - set(addresses.expand(pool["spec"].get("excludeIPs", [])))
    for other in others:
        if other["spec"]["subnet"] == pool["spec"]["subnet"] and mine & set(addresses.expand(other["spec"]["ips"])):
            return f"overlap with IPPool {other['metadata']['name']}"
    for ip, pod in allocated.items():
        if ip not in mine:
            return f"remove an IP address {ip} that is being used by Pod {pod}"
    return None


#: cmd/spiderpool-controller/cmd/clean.go:108-141: `spiderpool-controller clean` (the chart's pre-delete hook)
#: strips the finalizers of pools, endpoints and coordinators and deletes every object of these kinds, then every
#: CRD of the spiderpool.spidernet.io group and of sriovnetwork.openshift.io except sriovoperatorconfigs (:280-298).
CLEANED_KINDS = ["SpiderIPPool", "SpiderSubnet", "SpiderEndpoint", "SpiderReservedIP", "SpiderMultusConfig",
                 "SpiderCoordinator"]  # fmt: skip
CLEANED_CRD_GROUPS = {"spiderpool.spidernet.io", "sriovnetwork.openshift.io"}
KEPT_CRDS = {"sriovoperatorconfigs.sriovnetwork.openshift.io"}


@dataclass(frozen=True)
class PodSpec:
    """What the IPAM looks at in a pod: its node, namespace, labels and annotations."""

    name: str
    namespace: str
    node: str
    annotations: dict[str, str]
    labels: dict[str, str]


def _parse_network(value: str, default_ns: str) -> tuple[str, str]:
    """multus ParsePodNetworkAnnotation, for the "ns/name" and "name" forms the chart writes."""
    ns, _, name = value.rpartition("/")
    return (ns or default_ns, name)


def pool_candidates(pod: PodSpec, nic: str, netconf_pools: list[str], pools: dict[str, dict[str, Any]]) -> list[str]:
    """pkg/ipam/pool_selections.go:29-88: the pools the IPAM considers for one interface, before filtering.

    Order: `ipam.spidernet.io/ippools` (:50-52, the entry of this interface), `ipam.spidernet.io/ippool` (:55-61),
    the namespace's default pools (:65-71, not used by the chart), the network's own `ippools` (:74-80, written by
    the SpiderMultusConfig into the attachment's IPAM config), then pools with `spec.default: true` (:83-87).
    """
    if "ipam.spidernet.io/ippools" in pod.annotations:
        entries = json.loads(pod.annotations["ipam.spidernet.io/ippools"])
        return next((list(e.get("ipv4", [])) for e in entries if e.get("interface") == nic), [])
    if "ipam.spidernet.io/ippool" in pod.annotations:
        return list(json.loads(pod.annotations["ipam.spidernet.io/ippool"]).get("ipv4", []))
    if netconf_pools:
        return list(netconf_pools)
    return [name for name, p in pools.items() if p["spec"].get("default")]


def pool_filter_error(
    pool: dict[str, Any], pod: PodSpec, nic: str, agent_namespace: str, cluster_network: str | None
) -> str | None:
    """pkg/ipam/allocate.go:705-866 (selectByPod): why a candidate pool is filtered out for this pod, or None."""
    spec = pool["spec"]
    name = pool["metadata"]["name"]
    if pool["metadata"].get("deletionTimestamp"):  # :709-711
        return f"terminating IPPool {name}"
    if spec.get("disable"):  # :713-715
        return f"disabled IPPool {name}"
    if spec.get("nodeName") and pod.node not in spec["nodeName"]:  # :726-729
        return f"unmatched Node name of IPPool {name}"
    if spec.get("namespaceName") and pod.namespace not in spec["namespaceName"]:  # :747-750
        return f"unmatched Namespace name of IPPool {name}"
    if nic == "eth0":  # :789-815: the default network: the pod's annotation, else multus' clusterNetwork
        value = pod.annotations.get("v1.multus-cni.io/default-network") or cluster_network
        if value is None:
            return "cluster-network multus isn't set"
        multus = _parse_network(value, agent_namespace)  # :809-814: no namespace means Spiderpool's own
    else:  # :816-848: the k8s.v1.cni.cncf.io/networks entry of this interface (net1 for the first one)
        entries = [e.strip() for e in pod.annotations.get("k8s.v1.cni.cncf.io/networks", "").split(",") if e.strip()]
        index = int(nic.removeprefix("net")) - 1
        if index >= len(entries):
            return f"no matched multus object for NIC '{nic}'"
        multus = _parse_network(entries[index], pod.namespace)
    if spec.get("multusName"):  # :852-866
        expected = [m if "/" in m else f"{agent_namespace}/{m}" for m in spec["multusName"]]
        if f"{multus[0]}/{multus[1]}" not in expected:
            return f"the spec.multusName {spec['multusName']} in the IPPool {name} is not matched with {multus}"
    return None


def usable_pools(
    pod: PodSpec,
    nic: str,
    netconf_pools: list[str],
    pools: dict[str, dict[str, Any]],
    agent_namespace: str,
    cluster_network: str | None,
) -> list[str]:
    """The pools an address can come from; empty means the CNI ADD fails (allocate.go:697-699, all filtered out)."""
    candidates = pool_candidates(pod, nic, netconf_pools, pools)
    return [
        name
        for name in candidates
        if name in pools and pool_filter_error(pools[name], pod, nic, agent_namespace, cluster_network) is None
    ]

"""The rules of Spiderpool v1.2.2 the chart relies on, from spidernet-io/spiderpool tag v1.2.2.

Each function names the upstream file and lines it encodes; tests run the chart's objects through them.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from tests.upstream import apimachinery, spiderpool_coordinator


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
    if spec["cniType"] == "custom":  # :45-48: no coordinator for a custom CNI
        spec["enableCoordinator"] = False
        spec.pop("coordinator", None)
    else:  # :49-51
        spec["coordinator"] = _coordinator_defaults(spec.get("coordinator"))
    if spec.get("chainCNIJsonData") is None:  # :53-55
        spec["chainCNIJsonData"] = []
    meta = out.setdefault("metadata", {})
    for key in (ANNO_RDMA_INJECT, ANNO_NETWORK_INJECT):  # :57-67: the injection annotations copied as labels
        if key in (meta.get("annotations") or {}):
            meta["labels"] = {**(meta.get("labels") or {}), key: meta["annotations"][key]}
    block = spec.get(_CNI_BLOCKS[spec["cniType"]])
    if spec["cniType"] == "vlan" and isinstance(block, dict):  # :136-160
        block.setdefault("vlanMode", "manual")
        if block["vlanMode"] == "manual":
            block.setdefault("vlanID", 0)
    if spec["cniType"] in ("macvlan", "ipvlan", "vlan") and isinstance(block, dict):  # :71-98, :107-134
        block.setdefault("vlanID", 0)
        block.setdefault("mtu", 0)
        block.setdefault("rdmaResourceName", "")
        block.setdefault("ippools", {"ipv4": [], "ipv6": []})
    return out


def _coordinator_defaults(block: dict[str, Any] | None) -> dict[str, Any]:
    """setCoordinatorDefaultConfig (multusconfig_mutate.go:273-320): a missing block is a full default one; in a
    given block tunePodRoutes defaults to false."""
    if block is None:
        return {"mode": "auto", "hijackCIDR": [], "policyRoutes": [], "vethLinkAddress": "", "podMACPrefix": "",
                "podDefaultRouteNIC": "", "podRPFilter": 0, "tunePodRoutes": True}  # fmt: skip
    defaults = {"mode": "auto", "hijackCIDR": [], "policyRoutes": [], "podMACPrefix": "", "podDefaultRouteNIC": "",
                "tunePodRoutes": False, "txQueueLen": 0, "podRPFilter": 0}  # fmt: skip
    return {**block, **{k: v for k, v in defaults.items() if block.get(k) is None}}


# pkg/multuscniconfig/multusconfig_validate.go:27-37: the field paths its errors name
_FIELD = {"macvlan": "spec.macvlanConfig", "ipvlan": "spec.ipvlanConfig", "vlan": "spec.vlan",
          "sriov": "spec.sriovConfig", "ib-sriov": "spec.ibsriovConfig", "ipoib": "spec.ipoibConfig",
          "ovs": "spec.ovsConfig", "custom": "spec.customCniTypeConfig"}  # fmt: skip
ANNO_CR_NAME, ANNO_CNI_VERSION = "multus.spidernet.io/cr-name", "multus.spidernet.io/cni-version"  # constant/k8s.go
ANNO_RDMA_INJECT, ANNO_NETWORK_INJECT = (
    "cni.spidernet.io/rdma-resource-inject",
    "cni.spidernet.io/network-resource-inject",
)
CNI_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")  # cmd/spiderpool/cmd/cni_types.go SupportCNIVersions


def _vlan_id(value: int | None) -> str | None:
    """validateVlanID (:390-398)."""
    if value is not None and not 0 <= value <= 4094:
        return f"invalid vlanId {value}, please make sure vlanId in range [0,4094]"
    return None


def _masters(master: list[str], bond: dict[str, Any] | None) -> str | None:
    """validateVlanCNIConfig (:375-388)."""
    if not master:
        return "master can't be empty"
    if len(master) >= 2 and bond is None:
        return "the bond property is nil with multiple Interfaces"
    if len(master) >= 2 and not bond.get("name"):  # type: ignore[union-attr]
        return "bond name can't be empty"
    return None


def _vlan_mode(mode: str | None, vlan_id: int | None) -> str | None:
    """validateVlanMode (:400-419)."""
    if mode is None:
        return "vlanMode must not be nil"
    if mode == "manual":
        return "vlanId must not be nil when vlanMode is manual" if vlan_id is None else None
    if mode == "auto":
        return "vlanId must not be specified when vlanMode is auto" if vlan_id is not None else None
    return f"invalid vlanMode {mode}, supported values are manual and auto"


def _injected_pools(name: str, ns: str, resource: str, pools: dict[str, Any] | None, rdma: bool) -> str | None:
    """utils.go:278-308 ValidateRdmaResouce (rdma) and ValidateNetworkResouce."""
    if rdma and not resource:
        return f"rdmaResourceName can not empty for spidermultusconfig {ns}/{name}"
    if not rdma and not resource:
        return None
    if not pools or not (pools.get("ipv4") or []) + (pools.get("ipv6") or []):
        return f"no any ippools configured for spidermultusconfig {ns}/{name}"
    return None


def _annotation_refusal(smc: dict[str, Any], old: dict[str, Any] | None) -> str | None:
    """validateCustomAnnoNameShouldNotBeChangeable (:469-484) and validateAnnotation (:421-467) without the API read
    of an existing net-attach-def another SpiderMultusConfig owns (the double's store answers that)."""
    annotations = smc.get("metadata", {}).get("annotations") or {}
    new_name = annotations.get(ANNO_CR_NAME)
    if old is not None:
        old_name = (old.get("metadata", {}).get("annotations") or {}).get(ANNO_CR_NAME)
        if old_name is not None and new_name is not None and old_name != new_name:
            return f"metadata.annotations: Invalid value: it's unsupported to change customized Multus net-attach-def resource name from '{old_name}' to '{new_name}'"  # noqa: E501
        if old_name is None and new_name is not None:
            return f"metadata.annotations: Invalid value: it's unsupported to changed Multus net-attach-def '{old['metadata']['name']}' to customized name '{new_name}'"  # noqa: E501
    if new_name is not None and (errors := apimachinery.dns1123_subdomain_errors(new_name)):
        invalid = "metadata.annotations: Invalid value: invalid custom net-attach-def resource name"
        return f"{invalid}, err: [{' '.join(errors)}]"
    version = annotations.get(ANNO_CNI_VERSION)
    if version is not None and version not in CNI_VERSIONS:
        return f"metadata.annotations: Invalid value: unsupported CNI version {version}"
    return None


def validate_multus_config(smc: dict[str, Any], old: dict[str, Any] | None = None) -> str | None:
    """pkg/multuscniconfig/multusconfig_validate.go:40-59 (validate) and :90-373 (validateCNIConfig): the error the
    webhook returns, None when it admits; a coordinator block is ValidateCoordinatorSpec's
    (tests/upstream/spiderpool_coordinator.py)."""
    if refusal := _annotation_refusal(smc, old):
        return refusal
    spec, meta = smc["spec"], smc.get("metadata", {})
    cni = spec.get("cniType")
    if cni is None:
        return "spec.cniType: Invalid value: null: CniType must not be nil"
    annotations = meta.get("annotations") or {}
    inject = {"rdma": ANNO_RDMA_INJECT in annotations, "network": ANNO_NETWORK_INJECT in annotations}
    own, where = _CNI_BLOCKS[cni], _FIELD[cni]
    block = spec.get(own)
    others = [b for c, b in _CNI_BLOCKS.items() if c != cni and spec.get(b) is not None]  # checkExistedConfig :61-88
    # the Forbidden message names the sriov field for ib-sriov, ipoib and ovs: as upstream writes it
    forbidden_field = _FIELD["sriov"] if cni in ("ib-sriov", "ipoib", "ovs") else where
    forbidden = (
        f"spec.cniType: Forbidden: the cniType {cni} only supports {forbidden_field}, please remove other CNI configs"
    )
    if cni in ("ovs", "custom") and (inject["rdma"] or inject["network"]):
        return f"spec.cniType: Forbidden: the cniType {cni} does not support RDMA resource or network resource injected"
    if cni != "custom" and block is None:
        return f"{where}: Required value: no {where} specified"
    checks: list[str | None] = []
    resource = ""
    required = None  # a missing resourceName or master, checked after the branch's other fields
    if cni in ("macvlan", "ipvlan", "vlan"):
        pools = block.get("ippools") or {}
        checks = [
            _vlan_mode(block.get("vlanMode"), block.get("vlanID")) if cni == "vlan" else None,
            _vlan_id(block.get("vlanID")),
            "MTU must be greater than or equal to 0" if (block.get("mtu") or 0) < 0 else None,
            f"MatchMasterSubnet feature is not supported for {cni}" if pools.get("matchMasterSubnet") else None,
            _masters(block.get("master") or [], block.get("bond")),
        ]
        resource = block.get("rdmaResourceName") or ""
    elif cni == "sriov":
        low, high = block.get("minTxRateMbps"), block.get("maxTxRateMbps")
        checks = [
            _vlan_id(block.get("vlanID")),
            # :223-225 names the macvlan field (and reads its MTU: a nil pointer in Go) for a negative SR-IOV MTU
            "MTU must be greater than or equal to 0" if (block.get("mtu") or 0) < 0 else None,
            "minTxRateMbps must be less than maxTxRateMbps" if None not in (low, high) and low > high else None,
        ]
        resource = block.get("resourceName") or ""
        required = None if resource else f"{where}: Required value: no {where}[resourceName] specified"
    elif cni == "ib-sriov":
        resource = block.get("resourceName") or ""
        required = None if resource else f"{where}: Required value: no {where}[resourceName] specified"
    elif cni == "ipoib":
        resource = block.get("master") or ""
        required = None if resource else f"{where}: Required value: no {where}[master] specified"
    elif cni == "ovs":
        checks = [_vlan_id(block.get("vlan"))]
        for trunk in block.get("trunk") or []:
            low, high, one = trunk.get("minID"), trunk.get("maxID"), trunk.get("id")
            checks += [
                "incorrect trunk minID parameter" if low is not None and low > 4094 else None,
                "incorrect trunk maxID parameter" if high is not None and high > 4094 else None,
                "minID is greater than maxID in trunk parameter" if high is not None and high < (low or 0) else None,
                "incorrect trunk id parameter" if one is not None and one > 4096 else None,
            ]
    if failed := next((c for c in checks if c), None):
        return f"{where}: Invalid value: {failed}"
    if required:
        return required
    if others:
        return forbidden
    if cni in ("macvlan", "ipvlan", "vlan", "sriov", "ib-sriov", "ipoib"):
        for kind in ("rdma", "network"):
            if inject[kind] and (failed := _injected_pools(meta.get("name", ""), meta.get("namespace", ""), resource,
                                                            block.get("ippools"), kind == "rdma")):  # fmt: skip
                return f"{where}: Invalid value: {failed}"
    custom = spec.get("customCNI")
    if cni == "custom" and custom:
        try:
            json.loads(custom)
        except ValueError:
            return "spec.customCniTypeConfig: Forbidden: customCniConfig isn't a valid JSON encoding"
    coordinator = spec.get("coordinator")  # :357-362, without requiring podCIDRType and podRPFilter
    if coordinator is not None and (error := spiderpool_coordinator.spec_error(coordinator, False)):
        return str(error)
    for conf in spec.get("chainCNIJsonData") or []:  # libcni ConfFromBytes: JSON with a "type"
        try:
            parsed = json.loads(conf)
        except ValueError:
            return f"spec.chainCNIJsonData: Forbidden: invalid {conf}: error parsing configuration"
        if not isinstance(parsed, dict) or not parsed.get("type"):
            return f"spec.chainCNIJsonData: Forbidden: invalid {conf}: error parsing configuration: missing 'type'"
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

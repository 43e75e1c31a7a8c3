"""The SR-IOV network operator's admission of a SriovNetworkNodePolicy, from k8snetworkplumbingwg/sriov-network-operator
v1.3.0 (the webhook image Spiderpool's chart 1.2.2 ships, sriov.image.webhook.tag).

pkg/webhook/validate.go:117-146 (validateSriovNetworkNodePolicy): the static checks, then the dynamic ones.
:148-229 (staticValidateSriovNetworkNodePolicy), each refusal with its message: the resource name `^[a-zA-Z0-9_]+$`; a
nicSelector with a vendor, deviceID, pfNames, rootDevices or netFilter; unless DEV_MODE=TRUE, a vendor and model in
the supported NIC list (api/v1/helper.go:100-129 over NicIDMap, the `supported-nic-ids` ConfigMap's "vendor device
vf-device" entries); each `pf#first-last` of pfNames parsed, first <= last < numVfs; vfio-pci conflicts with isRdma;
linkType ib needs isRdma; vdpa needs deviceType netdevice and eswitchMode switchdev.
:231-262 (dynamicValidateSriovNetworkNodePolicy): the nodes listed with the policy's nodeSelector as a label selector
(every key equal); no such node: "no matched node is selected by the nodeSelector in CR NAME". :263-270 and
validatePolicyForNodeState (:300-348: numVfs against each PF's totalVfs, externally managed PFs, vdpa vendors): only a
node's SriovNetworkNodeState can tell, not modeled.
"""

from __future__ import annotations

import re
from typing import Any

from tests.upstream.scheduling import Node


def _pf_range_refusal(pf: str, num_vfs: int) -> str | None:
    if "#" not in pf:
        return None
    fields = pf.split("#")
    if len(fields) != 2:
        return f"failed to parse {pf} PF name in nicSelector, probably incorrect separator character usage"
    rng = fields[1].split("-")
    if len(rng) != 2:
        return f"failed to parse {pf} PF name nicSelector, probably incorrect range character usage"
    first, last = (int(v) if re.fullmatch(r"[+-]?\d+", v) else None for v in rng)  # strconv.Atoi
    if first is None:
        return f"failed to parse {pf} PF name nicSelector, start range is incorrect"
    if last is None:
        return f"failed to parse {pf} PF name nicSelector, end range is incorrect"
    if last < first:
        return f"failed to parse {pf} PF name nicSelector, end range shall not be smaller than start range"
    if not last < num_vfs:
        return f"failed to parse {pf} PF name nicSelector, end range exceeds the maximum VF index "
    return None


def static_refusal(policy: dict[str, Any], nic_ids: list[str], dev_mode: bool = False) -> str | None:
    """staticValidateSriovNetworkNodePolicy: the error the webhook returns, None when it admits."""
    spec, name = policy["spec"], policy.get("metadata", {}).get("name", "")
    if not re.fullmatch(r"[a-zA-Z0-9_]+", spec.get("resourceName", "")):
        return (
            f'resource name "{spec.get("resourceName", "")}" contains invalid characters, the accepted syntax of the '
            'regular expressions is: "^[a-zA-Z0-9_]+$"'
        )
    nic = spec.get("nicSelector") or {}
    vendor, device = nic.get("vendor", ""), nic.get("deviceID", "")
    if not (vendor or device or nic.get("pfNames") or nic.get("rootDevices") or nic.get("netFilter")):
        return (
            "at least one of these parameters (vendor, deviceID, pfNames, rootDevices or netFilter) has to be defined "
            f"in nicSelector in CR {name}"
        )
    ids = [entry.split(" ") for entry in nic_ids]
    if not dev_mode and vendor:
        if not any(i[0] == vendor for i in ids):
            return f"vendor {vendor} is not supported"
        if device and not any(i[0] == vendor and i[1] == device for i in ids):
            return f"vendor/device {vendor}/{device} is not supported"
    elif not dev_mode and device and not any(i[1] == device for i in ids):
        return f"device {device} is not supported"
    for pf in nic.get("pfNames") or []:
        if refusal := _pf_range_refusal(pf, spec.get("numVfs", 0)):
            return refusal
    device_type, vdpa = spec.get("deviceType", ""), spec.get("vdpaType", "")
    if device_type == "vfio-pci" and spec.get("isRdma"):
        return (
            "'deviceType: vfio-pci' conflicts with 'isRdma: true'; Set 'deviceType' to (string)'netdevice' Or Set "
            "'isRdma' to (bool)'false'"
        )
    if spec.get("linkType", "").lower() == "ib" and not spec.get("isRdma"):
        return "'linkType: ib or IB' requires 'isRdma: true'; Set 'isRdma' to (bool)'true'"
    if device_type != "netdevice" and vdpa in ("virtio", "vhost"):
        fix = "Set 'deviceType' to (string)'netdevice' Or Remove 'vdpaType'"
        return f"'deviceType: {device_type}' conflicts with '{vdpa}'; {fix}"
    if vdpa in ("virtio", "vhost") and spec.get("eSwitchMode") != "switchdev":
        return "vdpa requires the device to be configured in switchdev mode"
    return None


def refusal(policy: dict[str, Any], nodes: list[Node], nic_ids: list[str]) -> str | None:
    """validateSriovNetworkNodePolicy for a create: static, then whether any node is selected."""
    if static := static_refusal(policy, nic_ids):
        return static
    selector = policy["spec"].get("nodeSelector") or {}
    if not [n for n in nodes if all(n.labels.get(k) == v for k, v in selector.items())]:
        return f"no matched node is selected by the nodeSelector in CR {policy['metadata']['name']}"
    return None

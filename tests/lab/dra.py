"""Dynamic Resource Allocation in the double: what Kubernetes and a DRA driver do for a pod that claims a device.

- The resource claim controller (kubernetes pkg/controller/resourceclaim/controller.go, handleClaim): a pod's
  `spec.resourceClaims` entry naming a `resourceClaimTemplateName` gets a ResourceClaim made from the template,
  named `<pod>-<claim>-<5 random characters>` (generateName), annotated `resource.kubernetes.io/pod-claim-name`,
  owned by the pod; the pod's `status.resourceClaimStatuses` records it. An entry naming `resourceClaimName` uses
  that claim.
- The scheduler's DynamicResources plugin (pkg/scheduler/framework/plugins/dynamicresources): the pod's claims are
  allocated together on a node where the pod may run, by the structured allocator (tests/upstream/dra_allocator.py),
  then `status.allocation` is written and the pod added to `status.reservedFor`; on no node: the pod stays Pending
  with a FailedScheduling event "cannot allocate all claims"; an allocation error is that event's message. A pod
  created with `spec.nodeName` bypasses the scheduler: its claims are never allocated and the kubelet does not run
  it (the DRA documentation, "Pre-scheduled Pods").
- The driver, dranet (kubernetes-sigs/dranet pkg/driver/nri_hooks.go, runPodSandbox): once the pod's sandbox runs
  it writes the claim's `status.devices`: the device with the condition Ready / RDMAOnlyDeviceReady (an EFA has no
  network interface). It publishes each EFA node's devices as one ResourceSlice, pool = node, driver `dra.net`
  (the attributes of an EFA as dranet's published slice shows them, tests/fixtures/upstream/dranet-resourceslice-
  p4d.json).
- The garbage collector removes a claim its pod owned once the pod is gone, and with it the allocation.

The double has no RDMA: a pod holding an EFA through its claim sees no device, exactly as a pod that requests the
device plugin's resource does on the double.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.upstream import dra_allocator, scheduling

Obj = dict[str, Any]
DRIVER = "dra.net"
POD_CLAIM_NAME = "resource.kubernetes.io/pod-claim-name"
#: One EFA as dranet publishes it (its attributes copied from dranet's example slice).
EFA_DEVICE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "dranet-resourceslice-p4d.json").read_text()
)["slice"]["spec"]["devices"][0]


def efa_slice(node: str) -> Obj:
    """The ResourceSlice dranet publishes on an EFA node (ResourceSlice names are generated: node-driver-xxxxx)."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-{DRIVER}-{secrets.token_hex(3)[:5]}"},
        "spec": {
            "driver": DRIVER,
            "nodeName": node,
            "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
            "devices": [copy.deepcopy(EFA_DEVICE)],
        },
    }


class Dra:
    """The claim controller, the scheduler's allocation and dranet's status, over the store's objects.

    `get`, `list_` and `put` are the store's; `events(namespace, pod, reason, message)` records an event."""

    def __init__(
        self,
        get: Callable[[str, str, str | None], Obj | None],
        list_: Callable[[str], list[Obj]],
        put: Callable[[Obj], Obj],
        event: Callable[[str, str, str, str], None],
    ) -> None:
        self.get, self.list, self.put, self.event = get, list_, put, event

    def claims_of(self, pod: Obj) -> list[Obj]:
        """The claim controller's pass: the pod's claims, made from their templates where needed."""
        meta, namespace = pod["metadata"], pod["metadata"]["namespace"]
        claims, statuses = [], []
        for entry in pod["spec"].get("resourceClaims", []):
            if entry.get("resourceClaimName"):
                claim = self.get("ResourceClaim", entry["resourceClaimName"], namespace)
                if claim is None:
                    raise LookupError(f'resourceclaim "{entry["resourceClaimName"]}" not found')
            else:
                template = self.get("ResourceClaimTemplate", entry["resourceClaimTemplateName"], namespace)
                if template is None:
                    raise LookupError(f'resourceclaimtemplate "{entry["resourceClaimTemplateName"]}" not found')
                name = f"{meta['name']}-{entry['name']}-{secrets.token_hex(3)[:5]}"
                claim = self.put({
                    "apiVersion": "resource.k8s.io/v1",
                    "kind": "ResourceClaim",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "annotations": {POD_CLAIM_NAME: entry["name"]},
                        "labels": dict((template["spec"].get("metadata") or {}).get("labels") or {}),
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                             "uid": meta.get("uid", ""), "controller": True,
                                             "blockOwnerDeletion": True}],
                    },
                    "spec": copy.deepcopy(template["spec"]["spec"]),
                    "status": {},
                })  # fmt: skip
                statuses.append({"name": entry["name"], "resourceClaimName": name})
            claims.append(claim)
        if statuses:
            pod.setdefault("status", {})["resourceClaimStatuses"] = statuses
        return claims

    def schedule(self, pod: Obj, nodes: list[scheduling.Node]) -> str | None:
        """The node the pod's claims were allocated on (the pod bound there), or None: the pod stays Pending, an
        event says why."""
        meta = pod["metadata"]
        why = ""
        try:
            claims = self.claims_of(pod)
        except LookupError as exc:
            self.event(meta["namespace"], meta["name"], "FailedScheduling", str(exc))
            return None
        if pod["spec"].get("nodeName"):
            unallocated = [c["metadata"]["name"] for c in claims if not c["status"].get("allocation")]
            if unallocated:
                self.event(meta["namespace"], meta["name"], "FailedPrepareDynamicResources",
                           f"claims {', '.join(unallocated)} are not allocated: a pod with spec.nodeName "
                           "bypasses the scheduler, which allocates them")  # fmt: skip
                return None
            return str(pod["spec"]["nodeName"])
        pending = [c for c in claims if not c["status"].get("allocation")]
        others = [c for c in self.list("ResourceClaim") if c not in pending]
        used = dra_allocator.allocated_devices(others)
        slices, classes = self.list("ResourceSlice"), self.list("DeviceClass")
        for node in nodes:
            if not scheduling.schedulable(pod["spec"], node):
                continue
            try:
                results = dra_allocator.allocate(node, pending, classes, slices, used)
            except dra_allocator.AllocationError as exc:
                why = str(exc)
                continue
            if results is None:
                continue
            for claim, allocation in zip(pending, results, strict=True):
                claim["status"]["allocation"] = allocation
            for claim in claims:
                claim["status"].setdefault("reservedFor", []).append(
                    {"resource": "pods", "name": meta["name"], "uid": meta.get("uid", "")}
                )
                self.put(claim)
            return node.name
        message = f"0/{len(nodes)} nodes are available: {why or 'cannot allocate all claims'}"
        self.event(meta["namespace"], meta["name"], "FailedScheduling", message)
        return None

    def prepared(self, pod: Obj) -> None:
        """dranet's runPodSandbox: each allocated device's status on the claim."""
        namespace = pod["metadata"]["namespace"]
        for entry in (pod.get("status") or {}).get("resourceClaimStatuses", []):
            claim = self.get("ResourceClaim", entry["resourceClaimName"], namespace)
            if claim is None:
                continue
            results = claim["status"].get("allocation", {}).get("devices", {}).get("results", [])
            claim["status"]["devices"] = [
                {"driver": r["driver"], "pool": r["pool"], "device": r["device"],
                 "conditions": [{"type": "Ready", "status": "True", "reason": "RDMAOnlyDeviceReady", "message": ""}]}
                for r in results if r["driver"] == DRIVER
            ]  # fmt: skip
            self.put(claim)

    def owned_by(self, pod: Obj) -> list[Obj]:
        """The claims the garbage collector removes with the pod."""
        meta = pod["metadata"]
        return [
            c
            for c in self.list("ResourceClaim")
            if c["metadata"]["namespace"] == meta["namespace"]
            and any(o["kind"] == "Pod" and o["name"] == meta["name"] for o in c["metadata"].get("ownerReferences", []))
        ]

"""The lab's kube-controller-manager, as far as the validator needs it: the StatefulSet controller (a set's pods
NAME-0..N-1, a deleted one recreated under the same name) and the garbage collector's cascade from a StatefulSet to
its pods. Each rule cites kubernetes/kubernetes (pkg/controller/statefulset/stateful_set_utils.go read at
0fe831c3; the control loop's shape is that of every release since).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from spider_validate.cluster.api import ApiError

from tests.lab.store import Store, api_version

# statefulset.kubernetes.io/pod-name and apps.kubernetes.io/pod-index: updateIdentity (stateful_set_utils.go)
# labels every pod of a set with its name and, since PodIndexLabel went beta in 1.28, with its ordinal.
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def owner(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The object's controller reference (apimachinery's metav1.GetControllerOf: the ownerReference with
    controller: true), None for a bare object."""
    return next((ref for ref in obj["metadata"].get("ownerReferences", []) if ref.get("controller")), None)


def new_pod(sts: dict[str, Any], ordinal: int) -> dict[str, Any]:
    """newStatefulSetPod (stateful_set_utils.go): the template's labels, annotations and spec (controller_utils.go
    GetPodFromTemplate), the set as controller (newControllerRef: controller and blockOwnerDeletion true), the name
    getPodName gives (stateful_set_utils.go:95-98, "%s-%d"), and the identity: hostname the pod's name, subdomain
    the set's serviceName (updateIdentity/initIdentity)."""
    meta, template = sts["metadata"], sts["spec"]["template"]
    name = f"{meta['name']}-{ordinal}"
    labels = {**template["metadata"].get("labels", {}), POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)}
    spec = copy.deepcopy(template["spec"])
    spec["hostname"], spec["subdomain"] = name, sts["spec"].get("serviceName", "")
    return {
        "apiVersion": api_version("Pod"),
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": copy.deepcopy(template["metadata"].get("annotations", {})),
            "ownerReferences": [
                {
                    "apiVersion": api_version("StatefulSet"),
                    "kind": "StatefulSet",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


class StatefulSets:
    """The StatefulSet controller: `sync` makes a set's pods exist, `dependents` are what the garbage collector
    deletes with it (the validator deletes with propagationPolicy Background: the set goes at once, then its pods)."""

    def __init__(self, store: Store, create: Callable[[dict[str, Any]], object]) -> None:
        self.store = store
        self.create = create  # the API server's create, admission included, as the controller's client calls it

    def sync(self, namespace: str, name: str) -> None:
        """Create every missing pod of ordinals 0..replicas-1 (stateful_set_control.go's update loop: an ordinal
        without a pod gets newVersionedStatefulSetPod; a pod that was deleted is such an ordinal, so it comes back
        under its name, with a new UID). Nothing in a namespace that is gone: the NamespaceLifecycle admission
        (plugin/pkg/admission/namespace/lifecycle/admission.go) refuses new content there."""
        with self.store.lock:  # the namespace controller snapshots a namespace's objects under this lock
            sts = self.store.find("StatefulSet", name, namespace)
            if sts is None or self.store.find("Namespace", namespace) is None:
                return
            for ordinal in range(sts["spec"].get("replicas", 1)):  # replicas defaults to 1 (apps/v1 defaults)
                if self.store.find("Pod", f"{name}-{ordinal}", namespace) is None:
                    try:
                        self.create(new_pod(sts, ordinal))
                    except ApiError:
                        return  # the controller requeues the set; an injected API fault stops this pass

    def pod_gone(self, pod: dict[str, Any]) -> None:
        """A deleted pod's set, if it has one, is synced again (its pod informer's delete handler)."""
        ref = owner(pod)
        if ref and ref["kind"] == "StatefulSet":
            self.sync(pod["metadata"]["namespace"], ref["name"])

    def dependents(self, sts: dict[str, Any]) -> list[str]:
        """The names of the pods whose controller is this set (by UID, as the garbage collector's graph links
        them: pkg/controller/garbagecollector/graph_builder.go)."""
        uid = sts["metadata"]["uid"]
        with self.store.lock:
            return [
                pod["metadata"]["name"]
                for pod in self.store.of_kind("Pod")
                if pod["metadata"]["namespace"] == sts["metadata"]["namespace"] and (owner(pod) or {}).get("uid") == uid
            ]

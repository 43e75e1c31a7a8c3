"""Helm 4's hook execution order, from helm/helm v4.1.4 (the helm binary the tests run).

- pkg/release/v1/util/manifest_sorter.go:80-84: templates are read in the order of their sorted paths, and (:141-145)
  the documents of one file in file order; :164-201: `helm.sh/hook` is split on ",", trimmed and lower-cased, and a
  document with an unknown event is skipped; :227-233: the weight is `strconv.Atoi(helm.sh/hook-weight)`, 0 when
  absent or not a number; :109 and kind_sorter.go:131-165: the hooks are then stably sorted by kind in
  `InstallOrder` (kind_sorter.go:31-70; unknown kinds last, alphabetically).
- pkg/action/hooks.go:65-74: the hooks of one event, `sort.Stable(hookByWeight)`; :168-177: by weight, ties by name.
  Each hook is created and waited for (:102-120, a Job until it completes) before the next one starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.chart import Rendered

INSTALL_ORDER = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
    "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
    "IngressClass", "Ingress", "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
]  # fmt: skip
EVENTS = {
    "pre-install", "post-install", "pre-delete", "post-delete", "pre-upgrade", "post-upgrade", "pre-rollback",
    "post-rollback", "test", "test-success",
}  # fmt: skip


@dataclass(frozen=True)
class Hook:
    kind: str
    name: str
    weight: int
    events: tuple[str, ...]
    source: str


def _weight(value: object) -> int:
    """strconv.Atoi: an optional sign and decimal digits, nothing else; anything else is weight 0."""
    return int(value) if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value) else 0


def hooks(rendered: list[Rendered]) -> list[Hook]:
    """The release's hooks in the order Helm stores them (path, document, then kind)."""
    found = []
    for _, r in sorted(enumerate(rendered), key=lambda p: (p[1].source, p[0])):
        annotations = (r.obj.get("metadata") or {}).get("annotations") or {}
        if "helm.sh/hook" not in annotations:
            continue
        events = tuple(e.strip().lower() for e in str(annotations["helm.sh/hook"]).split(","))
        if not set(events) <= EVENTS:
            continue
        weight = _weight(annotations.get("helm.sh/hook-weight"))
        found.append(Hook(r.obj["kind"], r.obj["metadata"]["name"], weight, events, r.source))

    def kind_rank(h: Hook) -> tuple[int, str]:
        return (INSTALL_ORDER.index(h.kind), "") if h.kind in INSTALL_ORDER else (len(INSTALL_ORDER), h.kind)

    return sorted(found, key=kind_rank)


def execution_order(rendered: list[Rendered], event: str) -> list[Hook]:
    """The hooks Helm runs for one event, one after the other, in this order."""
    return sorted((h for h in hooks(rendered) if event in h.events), key=lambda h: (h.weight, h.name))

"""Where the scheduler may place a pod, from kubernetes/kubernetes v1.33.

- staging/src/k8s.io/component-helpers/scheduling/corev1/nodeaffinity/nodeaffinity.go (NodeSelector.Match):
  `requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms` are ORed, the `matchExpressions` of one term
  ANDed; operators In, NotIn, Exists, DoesNotExist (a missing label is "not in" any list).
- pkg/scheduler/framework/plugins/nodeaffinity: `spec.nodeSelector` must match too (every key equal).
- pkg/scheduler/framework/plugins/tainttoleration: a NoSchedule taint needs a toleration (Exists matches any value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Node:
    name: str
    labels: dict[str, str]
    taints: list[dict[str, str]] = field(default_factory=list)


def _expression(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values", [])
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise ValueError(f"operator {op} not modelled")


def _tolerated(taint: dict[str, str], tolerations: list[dict[str, Any]]) -> bool:
    for t in tolerations:
        if t.get("effect") not in (None, "", taint["effect"]):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, "", taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def schedulable(pod_spec: dict[str, Any], node: Node) -> bool:
    """True when the pod (a pod template's spec) may run on the node."""
    if any(node.labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required and not any(
        all(_expression(e, node.labels) for e in term.get("matchExpressions", []))
        for term in required["nodeSelectorTerms"]
    ):
        return False
    return all(_tolerated(t, pod_spec.get("tolerations") or []) for t in node.taints if t["effect"] == "NoSchedule")


def selector_matches(selector: dict[str, Any], node: Node) -> bool:
    """A v1.NodeSelector (nodeaffinity.go, NewNodeSelector and Match): terms ORed; in a term, `matchExpressions` on
    the labels and `matchFields` on `metadata.name` (the only field supported) ANDed; a term with neither matches no
    node."""
    fields = {"metadata.name": node.name}
    return any(
        (term.get("matchExpressions") or term.get("matchFields"))
        and all(_expression(e, node.labels) for e in term.get("matchExpressions", []))
        and all(_expression(e, fields) for e in term.get("matchFields", []))
        for term in selector.get("nodeSelectorTerms", [])
    )

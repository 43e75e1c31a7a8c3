"""The SR-IOV network operator's admission of a SriovNetworkNodePolicy, from k8snetworkplumbingwg/sriov-network-operator
v1.3.0 (the webhook image Spiderpool's chart 1.2.2 ships, sriov.image.webhook.tag).

pkg/webhook/validate.go:231-262 (dynamicValidateSriovNetworkNodePolicy): the nodes listed with the policy's
nodeSelector as a label selector (every key equal); no such node: "no matched node is selected by the nodeSelector
in CR NAME", and the policy is refused. :263-270: a selected node's SriovNetworkNodeState must also report one of
the policy's PFs, which only a node can tell.
"""

from __future__ import annotations

from typing import Any

from tests.upstream.scheduling import Node


def refusal(policy: dict[str, Any], nodes: list[Node]) -> str | None:
    selector = policy["spec"].get("nodeSelector") or {}
    if not [n for n in nodes if all(n.labels.get(k) == v for k, v in selector.items())]:
        return f"no matched node is selected by the nodeSelector in CR {policy['metadata']['name']}"
    return None

"""The lab's kube-proxy: each Service's ClusterIP DNATed to its ready backends with nftables, in every node."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tests.lab import netns
from tests.lab.store import Store

if TYPE_CHECKING:
    from tests.lab.kubelet import LabPod

SERVICE_NET = ipaddress.ip_network("198.19.0.0/24")

# kube-proxy's nat table in a node: DNAT before routing, masquerade what it DNATed.
NODE_TABLE = (
    "table ip lab {\n"
    " chain pre { type nat hook prerouting priority -100; }\n"
    " chain post { type nat hook postrouting priority 100; ct status dnat masquerade; }\n}\n"
)


class Proxy:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.node_namespaces: list[str] = []

    def add_node(self, ns: str) -> None:
        netns.sh("nft", "-f", "-", ns=ns, stdin=NODE_TABLE)
        self.node_namespaces.append(ns)

    def sync(self, pods: Iterable[LabPod]) -> None:
        """Rewrite every node's DNAT rules from the Services and the running pods they select."""
        with self.store.lock:
            running = [p for p in pods if p.ip and p.obj["status"]["phase"] == "Running"]
            rules = []
            for svc in self.store.of_kind("Service"):
                selector = svc["spec"].get("selector", {})
                backends = sorted(
                    p.ip
                    for p in running
                    if p.obj["metadata"]["namespace"] == svc["metadata"]["namespace"]
                    and all(p.obj["metadata"]["labels"].get(k) == v for k, v in selector.items())
                )
                if not backends:
                    continue
                for port in svc["spec"]["ports"]:
                    mapping = ", ".join(f"{i} : {ip}" for i, ip in enumerate(backends))
                    rules.append(
                        f"add rule ip lab pre ip daddr {svc['spec']['clusterIP']} tcp dport {port['port']} "
                        f"dnat to numgen random mod {len(backends)} map {{ {mapping} }} : {port['targetPort']}"
                    )
            script = "flush chain ip lab pre\n" + "\n".join(rules) + "\n"
            for ns in self.node_namespaces:
                netns.sh("nft", "-f", "-", ns=ns, stdin=script)

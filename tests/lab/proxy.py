"""The lab's kube-proxy: each Service's ClusterIP DNATed to its ready backends with nftables, in every node.

As kube-proxy, it rewrites the nodes' rules when they change, not at every pod: `sync` (at each pod's start or
removal) only computes them; `apply` writes changed rules into every node before any pod's traffic can meet them
(the kubelet's exec calls it). Writing them at every sync cost each pod start an nft run per node under the store's
lock: about 130 at 64 nodes, a second or more a pod, every API call waiting meanwhile.
"""

from __future__ import annotations

import ipaddress
import threading
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
        self.wanted = self.applied = rules_script([])  # what the last sync computed; what every node has
        self._applying = threading.Lock()

    def add_node(self, ns: str) -> None:
        netns.sh("nft", "-f", "-", ns=ns, stdin=NODE_TABLE)
        self.node_namespaces.append(ns)

    def sync(self, pods: Iterable[LabPod]) -> None:
        """The nodes' DNAT rules from the Services and the running pods they select (written by `apply`)."""
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
            self.wanted = rules_script(rules)

    def apply(self) -> None:
        """Every node's rules made the last sync's, when they differ (before a pod's traffic: an exec)."""
        with self._applying:
            script = self.wanted
            if script != self.applied:
                for ns in self.node_namespaces:
                    netns.sh("nft", "-f", "-", ns=ns, stdin=script)
                self.applied = script


def rules_script(rules: list[str]) -> str:
    return "flush chain ip lab pre\n" + "\n".join(rules) + "\n"

"""The lab's Spiderpool: its install as the API shows it, SpiderIPPools with their status, allocation and release
of a pod's address with its SpiderEndpoint, and the "used out" event of a pod whose pools are full.

Candidate pools as Spiderpool's IPAM orders them for the pod's one interface, eth0 (pkg/ipam/pool_selections.go:29-88,
tests/upstream/spiderpool.py `pool_candidates`): the pod's pool annotations, else the network's own pools; then
filtered by the pool's nodeName (pkg/ipam/allocate.go:726-729).
"""

from __future__ import annotations

import builtins
import ipaddress
import json
from typing import TYPE_CHECKING, Any

from spider_validate.addresses import expand
from spider_validate.names import ATTACHMENT_LABEL
from spider_validate.spiderpool import USED_OUT, allocated_ips

from tests.lab.store import Store, api_version
from tests.upstream.spiderpool import PodSpec, pool_candidates

if TYPE_CHECKING:
    from tests.lab.kubelet import LabPod

NODE_NET = ipaddress.ip_network("198.18.0.0/24")  # the fabric of the nodes, and the subnet of the pools
NETWORK = ("kube-system", "macvlan-eth0")  # the SpiderMultusConfig of the lab's underlay
OTHER_UID = "00000000-0000-0000-0000-00000000dead"


class Ipam:
    def __init__(self, store: Store) -> None:
        self.store = store

    def install(self, nodes: int) -> None:
        """What a healthy Spiderpool install shows the API: CRDs, ready agent and controller, a network."""
        store = self.store
        store.put(
            {
                "apiVersion": api_version("DaemonSet"),
                "kind": "DaemonSet",
                "metadata": {"name": "spiderpool-agent", "namespace": "kube-system"},
                "status": {"desiredNumberScheduled": nodes, "numberReady": nodes},
            }
        )
        store.put(
            {
                "apiVersion": api_version("Deployment"),
                "kind": "Deployment",
                "metadata": {"name": "spiderpool-controller", "namespace": "kube-system"},
                "spec": {"replicas": 1},
                "status": {"readyReplicas": 1},
            }
        )
        store.put(
            {
                "apiVersion": api_version("SpiderCoordinator"),
                "kind": "SpiderCoordinator",
                "metadata": {"name": "default"},
                "spec": {},
                "status": {"phase": "Synced"},
            }
        )
        store.put(
            {
                "apiVersion": api_version("ConfigMap"),
                "kind": "ConfigMap",
                "metadata": {"name": "spiderpool-conf", "namespace": "kube-system"},
                "data": {"conf.yml": "enableIPv4: true\nenableIPv6: false\nenableStatefulSet: false\n"},
            }
        )
        self.add_pool("lab-general", [f"{NODE_NET.network_address + 100}-{NODE_NET.network_address + 149}"])
        store.put(
            {
                "apiVersion": api_version("SpiderMultusConfig"),
                "kind": "SpiderMultusConfig",
                "metadata": {
                    "name": NETWORK[1],
                    "namespace": NETWORK[0],
                    "labels": {ATTACHMENT_LABEL: "default"},
                },
                "spec": {"cniType": "macvlan", "macvlan": {"master": ["eth0"], "ippools": {"ipv4": ["lab-general"]}}},
            }
        )

    def add_pool(
        self,
        name: str,
        ips: builtins.list[str],
        node: str | None = None,
        labels: dict[str, str] | None = None,
        exclude: builtins.list[str] | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {"ipVersion": 4, "subnet": str(NODE_NET), "ips": ips}
        if node:
            spec["nodeName"] = [node]
        if exclude:
            spec["excludeIPs"] = exclude
        pool = {
            "apiVersion": api_version("SpiderIPPool"),
            "kind": "SpiderIPPool",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": spec,
        }
        self.store.put(pool)
        self.refresh_pool(name)
        return pool

    def candidate_pools(self, pod: LabPod, node: str) -> builtins.list[str]:
        meta = pod.obj["metadata"]
        annotations = {} if meta["name"] in self.store.faults.ignore_pool_for else meta.get("annotations", {})
        cfg = self.store.find("SpiderMultusConfig", NETWORK[1], NETWORK[0]) or {}
        netconf_pools = list(cfg.get("spec", {}).get("macvlan", {}).get("ippools", {}).get("ipv4", []))
        pools = {p["metadata"]["name"]: p for p in self.store.of_kind("SpiderIPPool")}
        spec = PodSpec(meta["name"], meta["namespace"], node, annotations, meta.get("labels", {}))
        return [
            name
            for name in pool_candidates(spec, "eth0", netconf_pools, pools)
            if name in pools and (not pools[name]["spec"].get("nodeName") or node in pools[name]["spec"]["nodeName"])
        ]

    def allocate(self, pod: LabPod, node: str) -> bool:
        """An address of the first candidate pool with one free, recorded in the pool and a SpiderEndpoint; the
        "used out" event (once) when every candidate is full."""
        meta = pod.obj["metadata"]
        faults = self.store.faults
        with self.store.lock:
            for pool_name in self.candidate_pools(pod, node):
                pool = self.store.objects[self.store.key("SpiderIPPool", pool_name, None)]
                used = allocated_ips(pool)
                excluded = set(expand(pool["spec"].get("excludeIPs", [])))
                free = [ip for ip in expand(pool["spec"]["ips"]) if ip not in used and ip not in excluded]
                if meta["name"] in faults.duplicate_ip_for and used:
                    free = sorted(used)
                if not free and meta["name"] in faults.overcommit_for and not pod.starved:
                    self.starve(pod)  # Spiderpool says the pool is full...
                if not free and meta["name"] in faults.overcommit_for:
                    free = [str(ipaddress.ip_address(pool["spec"]["ips"][-1].split("-")[-1]) + 1)]  # ...yet it runs
                if not free:
                    continue
                pod.ip, pod.pool = free[0], pool_name
                uid = OTHER_UID if meta["name"] in faults.wrong_uid_for else meta["uid"]
                used[pod.ip] = {"pod": f"{meta['namespace']}/{meta['name']}", "podUid": uid}
                pool.setdefault("status", {})["allocatedIPs"] = json.dumps(used)
                count = pool["status"].get("allocatedIPCount", 0)
                self.refresh_pool(pool_name)
                if faults.stale_count:
                    pool["status"]["allocatedIPCount"] = count
                if faults.drop_endpoints:
                    return True
                self.store.put(endpoint(pod, node))
                return True
        if not pod.starved:
            self.starve(pod)
        return False

    def starve(self, pod: LabPod) -> None:
        """Spiderpool's event for a pod whose pools are full."""
        pod.starved = True
        meta = pod.obj["metadata"]
        self.store.event(
            meta["namespace"],
            meta["name"],
            "FailedCreatePodSandBox",
            f'plugin type="spiderpool" failed (add): failed to allocate: {USED_OUT}',
        )

    def release(self, pod: LabPod) -> None:
        meta = pod.obj["metadata"]
        with self.store.lock:
            if pod.pool and meta["name"] not in self.store.faults.leak_on_delete:
                pool = self.store.find("SpiderIPPool", pod.pool)
                if pool:
                    used = allocated_ips(pool)
                    used.pop(pod.ip, None)
                    pool["status"]["allocatedIPs"] = json.dumps(used)
                    self.refresh_pool(pod.pool)
            self.store.remove("SpiderEndpoint", meta["name"], meta["namespace"])

    def refresh_pool(self, name: str) -> None:
        """The pool's status counts from its spec and allocatedIPs, as Spiderpool's controller keeps them."""
        with self.store.lock:
            pool = self.store.objects[self.store.key("SpiderIPPool", name, None)]
            status = pool.setdefault("status", {})
            status.setdefault("allocatedIPs", "{}")
            excluded = set(expand(pool["spec"].get("excludeIPs", [])))
            status["totalIPCount"] = len([ip for ip in expand(pool["spec"]["ips"]) if ip not in excluded])
            status["allocatedIPCount"] = len(allocated_ips(pool))
            self.store.put(pool)


def endpoint(pod: LabPod, node: str) -> dict[str, Any]:
    """The SpiderEndpoint Spiderpool writes for an allocation; a bare pod is its own controller."""
    meta = pod.obj["metadata"]
    return {
        "apiVersion": api_version("SpiderEndpoint"),
        "kind": "SpiderEndpoint",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "status": {
            "current": {
                "uid": meta["uid"],
                "node": node,
                "ips": [{"interface": "eth0", "ipv4": f"{pod.ip}/{NODE_NET.prefixlen}", "ipv4Pool": pod.pool}],
            },
            "ownerControllerType": "Pod",
            "ownerControllerName": meta["name"],
        },
    }

"""The lab's Spiderpool: its install as the API shows it, SpiderIPPools with their status, allocation and release
of a pod's address with its SpiderEndpoint, and the "used out" event of a pod whose pools are full.

Pools are admitted as Spiderpool's IPPool webhook admits them (tests/upstream/spiderpool_ippool.py, configured from
the lab's spiderpool-conf): mutated (finalizer, CIDR label, merged ranges), refused with the API server's answer.

Candidate pools as Spiderpool's IPAM orders them for the pod's one interface, eth0 (pkg/ipam/pool_selections.go:29-88,
tests/upstream/spiderpool.py `pool_candidates`): the pod's pool annotations, else the network's own pools; then
filtered by the pool's nodeName (pkg/ipam/allocate.go:726-729).

With `enableStatefulSet: true` in its spiderpool-conf (as the agent reads conf.yml), a StatefulSet pod keeps its
address: its SpiderEndpoint and pool record stay when the pod goes while its set still wants that ordinal, and the
pod recreated under that name gets them back. Cited from spidernet-io/spiderpool at v1.2.2 (c2ca1249).
"""

from __future__ import annotations

import builtins
import copy
import ipaddress
import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import yaml
from spider_validate.cluster.addresses import expand
from spider_validate.cluster.spiderpool import USED_OUT, allocated_ips
from spider_validate.names import ATTACHMENT_LABEL

from tests.lab.controllers import owner
from tests.lab.store import Refused, Store, api_version
from tests.upstream.spiderpool import PodSpec, pool_candidates
from tests.upstream.spiderpool_ippool import IPPoolWebhook, admission_denial

if TYPE_CHECKING:
    from tests.lab.kubelet import LabPod

NODE_NET = ipaddress.ip_network("198.18.0.0/24")  # the fabric of the nodes, and the subnet of the pools
NETWORK = ("kube-system", "macvlan-eth0")  # the SpiderMultusConfig of the lab's underlay
OTHER_UID = "00000000-0000-0000-0000-00000000dead"
# A StatefulSet pod's name: its set and ordinal (pkg/statefulsetmanager/utils.go:28, Kubernetes' own regex).
STATEFUL_POD = re.compile("(.*)-([0-9]+)$")


class Ipam:
    def __init__(self, store: Store, enable_stateful_set: bool = False) -> None:
        self.store = store
        self.enable_stateful_set = enable_stateful_set  # what install writes into spiderpool-conf

    def configure(self, enable_stateful_set: bool) -> None:
        """spiderpool-conf as the chart renders it (ipam.enableStatefulSet -> conf.yml's enableStatefulSet)."""
        self.store.put(
            {
                "apiVersion": api_version("ConfigMap"),
                "kind": "ConfigMap",
                "metadata": {"name": "spiderpool-conf", "namespace": "kube-system"},
                "data": {
                    "conf.yml": "enableIPv4: true\nenableIPv6: false\n"
                    f"enableStatefulSet: {str(enable_stateful_set).lower()}\n"
                    "enableSpiderSubnet: true\nenableValidatingResourcesDeletedWebhook: false\n"
                },
            }
        )

    def stateful_set_ips(self) -> bool:
        """enableStatefulSet as the agent reads it from its conf.yml (cmd/spiderpool-agent/cmd/config.go:146, the
        field pkg/types/k8s.go:111, the chart's charts/spiderpool/templates/configmap.yaml:21)."""
        cm = self.store.find("ConfigMap", "spiderpool-conf", "kube-system") or {}
        return bool((yaml.safe_load(cm.get("data", {}).get("conf.yml", "")) or {}).get("enableStatefulSet"))

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
        self.configure(self.enable_stateful_set)
        # 50 addresses (a run's two pods per node up to 24 nodes; the subnet's .200-.239 left for ipam's own pools),
        # or, for the scale benchmark's 64 nodes (at .10-.73), the rest of the /24: 155
        last = 149 if nodes <= 24 else 254
        self.add_pool("lab-general", [f"{NODE_NET.network_address + 100}-{NODE_NET.network_address + last}"])
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
        """A SpiderIPPool as the chart's job applies it: admitted by Spiderpool's webhook, its status counted."""
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
        self.store.put(pool if name in self.store.faults.unchecked_pools else self.admit(pool))
        self.refresh_pool(name)
        return pool

    def webhook(self) -> IPPoolWebhook:
        """Spiderpool's IPPool webhook as the controller configures it from spiderpool-conf."""
        cm = self.store.find("ConfigMap", "spiderpool-conf", "kube-system") or {}
        return IPPoolWebhook.from_conf(cm.get("data", {}).get("conf.yml", ""))

    def admit(self, pool: dict[str, Any]) -> dict[str, Any]:
        """A SpiderIPPool's create through the mutating then the validating webhook (tests/upstream/
        spiderpool_ippool.py): the pool as mutated, or the API server's refusal."""
        hook = self.webhook()
        mutated = hook.default(pool)
        refusal = hook.validate_create(mutated, self.store.of_kind("SpiderIPPool"))
        if refusal:
            raise Refused(replace(refusal, message=admission_denial(refusal, pool["metadata"]["name"])))
        return mutated

    def admit_update(self, old: dict[str, Any], pool: dict[str, Any]) -> dict[str, Any]:
        """A SpiderIPPool's update through the same webhooks (ValidateUpdate), its status kept: a client's update
        does not write the status subresource."""
        hook = self.webhook()
        mutated = hook.default(pool) | {"status": copy.deepcopy(old.get("status", {}))}
        refusal = hook.validate_update(old, mutated, self.store.of_kind("SpiderIPPool"))
        if refusal:
            raise Refused(replace(refusal, message=admission_denial(refusal, pool["metadata"]["name"])))
        return mutated

    def delete_pool(self, name: str) -> None:
        """A pool's delete through the validating webhook (which refuses only with
        enableValidatingResourcesDeletedWebhook). The pool then goes at once: the double does not wait on its
        finalizer, which Spiderpool's controller takes off only once no address is allocated from it
        (pkg/ippoolmanager/ippool_informer.go:297-309), nor reclaim leaked addresses as Spiderpool's GC would."""
        pool = self.store.find("SpiderIPPool", name)
        refusal = self.webhook().validate_delete(pool) if pool else None
        if refusal:
            raise Refused(replace(refusal, message=admission_denial(refusal, name)))
        self.store.remove("SpiderIPPool", name, None)

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
            kept = self.kept(pod.obj)
            if kept and not faults.readdress_stateful:
                self.retrieve(pod, node, kept)
                return True
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
                if kept:  # the fault: a new address, and the kept one released (as for a pool no longer wanted)
                    self._drop(kept["status"]["current"]["ips"][0]["ipv4Pool"], stateful_ip(kept))
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

    def kept(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """The SpiderEndpoint a StatefulSet pod finds kept for its name: Allocate retrieves it instead of
        allocating (pkg/ipam/allocate.go:83-117) when enableStatefulSet is on and the pod's controller is a
        StatefulSet (pkg/podmanager/pod_manager.go:82-100, GetPodTopController)."""
        meta = pod["metadata"]
        if not self.stateful_set_ips() or (owner(pod) or {}).get("kind") != "StatefulSet":
            return None
        return self.store.find("SpiderEndpoint", meta["name"], meta["namespace"])

    def retrieve(self, pod: LabPod, node: str, kept: dict[str, Any]) -> None:
        """retrieveStaticIPAllocation (allocate.go:255-293): the endpoint's address for the new pod, its pool record
        moved to the new UID (reallocateIPPoolIPRecords, allocate.go:295-343) and the endpoint's current UID and
        node too (ReallocateCurrentIPAllocation, pkg/workloadendpointmanager/workloadendpoint_manager.go:187-196)."""
        meta, current = pod.obj["metadata"], kept["status"]["current"]
        pod.ip, pod.pool = stateful_ip(kept), current["ips"][0]["ipv4Pool"]
        pool = self.store.objects[self.store.key("SpiderIPPool", pod.pool, None)]
        used = allocated_ips(pool)
        used[pod.ip] = {"pod": f"{meta['namespace']}/{meta['name']}", "podUid": meta["uid"]}
        pool["status"]["allocatedIPs"] = json.dumps(used)
        self.refresh_pool(pod.pool)
        current["uid"], current["node"] = meta["uid"], node
        self.store.put(kept)

    def wanted(self, namespace: str, pod: str) -> bool:
        """IsValidStatefulSetPod (pkg/statefulsetmanager/sts_manager.go:73-105): the pod's set, by its name
        (utils.go:33-50), exists and wants its ordinal (spec.ordinals.start, then replicas of them)."""
        match = STATEFUL_POD.search(pod)
        sts = self.store.find("StatefulSet", match[1], namespace) if match else None
        if match is None or sts is None:
            return False
        start = (sts["spec"].get("ordinals") or {}).get("start", 0)
        return start <= int(match[2]) <= start + sts["spec"].get("replicas", 1) - 1

    def release(self, pod: LabPod) -> None:
        meta = pod.obj["metadata"]
        with self.store.lock:
            ep = self.store.find("SpiderEndpoint", meta["name"], meta["namespace"])
            stateful = ep is not None and ep["status"].get("ownerControllerType") == "StatefulSet"
            if stateful and self.stateful_set_ips() and self.wanted(meta["namespace"], meta["name"]):
                return  # kept for the pod recreated under this name (pkg/ipam/release.go:111-122)
            if pod.pool and meta["name"] not in self.store.faults.leak_on_delete:
                self._drop(pod.pool, pod.ip, stale_count=self.store.faults.stale_count_on_release)
            self.store.remove("SpiderEndpoint", meta["name"], meta["namespace"])

    def collect(self, namespace: str) -> None:
        """Spiderpool's GC of the addresses kept for StatefulSet pods that are gone and no longer wanted, their set
        deleted or scaled down (pkg/gcmanager/scanAll_IPPool.go:154-183): pool record and endpoint reclaimed."""
        with self.store.lock:
            for ep in self.store.of_kind("SpiderEndpoint"):
                meta, status = ep["metadata"], ep["status"]
                if (
                    meta["namespace"] == namespace
                    and status.get("ownerControllerType") == "StatefulSet"
                    and self.store.find("Pod", meta["name"], namespace) is None
                    and not self.wanted(namespace, meta["name"])
                ):
                    self._drop(status["current"]["ips"][0]["ipv4Pool"], stateful_ip(ep))
                    self.store.remove("SpiderEndpoint", meta["name"], namespace)

    def _drop(self, pool_name: str, ip: str, stale_count: bool = False) -> None:
        """An address's record removed from its pool (if the pool is still there); with `stale_count`, the fault,
        its allocatedIPCount left as it was."""
        pool = self.store.find("SpiderIPPool", pool_name)
        if pool:
            count = pool["status"].get("allocatedIPCount", 0)
            used = allocated_ips(pool)
            used.pop(ip, None)
            pool["status"]["allocatedIPs"] = json.dumps(used)
            self.refresh_pool(pool_name)
            if stale_count:
                pool["status"]["allocatedIPCount"] = count

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


def stateful_ip(ep: dict[str, Any]) -> str:
    """The address a SpiderEndpoint records for the pod's one interface."""
    return str(ep["status"]["current"]["ips"][0]["ipv4"].split("/")[0])


def endpoint(pod: LabPod, node: str) -> dict[str, Any]:
    """The SpiderEndpoint Spiderpool writes for an allocation, its owner the pod's top controller (a bare pod is its
    own; pkg/workloadendpointmanager/workloadendpoint_manager.go:137-138)."""
    meta = pod.obj["metadata"]
    ref = owner(pod.obj) or {"kind": "Pod", "name": meta["name"]}
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
            "ownerControllerType": ref["kind"],
            "ownerControllerName": ref["name"],
        },
    }

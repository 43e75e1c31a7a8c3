"""A test double of spider_validate.cluster.api.Cluster whose pods are real network namespaces, composed of parts:

- `store.py`, the API server's objects (kinds from the validator's own `cluster.api.KINDS`), watch, events, `Faults`;
- `kubelet.py`, nodes and pods as namespaces: the real CNI macvlan plugin, real servers, `exec` and `logs`;
- `ipam.py`, Spiderpool: pools, allocation and release, SpiderEndpoints, the "used out" event;
- `proxy.py`, kube-proxy: Services as nftables DNAT in the nodes;
- `controllers.py`, the StatefulSet controller and the garbage collector's cascade to a set's pods.

This class is the API server's front: the calls of the `Cluster` interface, admission (Pod Security, Spiderpool's
IPPool webhook) and what the server fills in on create, and the namespace controller's and the garbage collector's
cascades on delete. Faults can be injected at every layer.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from spider_validate.cluster.api import KINDS, SPIDERPOOL_GROUP, ExecResult

from tests.lab import netns
from tests.lab.controllers import StatefulSets
from tests.lab.discovery import VERSION
from tests.lab.dra import Dra, efa_slice
from tests.lab.ipam import Ipam
from tests.lab.kubelet import SERVER, Kubelet, LabPod
from tests.lab.proxy import SERVICE_NET, Proxy
from tests.lab.store import Faults, Refused, Store, group_resource, namespaced
from tests.upstream import pod_security, scheduling
from tests.upstream.apimachinery import new_already_exists, new_forbidden, new_not_found

__all__ = ["SERVER", "LabCluster"]  # SERVER: tests/validator/probes/test_probes.py runs the pods' server alone

# Spiderpool v1.2.2 installs six CRDs (its chart's crds/spiderpool.spidernet.io_*.yaml): KINDS' four and these.
OTHER_SPIDERPOOL_CRDS = ("spiderreservedips", "spidersubnets")


class LabCluster:
    def __init__(
        self, workdir: Path, nodes: int = 2, prefix: str | None = None, enable_stateful_set: bool = False
    ) -> None:
        self.prefix = prefix or f"{netns.PREFIX}{secrets.token_hex(2)}"
        self.workdir = workdir
        self.store = Store()
        self.ipam = Ipam(self.store, enable_stateful_set)  # spiderpool-conf's enableStatefulSet at install
        self.stateful_sets = StatefulSets(self.store, self.create)
        self.proxy = Proxy(self.store)
        self.node_names = [f"lab-node-{i}" for i in range(nodes)]
        self.kubelet = Kubelet(
            self.store, self.ipam, self.proxy, workdir, self.prefix, self.node_names, self._before_ready
        )
        self.add_pool = self.ipam.add_pool  # a SpiderIPPool as the chart's job applies it, its status counted
        self.dra = Dra(self.store.find, self.store.of_kind, self.store.put, self.store.event)
        self._workers: builtins.list[threading.Thread] = []  # the controllers' passes, in the background
        self._service_ips = (str(ip) for ip in SERVICE_NET.hosts())

    # -- the parts' state, as tests read it ---------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self.store.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self.store.faults = faults

    @property
    def objects(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        return self.store.objects

    @property
    def pods(self) -> dict[tuple[str, str], LabPod]:
        return self.kubelet.pods

    @property
    def node_ns(self) -> dict[str, str]:
        return self.kubelet.node_ns

    @property
    def node_ip(self) -> dict[str, str]:
        return self.kubelet.node_ip

    @property
    def start_seconds(self) -> builtins.list[float]:
        return self.kubelet.start_seconds

    def _put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """An object written as a controller writes it (no admission, no defaults)."""
        return self.store.put(obj)

    def _refresh_pool(self, name: str) -> None:
        """A pool's status counts recomputed from its spec and allocatedIPs (after a test edited them)."""
        self.ipam.refresh_pool(name)

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> LabCluster:
        self._owner = netns.Owner(self.prefix)
        self.kubelet.start()
        self.ipam.install(len(self.node_names))
        self.kubelet.run()
        return self

    def close(self) -> None:
        for worker in self._workers:
            worker.join(timeout=30)
        self.store.stopped.set()
        self.kubelet.stop()
        netns.sweep(self.prefix)
        self._owner.release()

    def __enter__(self) -> LabCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def dra_driver(self, device_class: dict[str, Any]) -> Iterator[None]:
        """aws-dranet installed for the block: its DeviceClass, and every node's EFA published as dranet publishes
        it; uninstalled after (the lab is shared by a module's tests)."""
        slices = [efa_slice(node) for node in self.node_names]
        for obj in (copy.deepcopy(device_class), *slices):
            self.store.put(obj)
        try:
            yield
        finally:
            with self.store.lock:
                self.store.remove("DeviceClass", device_class["metadata"]["name"], None)
                for s in slices:
                    self.store.remove("ResourceSlice", s["metadata"]["name"], None)

    def _before_ready(self, pod: str, namespace: str) -> None:
        obj = self.store.find("Pod", pod, namespace)
        if obj and obj["spec"].get("resourceClaims"):
            self.dra.prepared(obj)  # dranet's NRI hook, as the sandbox runs
        hook = self.faults.before_ready.pop(pod, None)
        if hook:
            hook(self, namespace)

    # -- the Cluster interface ----------------------------------------------------------------------------

    def server_version(self) -> str:
        self.faults.take("get", "Version")
        return str(VERSION["gitVersion"])

    def crd_names(self) -> set[str]:
        spiderpool = [plural for version, plural, _ in KINDS.values() if version.startswith(f"{SPIDERPOOL_GROUP}/")]
        return {f"{p}.{SPIDERPOOL_GROUP}" for p in (*spiderpool, *OTHER_SPIDERPOOL_CRDS)}

    def list(self, kind: str, namespace: str | None = None, label_selector: str = "") -> builtins.list[dict[str, Any]]:
        return self.store.list(kind, namespace, label_selector)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.store.get(kind, name, namespace)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, meta = obj["kind"], obj["metadata"]
        time.sleep(self.faults.slow.get(("create", kind), 0.0))  # an API server slow to answer (etcd, webhooks)
        codes = self.faults.api.get(("create", kind))
        if codes and codes[0] == 409 and self.get(kind, meta["name"], meta.get("namespace")) is None:
            codes.pop(0)
            self._create(self._admit(copy.deepcopy(obj)))  # the create went through, but its answer was lost
            raise Refused(new_already_exists(group_resource(kind), meta["name"]))
        self.faults.take("create", kind)
        if self.get(kind, meta["name"], meta.get("namespace")) is not None:
            raise Refused(new_already_exists(group_resource(kind), meta["name"]))
        return self._create(self._admit(copy.deepcopy(obj)))

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """An update of an existing object (a PUT, or a patch the wire applied): Spiderpool's webhook for a pool, the
        object stored with the next resourceVersion."""
        kind, meta = obj["kind"], obj["metadata"]
        self.faults.take("update", kind)
        with self.store.lock:
            current = self.store.find(kind, meta["name"], meta.get("namespace"))
            if current is None:
                raise Refused(new_not_found(group_resource(kind), meta["name"]))
            if kind == "SpiderIPPool":
                obj = self.ipam.admit_update(current, obj)
            return copy.deepcopy(self.store.put(copy.deepcopy(obj)))

    def _admit(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Admission: Pod Security for a pod, Spiderpool's webhooks for a SpiderIPPool (the object as mutated)."""
        meta = obj["metadata"]
        if obj["kind"] == "SpiderIPPool":
            return self.ipam.admit(obj)
        refused = pod_security.admitted(self.get("Namespace", meta["namespace"]), obj) if obj["kind"] == "Pod" else []
        if refused:  # the message as PSA's admission webhook words it (pod-security-admission/admission/admission.go)
            reason = 'violates PodSecurity "baseline:latest": ' + "; ".join(refused)
            raise Refused(new_forbidden("pods", meta["name"], reason))
        return obj

    def _create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """What the API server fills in (a namespace's phase, a pod's Pending status, a Service's ClusterIP), then
        the controllers that act on the new object."""
        kind = obj["kind"]
        if kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        elif kind == "Pod":
            obj["status"] = {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}
            if not obj["spec"].get("resourceClaims") or self._schedule_claims(obj):
                self.kubelet.add(obj)
        elif kind == "Service":
            obj["spec"]["clusterIP"] = next(self._service_ips)
        self.store.put(obj)
        if kind == "SpiderIPPool":
            self.ipam.refresh_pool(obj["metadata"]["name"])
        if kind in {"Service", "Pod"}:
            self.kubelet.sync_services()
        if kind == "StatefulSet":
            meta = obj["metadata"]
            self._background(lambda: self.stateful_sets.sync(meta["namespace"], meta["name"]))
        return copy.deepcopy(obj)

    def _schedule_claims(self, pod: dict[str, Any]) -> bool:
        """The claim controller and the scheduler for a pod with claims (tests/lab/dra.py): bound to a node where
        its claims were allocated, or left Pending with the reason as an event."""
        nodes = [
            scheduling.Node(n["metadata"]["name"], n["metadata"].get("labels", {})) for n in self.store.of_kind("Node")
        ]
        node = self.dra.schedule(pod, sorted(nodes, key=lambda n: n.name))
        if node is None:
            return False
        pod["spec"]["nodeName"] = node
        return True

    def _background(self, work: Callable[[], None]) -> None:
        """A controller's pass after the API has answered, as the real controllers act on what they watch."""
        worker = threading.Thread(target=work, daemon=True)
        self._workers.append(worker)
        worker.start()

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        self.faults.take("delete", kind)
        if kind == "SpiderIPPool":
            self.ipam.delete_pool(name)
            return
        if kind == "Namespace":
            # As in Kubernetes: the API answers at once, the namespace's contents go in the background.
            with self.store.lock:
                self.store.remove(kind, name, namespace)
                keys = [k for k in self.objects if k[1] == name and namespaced(k[0])]

            def empty() -> None:
                for k in keys:
                    self.delete(k[0], k[2], name)

            self._background(empty)
            return
        with self.store.lock:
            gone = self.store.find(kind, name, namespace)
            if kind == "Pod":
                self.kubelet.remove(namespace or "", name)
            self.store.remove(kind, name, namespace)
        if kind in {"Service", "Pod"}:
            self.kubelet.sync_services()
        if gone and kind == "Pod":
            for claim in self.dra.owned_by(gone):  # the garbage collector, and with the claim its allocation
                self.store.remove("ResourceClaim", claim["metadata"]["name"], namespace)
            self._background(lambda: self.stateful_sets.pod_gone(gone))
        if gone and kind == "StatefulSet":
            self._background(lambda: self._collect(gone))

    def _collect(self, sts: dict[str, Any]) -> None:
        """The garbage collector deletes the set's pods (Background propagation: after the set), then Spiderpool's
        GC reclaims what it kept for them."""
        namespace = sts["metadata"]["namespace"]
        for pod in self.stateful_sets.dependents(sts):
            self.delete("Pod", pod, namespace)
        self.ipam.collect(namespace)

    def watch(
        self, kind: str, namespace: str, label_selector: str, timeout_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        assert kind == "Pod", "spider-validate only watches pods"  # as KubeCluster.watch (kube.py) refuses others
        return self.store.watch(kind, namespace, label_selector, timeout_seconds)

    def exec(self, namespace: str, pod: str, command: Sequence[str], timeout: float) -> ExecResult:
        self.faults.take("exec", "Pod")
        return self.kubelet.exec(namespace, pod, command, timeout)

    def logs(self, namespace: str, pod: str) -> str:
        return self.kubelet.logs(namespace, pod)

    # -- faults on the data path ------------------------------------------------------------------------------

    def pod(self, namespace: str, name: str) -> LabPod:
        return self.kubelet.pod(namespace, name)

    def nft_in_pod(self, namespace: str, name: str, rule: str) -> None:
        """Add an nftables rule in a pod's namespace (e.g. `ip daddr X drop`, `numgen inc mod 2 0 drop`)."""
        netns.sh(
            "nft",
            "-f",
            "-",
            ns=self.pod(namespace, name).ns,
            stdin=("table ip fault {\n chain out { type filter hook output priority 0;\n" + f"  {rule}\n" + " }\n}\n"),
        )

    def stop_server(self, namespace: str, name: str) -> None:
        pod = self.pod(namespace, name)
        assert pod.server is not None
        pod.server.kill()
        pod.server.wait(timeout=5)

    def set_identity(self, namespace: str, name: str, identity: str) -> None:
        pod = self.pod(namespace, name)
        assert pod.identity is not None
        pod.identity.write_text(identity)

    def serve_404(self, namespace: str, name: str) -> None:
        """The pod's server answers /hostname with 404 (as a web server without that path would)."""
        pod = self.pod(namespace, name)
        assert pod.identity is not None
        pod.identity.unlink()

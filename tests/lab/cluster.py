"""A test double of spider_validate.kube.Cluster whose pods are real network namespaces.

Nodes are namespaces bridged together in a fabric namespace; a pod is a namespace whose underlay interface
the real CNI macvlan plugin creates on its node's eth0, with an address that this double allocates from
SpiderIPPools the way Spiderpool does (pool annotation, the network's pools, then default pools, each
filtered by nodeName). Servers are real HTTP servers, `exec` runs the real ping and curl in the pod, a
Service is real nftables DNAT in the nodes (kube-proxy's job), and Spiderpool's coordinator is emulated by a
veth from each pod to its node. Faults can be injected at every layer.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import ipaddress
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spider_validate.addresses import expand
from spider_validate.kube import SPIDERPOOL_GROUP, SPIDERPOOL_VERSION, ApiError, ExecResult, unwrap_output, wrap_command
from spider_validate.spiderpool import NETWORK_STATUS, USED_OUT

from tests.lab import netns
from tests.upstream import pod_security

SERVER = Path(__file__).with_name("server.py")
NODE_NET = ipaddress.ip_network("198.18.0.0/24")
SERVICE_NET = ipaddress.ip_network("198.19.0.0/24")
SPIDERPOOL_API = f"{SPIDERPOOL_GROUP}/{SPIDERPOOL_VERSION}"
NAMESPACED = {
    "Pod",
    "Service",
    "Event",
    "ConfigMap",
    "Deployment",
    "DaemonSet",
    "SpiderMultusConfig",
    "SpiderEndpoint",
    "StatefulSet",
}
OTHER_UID = "00000000-0000-0000-0000-00000000dead"


@dataclass
class Faults:
    """Injected failures; each list is consumed one entry per matching call."""

    api: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (verb, kind) -> HTTP statuses
    drop_watch_after: int | None = None  # events before the next watch breaks
    lose_exit_status: int = 0  # execs whose exec status is lost (the exit marker survives)
    lose_exit_code: int = 0  # execs whose exit code is lost entirely
    pull_fails: set[str] = field(default_factory=set)  # images that never pull
    ipam_delay: float = 0.0  # seconds Spiderpool takes per allocation
    leak_on_delete: set[str] = field(default_factory=set)  # pod names whose IP is not released (upstream 4982)
    drop_endpoints: bool = False  # allocations without a SpiderEndpoint, as after an agent restart (upstream 2517)
    duplicate_ip_for: set[str] = field(default_factory=set)  # pod names handed an address already in use (1187)
    ignore_pool_for: set[str] = field(default_factory=set)  # pod names given an address of the network's pools
    wrong_uid_for: set[str] = field(default_factory=set)  # pod names recorded in allocatedIPs under another UID
    overcommit_for: set[str] = field(default_factory=set)  # pod names that run on an address past a full pool
    stale_count: bool = False  # allocatedIPCount not updated when an address is allocated
    # pod name -> called with (lab, namespace) just before that pod shows Running: pods started before it
    # are up, and the runner has not seen the run ready yet. Where tests break the data path.
    before_ready: dict[str, Callable[[LabCluster, str], None]] = field(default_factory=dict)

    def take(self, verb: str, kind: str) -> None:
        codes = self.api.get((verb, kind))
        if codes:
            code = codes.pop(0)
            raise ApiError(code, f"injected {code} on {verb} {kind}")


@dataclass
class LabPod:
    obj: dict[str, Any]
    ns: str = ""  # network namespace
    node: str = ""
    ip: str = ""
    pool: str = ""
    server: subprocess.Popen[bytes] | None = None
    identity: Path | None = None
    host_veth: str = ""
    starting: bool = False  # the kubelet is setting it up: a delete meanwhile leaves the teardown to it
    deleted: bool = False
    starved: bool = False  # Spiderpool's "used out" event was sent


class LabCluster:
    def __init__(self, workdir: Path, nodes: int = 2, prefix: str | None = None) -> None:
        self.prefix = prefix or f"{netns.PREFIX}{secrets.token_hex(2)}"
        self.workdir = workdir
        self.faults = Faults()
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], LabPod] = {}
        self.node_ns: dict[str, str] = {}
        self.node_ip: dict[str, str] = {}
        self._ids = itertools.count()
        self._version = itertools.count(1)
        self._stop = threading.Event()
        self._deleters: list[threading.Thread] = []
        self._kubelet = threading.Thread(target=self._kubelet_loop, name="lab-kubelet", daemon=True)
        self._service_ips = (str(ip) for ip in SERVICE_NET.hosts())
        self.node_names = [f"lab-node-{i}" for i in range(nodes)]
        self.start_seconds: list[float] = []  # how long the double took to start each pod (its own delay)

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> LabCluster:
        self._owner = netns.Owner(self.prefix)
        # The images' ping carries no file capability (the host's iputils has cap_net_raw=ep, which execve refuses
        # outright when the bounding set lacks it): a plain copy, first on the PATH of every exec.
        images_bin = self.workdir / "image-bin"
        images_bin.mkdir(exist_ok=True)
        shutil.copy(shutil.which("ping") or "/usr/bin/ping", images_bin / "ping")
        self.exec_env = {**os.environ, "PATH": f"{images_bin}:{os.environ['PATH']}"}
        fabric = f"{self.prefix}-fab"
        netns.add_netns(fabric)
        netns.sh("ip", "link", "add", "br0", "type", "bridge", ns=fabric)
        netns.sh("ip", "link", "set", "br0", "up", ns=fabric)
        for i, name in enumerate(self.node_names):
            ns = f"{self.prefix}-n{i}"
            ip = str(NODE_NET.network_address + 10 + i)
            netns.add_netns(ns)
            netns.sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}", "netns", fabric, ns=ns)
            netns.sh("ip", "link", "set", f"p{i}", "master", "br0", "up", ns=fabric)
            netns.sh("ip", "addr", "add", f"{ip}/{NODE_NET.prefixlen}", "dev", "eth0", ns=ns)
            netns.sh("ip", "link", "set", "eth0", "up", ns=ns)
            for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"):
                netns.sh("sysctl", "-qw", key, ns=ns)
            netns.sh(
                "nft",
                "-f",
                "-",
                ns=ns,
                stdin=(
                    "table ip lab {\n"
                    " chain pre { type nat hook prerouting priority -100; }\n"
                    " chain post { type nat hook postrouting priority 100; ct status dnat masquerade; }\n}\n"
                ),
            )
            self.node_ns[name], self.node_ip[name] = ns, ip
            self._put(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                    "spec": {},
                    "status": {
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "addresses": [{"type": "InternalIP", "address": ip}],
                    },
                }
            )
        self._install_spiderpool()
        self._kubelet.start()
        return self

    def close(self) -> None:
        for deleter in self._deleters:
            deleter.join(timeout=30)
        self._stop.set()
        if self._kubelet.is_alive():
            self._kubelet.join(timeout=5)
        with self.lock:
            for pod in list(self.pods.values()):
                self._teardown(pod)
            self.pods.clear()
        netns.sweep(self.prefix)
        self._owner.release()

    def __enter__(self) -> LabCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _install_spiderpool(self) -> None:
        """What a healthy Spiderpool install shows the API: CRDs, ready agent and controller, a network."""
        self._put(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": "spiderpool-agent", "namespace": "kube-system"},
                "status": {"desiredNumberScheduled": len(self.node_names), "numberReady": len(self.node_names)},
            }
        )
        self._put(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "spiderpool-controller", "namespace": "kube-system"},
                "spec": {"replicas": 1},
                "status": {"readyReplicas": 1},
            }
        )
        self._put(
            {
                "apiVersion": SPIDERPOOL_API,
                "kind": "SpiderCoordinator",
                "metadata": {"name": "default"},
                "spec": {},
                "status": {"phase": "Synced"},
            }
        )
        self._put(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "spiderpool-conf", "namespace": "kube-system"},
                "data": {"conf.yml": "enableIPv4: true\nenableIPv6: false\nenableStatefulSet: false\n"},
            }
        )
        self.add_pool("lab-general", [f"{NODE_NET.network_address + 100}-{NODE_NET.network_address + 149}"])
        self._put(
            {
                "apiVersion": SPIDERPOOL_API,
                "kind": "SpiderMultusConfig",
                "metadata": {
                    "name": "macvlan-eth0",
                    "namespace": "kube-system",
                    "labels": {"spiderpool-rdma/attachment": "default"},
                },
                "spec": {"cniType": "macvlan", "macvlan": {"master": ["eth0"], "ippools": {"ipv4": ["lab-general"]}}},
            }
        )

    def add_pool(
        self,
        name: str,
        ips: list[str],
        node: str | None = None,
        labels: dict[str, str] | None = None,
        exclude: list[str] | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {"ipVersion": 4, "subnet": str(NODE_NET), "ips": ips}
        if node:
            spec["nodeName"] = [node]
        if exclude:
            spec["excludeIPs"] = exclude
        pool = {
            "apiVersion": SPIDERPOOL_API,
            "kind": "SpiderIPPool",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": spec,
        }
        self._put(pool)
        self._refresh_pool(name)
        return pool

    # -- storage ----------------------------------------------------------------------------------------

    def _key(self, kind: str, name: str, namespace: str | None) -> tuple[str, str, str]:
        return (kind, namespace or "" if kind in NAMESPACED else "", name)

    def _put(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("labels", {})
        meta.setdefault("annotations", {})
        meta["resourceVersion"] = str(next(self._version))
        with self.lock:
            self.objects[self._key(obj["kind"], meta["name"], meta.get("namespace"))] = obj
        return obj

    def _event(self, namespace: str, pod: str, reason: str, message: str) -> None:
        self._put(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "type": "Warning",
                "reason": reason,
                "message": message,
                "metadata": {"name": f"{pod}.{next(self._ids)}", "namespace": namespace},
                "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace},
            }
        )

    # -- the Cluster interface ----------------------------------------------------------------------------

    def server_version(self) -> str:
        self.faults.take("get", "Version")
        return "v1.33.0-lab"

    def crd_names(self) -> set[str]:
        return {
            f"{p}.{SPIDERPOOL_GROUP}"
            for p in (
                "spiderippools",
                "spidermultusconfigs",
                "spidercoordinators",
                "spiderendpoints",
                "spiderreservedips",
                "spidersubnets",
            )
        }

    def list(self, kind: str, namespace: str | None = None, label_selector: str = "") -> list[dict[str, Any]]:
        self.faults.take("list", kind)
        wanted = [s for s in label_selector.split(",") if s]
        with self.lock:
            out = []
            for (k, ns, _), obj in sorted(self.objects.items()):
                if k != kind or (namespace and ns != namespace):
                    continue
                labels = obj["metadata"].get("labels", {})
                if all(
                    labels.get(s.partition("=")[0]) == s.partition("=")[2] if "=" in s else s in labels for s in wanted
                ):
                    out.append(copy.deepcopy(obj))
            return out

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.faults.take("get", kind)
        with self.lock:
            obj = self.objects.get(self._key(kind, name, namespace))
            return copy.deepcopy(obj) if obj else None

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, meta = obj["kind"], obj["metadata"]
        codes = self.faults.api.get(("create", kind))
        if codes and codes[0] == 409 and self.get(kind, meta["name"], meta.get("namespace")) is None:
            codes.pop(0)
            self._create(copy.deepcopy(obj))  # the create went through, but its answer was lost
            raise ApiError(409, f"{kind} {meta['name']} already exists")
        self.faults.take("create", kind)
        if self.get(kind, meta["name"], meta.get("namespace")) is not None:
            raise ApiError(409, f"{kind} {meta['name']} already exists")
        refused = pod_security.admitted(self.get("Namespace", meta["namespace"]), obj) if kind == "Pod" else []
        if refused:  # the message as PSA's admission webhook words it (pod-security-admission/admission/admission.go)
            raise ApiError(
                403,
                f'pods "{meta["name"]}" is forbidden: violates PodSecurity "baseline:latest": ' + "; ".join(refused),
            )
        return self._create(copy.deepcopy(obj))

    def _create(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = obj["kind"]
        if kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        elif kind == "Pod":
            obj["status"] = {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}
            with self.lock:
                self.pods[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = LabPod(obj)
        elif kind == "Service":
            obj["spec"]["clusterIP"] = next(self._service_ips)
        elif kind == "SpiderIPPool":
            self._put(obj)
            self._refresh_pool(obj["metadata"]["name"])
            return copy.deepcopy(obj)
        self._put(obj)
        if kind in {"Service", "Pod"}:
            self._sync_services()
        return copy.deepcopy(obj)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        self.faults.take("delete", kind)
        if kind == "Namespace":
            # As in Kubernetes: the API answers at once, the namespace's contents go in the background.
            with self.lock:
                self.objects.pop(self._key(kind, name, namespace), None)
                keys = [k for k in self.objects if k[1] == name and k[0] in NAMESPACED]

            def empty() -> None:
                for k in keys:
                    self.delete(k[0], k[2], name)

            deleter = threading.Thread(target=empty, daemon=True)
            self._deleters.append(deleter)
            deleter.start()
            return
        with self.lock:
            if kind == "Pod":
                pod = self.pods.pop((namespace or "", name), None)
                if pod:
                    pod.deleted = True
                    if not pod.starting:
                        self._teardown(pod)
            self.objects.pop(self._key(kind, name, namespace), None)
        if kind in {"Service", "Pod"}:
            self._sync_services()

    def watch(
        self, kind: str, namespace: str, label_selector: str, timeout_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        seen: dict[str, str] = {}
        deadline = time.monotonic() + timeout_seconds
        sent = 0
        while time.monotonic() < deadline and not self._stop.is_set():
            for obj in self.list(kind, namespace, label_selector):
                name, version = obj["metadata"]["name"], obj["metadata"]["resourceVersion"]
                if seen.get(name) != version:
                    if self.faults.drop_watch_after is not None and sent >= self.faults.drop_watch_after:
                        self.faults.drop_watch_after = None
                        raise ApiError(0, "watch dropped (injected)")
                    event = "MODIFIED" if name in seen else "ADDED"
                    seen[name] = version
                    sent += 1
                    yield event, obj
            time.sleep(0.05)

    def exec(self, namespace: str, pod: str, command: Sequence[str], timeout: float) -> ExecResult:
        self.faults.take("exec", "Pod")
        with self.lock:
            lab_pod = self.pods.get((namespace, pod))
            if lab_pod is None or not lab_pod.ns or lab_pod.obj["status"]["phase"] != "Running":
                raise ApiError(404 if lab_pod is None else 400, f"pod {namespace}/{pod} is not running")
            ns = lab_pod.ns
        try:
            proc = netns.sh(
                *container_process(lab_pod.obj),
                *wrap_command(command),
                ns=ns,
                check=False,
                timeout=timeout,
                env=self.exec_env,
            )
        except subprocess.TimeoutExpired:
            return ExecResult(None, "", "timed out")
        stdout, lost = proc.stdout, None
        status: int | None = proc.returncode
        with self.lock:
            if self.faults.lose_exit_code:
                self.faults.lose_exit_code -= 1
                stdout, status = stdout.split("__spider_validate_exit__")[0], lost
            elif self.faults.lose_exit_status:
                self.faults.lose_exit_status -= 1
                status = lost
        code, out = unwrap_output(stdout, status)
        return ExecResult(code, out, proc.stderr)

    def logs(self, namespace: str, pod: str) -> str:
        log = self.workdir / f"{namespace}-{pod}.log"
        return log.read_text() if log.exists() else ""

    # -- the kubelet and Spiderpool, emulated --------------------------------------------------------------

    def _kubelet_loop(self) -> None:
        while not self._stop.wait(0.05):
            with self.lock:
                pending = [p for p in self.pods.values() if p.obj["status"]["phase"] == "Pending"]
            for pod in pending:
                with self.lock:
                    if pod.deleted:
                        continue
                    pod.starting = True
                started = time.monotonic()
                try:
                    self._start_pod(pod)
                    if pod.obj["status"]["phase"] == "Running":
                        self.start_seconds.append(time.monotonic() - started)
                except Exception as exc:
                    print(f"lab kubelet: {pod.obj['metadata']['name']}: {exc}", file=sys.stderr)
                    self._event(pod.obj["metadata"]["namespace"], pod.obj["metadata"]["name"], "LabError", str(exc))
                finally:
                    with self.lock:
                        pod.starting = False
                        if pod.deleted:
                            self._teardown(pod)

    def _start_pod(self, pod: LabPod) -> None:
        meta, spec = pod.obj["metadata"], pod.obj["spec"]
        name, namespace = meta["name"], meta["namespace"]
        node = spec.get("nodeName") or self.node_names[0]
        container = spec["containers"][0]
        if container["image"] in self.faults.pull_fails:
            with self.lock:
                pod.obj["status"]["containerStatuses"] = [
                    {
                        "name": container["name"],
                        "image": container["image"],
                        "ready": False,
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": f"Back-off pulling image {container['image']}",
                            }
                        },
                    }
                ]
                self._put(pod.obj)
            return
        if spec.get("hostNetwork"):  # the node's own namespace and address: no IPAM, no CNI (kubelet skips both)
            pod.ns, pod.ip = self.node_ns[node], self.node_ip[node]
        if not pod.ip:
            if self.faults.ipam_delay:
                time.sleep(self.faults.ipam_delay)
            allocated = self._allocate(pod, node)
            if not allocated:
                return
        if not pod.ns:
            self._plumb(pod, node)
        if container.get("args", [""])[0] == "netexec" and pod.server is None:
            port = next(a.split("=")[1] for a in container["args"] if a.startswith("--http-port="))
            pod.identity = self.workdir / f"{namespace}-{name}.identity"
            pod.identity.write_text(name)
            pod.server = netns.spawn(
                pod.ns, [sys.executable, str(SERVER), port, str(pod.identity)], self.workdir / f"{namespace}-{name}.log"
            )
            if not netns.wait_listening(pod.ns, int(port)):
                raise RuntimeError(f"server of {name} did not start")
        pod.node = node
        hook = self.faults.before_ready.pop(name, None)
        if hook:
            hook(self, namespace)
        with self.lock:
            if (namespace, name) not in self.pods:
                return  # deleted meanwhile
            pod.obj["status"] = {
                "phase": "Running",
                "podIP": pod.ip,
                "hostIP": self.node_ip[node],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": container["name"], "image": container["image"], "ready": True, "state": {"running": {}}}
                ],
            }
            pod.obj["spec"]["nodeName"] = node
            if not spec.get("hostNetwork"):  # Multus does not attach a hostNetwork pod: no network-status
                pod.obj["metadata"]["annotations"][NETWORK_STATUS] = json.dumps(
                    [{"name": "kube-system/macvlan-eth0", "interface": "eth0", "ips": [pod.ip], "default": True}]
                )
            self._put(pod.obj)
        self._sync_services()

    def _candidate_pools(self, pod: LabPod, node: str) -> builtins.list[str]:
        annotations = pod.obj["metadata"].get("annotations", {})
        if pod.obj["metadata"]["name"] in self.faults.ignore_pool_for:
            annotations = {}
        if "ipam.spidernet.io/ippool" in annotations:
            names = list(json.loads(annotations["ipam.spidernet.io/ippool"]).get("ipv4", []))
        elif "ipam.spidernet.io/ippools" in annotations:
            names = [n for e in json.loads(annotations["ipam.spidernet.io/ippools"]) for n in e.get("ipv4", [])]
        else:
            cfg = self.get("SpiderMultusConfig", "macvlan-eth0", "kube-system") or {}
            names = list(cfg.get("spec", {}).get("macvlan", {}).get("ippools", {}).get("ipv4", []))
        pools = [self.get("SpiderIPPool", n) for n in names]
        return [
            p["metadata"]["name"]
            for p in pools
            if p and (not p["spec"].get("nodeName") or node in p["spec"]["nodeName"])
        ]

    def _allocate(self, pod: LabPod, node: str) -> bool:
        meta = pod.obj["metadata"]
        with self.lock:
            for pool_name in self._candidate_pools(pod, node):
                pool = self.objects[self._key("SpiderIPPool", pool_name, None)]
                used = json.loads(pool.get("status", {}).get("allocatedIPs") or "{}")
                excluded = set(expand(pool["spec"].get("excludeIPs", [])))
                free = [ip for ip in expand(pool["spec"]["ips"]) if ip not in used and ip not in excluded]
                if meta["name"] in self.faults.duplicate_ip_for and used:
                    free = sorted(used)
                if not free and meta["name"] in self.faults.overcommit_for and not pod.starved:
                    self._starve(pod)  # Spiderpool says the pool is full...
                if not free and meta["name"] in self.faults.overcommit_for:
                    free = [str(ipaddress.ip_address(pool["spec"]["ips"][-1].split("-")[-1]) + 1)]  # ...yet it runs
                if not free:
                    continue
                pod.ip, pod.pool = free[0], pool_name
                uid = OTHER_UID if meta["name"] in self.faults.wrong_uid_for else meta["uid"]
                used[pod.ip] = {"pod": f"{meta['namespace']}/{meta['name']}", "podUid": uid}
                pool.setdefault("status", {})["allocatedIPs"] = json.dumps(used)
                count = pool["status"].get("allocatedIPCount", 0)
                self._refresh_pool(pool_name)
                if self.faults.stale_count:
                    pool["status"]["allocatedIPCount"] = count
                if self.faults.drop_endpoints:
                    return True
                self._put(
                    {
                        "apiVersion": SPIDERPOOL_API,
                        "kind": "SpiderEndpoint",
                        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                        "status": {
                            "current": {
                                "uid": meta["uid"],
                                "node": node,
                                "ips": [
                                    {
                                        "interface": "eth0",
                                        "ipv4": f"{pod.ip}/{NODE_NET.prefixlen}",
                                        "ipv4Pool": pool_name,
                                    }
                                ],
                            },
                            # a bare pod is its own controller (what Spiderpool records for one)
                            "ownerControllerType": "Pod",
                            "ownerControllerName": meta["name"],
                        },
                    }
                )
                return True
        if not pod.starved:
            self._starve(pod)
        return False

    def _starve(self, pod: LabPod) -> None:
        """Spiderpool's event for a pod whose pools are full."""
        pod.starved = True
        meta = pod.obj["metadata"]
        self._event(
            meta["namespace"],
            meta["name"],
            "FailedCreatePodSandBox",
            f'plugin type="spiderpool" failed (add): failed to allocate: {USED_OUT}',
        )

    def _release(self, pod: LabPod) -> None:
        meta = pod.obj["metadata"]
        with self.lock:
            if pod.pool and meta["name"] not in self.faults.leak_on_delete:
                pool = self.objects.get(self._key("SpiderIPPool", pod.pool, None))
                if pool:
                    used = json.loads(pool.get("status", {}).get("allocatedIPs") or "{}")
                    used.pop(pod.ip, None)
                    pool["status"]["allocatedIPs"] = json.dumps(used)
                    self._refresh_pool(pod.pool)
            self.objects.pop(self._key("SpiderEndpoint", meta["name"], meta["namespace"]), None)

    def _refresh_pool(self, name: str) -> None:
        with self.lock:
            pool = self.objects[self._key("SpiderIPPool", name, None)]
            status = pool.setdefault("status", {})
            status.setdefault("allocatedIPs", "{}")
            excluded = set(expand(pool["spec"].get("excludeIPs", [])))
            status["totalIPCount"] = len([ip for ip in expand(pool["spec"]["ips"]) if ip not in excluded])
            status["allocatedIPCount"] = len(json.loads(status["allocatedIPs"]))
            self._put(pool)

    def _plumb(self, pod: LabPod, node: str) -> None:
        """The pod's namespace, its macvlan from the real CNI plugin, and a coordinator veth to the node."""
        n = next(self._ids)
        pod_ns, node_ns, node_ip = f"{self.prefix}-p{n}", self.node_ns[node], self.node_ip[node]
        netns.add_netns(pod_ns)
        for sysctl in (pod.obj["spec"].get("securityContext") or {}).get("sysctls") or []:  # as runc sets them
            netns.sh("sysctl", "-qw", f"{sysctl['name']}={sysctl['value']}", ns=pod_ns)
        pod.ns, pod.node, pod.host_veth = pod_ns, node, f"h{self.prefix[-4:]}{n}"
        netns.cni("ADD", "macvlan", node_ns, pod_ns, pod_ns, "eth0", cni_config(pod.ip))
        netns.sh(
            "ip", "link", "add", pod.host_veth, "type", "veth", "peer", "name", "veth0", "netns", pod_ns, ns=node_ns
        )
        netns.sh("ip", "addr", "add", f"{node_ip}/32", "dev", pod.host_veth, ns=node_ns)
        netns.sh("ip", "link", "set", pod.host_veth, "up", ns=node_ns)
        netns.sh("ip", "route", "add", f"{pod.ip}/32", "dev", pod.host_veth, ns=node_ns)
        netns.sh("ip", "link", "set", "veth0", "up", ns=pod_ns)
        netns.sh("ip", "route", "add", f"{node_ip}/32", "dev", "veth0", "src", pod.ip, ns=pod_ns)
        netns.sh(
            "ip", "route", "add", str(SERVICE_NET), "via", node_ip, "dev", "veth0", "onlink", "src", pod.ip, ns=pod_ns
        )

    def _teardown(self, pod: LabPod) -> None:
        if pod.server and pod.server.poll() is None:
            pod.server.kill()
            pod.server.wait(timeout=5)
        if pod.ns and pod.obj["spec"].get("hostNetwork"):
            pod.ns = ""  # the node's namespace stays
        if pod.ns:
            with contextlib.suppress(RuntimeError):  # the namespace goes anyway
                netns.cni("DEL", "macvlan", self.node_ns[pod.node], pod.ns, pod.ns, "eth0", cni_config(pod.ip))
            netns.delete_netns(pod.ns)
            netns.sh("ip", "link", "del", pod.host_veth, ns=self.node_ns[pod.node], check=False)
            pod.ns = ""
        self._release(pod)

    def _sync_services(self) -> None:
        """kube-proxy's part: DNAT each Service's ClusterIP to its ready backends, in every node."""
        with self.lock:
            rules = []
            for svc in (o for (k, _, _), o in self.objects.items() if k == "Service"):
                selector = svc["spec"].get("selector", {})
                backends = sorted(
                    p.ip
                    for p in self.pods.values()
                    if p.ip
                    and p.obj["status"]["phase"] == "Running"
                    and p.obj["metadata"]["namespace"] == svc["metadata"]["namespace"]
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
            for ns in self.node_ns.values():
                netns.sh("nft", "-f", "-", ns=ns, stdin=script)

    # -- faults on the data path ------------------------------------------------------------------------------

    def pod(self, namespace: str, name: str) -> LabPod:
        return self.pods[(namespace, name)]

    def nft_in_pod(self, namespace: str, name: str, rule: str) -> None:
        """Add an nftables rule in a pod's namespace (e.g. `ip daddr X drop`, `numgen inc mod 2 0 drop`)."""
        ns = self.pod(namespace, name).ns
        netns.sh(
            "nft",
            "-f",
            "-",
            ns=ns,
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


# containerd's default capability set (pkg/oci/spec.go, defaultUnixCaps, at 0c3a3b35: 2.0 left out MKNOD, NET_RAW,
# SETFCAP, SYS_CHROOT and AUDIT_WRITE), for a container that does not drop ALL.
CONTAINERD_CAPS = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "KILL",
)


def container_process(pod: dict[str, Any]) -> list[str]:
    """The setpriv prefix that runs an exec'd command as the pod's container process runs: its uid and gid, only its
    capabilities (a uid other than 0 keeps none: Kubernetes sets no ambient capabilities, tests/upstream/ping.py),
    and no_new_privs when allowPrivilegeEscalation is false."""
    spec = pod["spec"]
    ctx = {**(spec.get("securityContext") or {}), **(spec["containers"][0].get("securityContext") or {})}
    caps = ctx.get("capabilities") or {}
    drop = set(caps.get("drop") or [])
    kept = set() if "ALL" in drop else set(CONTAINERD_CAPS) - drop
    kept |= set(caps.get("add") or [])
    capset = ",".join(["-all", *(f"+{c.lower()}" for c in sorted(kept))])
    uid, gid = ctx.get("runAsUser", 0), ctx.get("runAsGroup", 0)
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", f"--inh-caps={capset}"]
    cmd.append(f"--bounding-set={capset}")
    return [*cmd, "--no-new-privs"] if ctx.get("allowPrivilegeEscalation") is False else cmd


def cni_config(ip: str) -> dict[str, object]:
    """The macvlan plugin's configuration, with the address this double allocated (static IPAM)."""
    return {
        "cniVersion": "1.0.0",
        "name": "lab-underlay",
        "type": "macvlan",
        "master": "eth0",
        "mode": "bridge",
        "ipam": {"type": "static", "addresses": [{"address": f"{ip}/{NODE_NET.prefixlen}"}]},
    }

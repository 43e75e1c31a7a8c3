"""The lab's nodes and their kubelet: nodes are network namespaces bridged in a fabric namespace; a pod is a
namespace whose underlay interface the real CNI macvlan plugin creates on its node's eth0 with the address the
lab's Spiderpool allocated, plus a veth to its node as Spiderpool's coordinator makes. Its server is a real HTTP
server, `exec` runs the real command in the pod as its container process would run, and `logs` reads its output.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spider_validate.cluster.api import EXIT_MARKER, ApiError, ExecResult, unwrap_output, wrap_command
from spider_validate.cluster.spiderpool import NETWORK_STATUS

from tests.lab import netns
from tests.lab import server as agnhost
from tests.lab.ipam import NETWORK, NODE_NET, Ipam
from tests.lab.proxy import SERVICE_NET, Proxy
from tests.lab.store import Store, api_version

SERVER = Path(agnhost.__file__)
#: The version the lab's nodes report: the minor of the kubectl and API schemas the lab is checked with (1.36).
KUBELET_VERSION = "v1.36.0"


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


class Kubelet:
    """Every node's kubelet at once: `pods` are the pods it runs, started by one thread in creation order."""

    def __init__(
        self,
        store: Store,
        ipam: Ipam,
        proxy: Proxy,
        workdir: Path,
        prefix: str,
        node_names: builtins.list[str],
        before_ready: Callable[[str, str], None],
    ) -> None:
        self.store, self.ipam, self.proxy = store, ipam, proxy
        self.workdir, self.prefix, self.node_names = workdir, prefix, node_names
        self.before_ready = before_ready  # called with (pod, namespace) just before a pod shows Running
        self.pods: dict[tuple[str, str], LabPod] = {}
        self.node_ns: dict[str, str] = {}
        self.node_ip: dict[str, str] = {}
        self.start_seconds: builtins.list[float] = []  # how long the double took to start each pod (its own delay)
        self._sandboxes = itertools.count()
        self._thread = threading.Thread(target=self._loop, name="lab-kubelet", daemon=True)

    def start(self) -> None:
        """Room in the kernel's neighbour table, the fabric, the nodes (registered as Node objects), then the loop that
        starts pods."""
        netns.neighbour_room(len(self.node_names))  # one table for all the machine's namespaces: see its docstring
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
            self.proxy.add_node(ns)
            self.node_ns[name], self.node_ip[name] = ns, ip
            self.store.put(
                {
                    "apiVersion": api_version("Node"),
                    "kind": "Node",
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                    "spec": {},
                    "status": {
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "addresses": [{"type": "InternalIP", "address": ip}],
                        # the kubelet's own version (kubernetes pkg/kubelet/nodestatus/setters.go, VersionInfo)
                        "nodeInfo": {"kubeletVersion": KUBELET_VERSION},
                    },
                }
            )

    def run(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """After `store.stopped` is set: the loop ends, every pod is torn down."""
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self.store.lock:
            for pod in list(self.pods.values()):
                self.teardown(pod)
            self.pods.clear()

    def add(self, obj: dict[str, Any]) -> None:
        """A pod the API server accepted (Pending): the loop starts it."""
        with self.store.lock:
            self.pods[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = LabPod(obj)

    def remove(self, namespace: str, name: str) -> None:
        """A deleted pod goes now, or when the loop has finished starting it."""
        with self.store.lock:
            pod = self.pods.pop((namespace, name), None)
            if pod:
                pod.deleted = True
                if pod.starting:
                    return
                delay = self.store.faults.teardown_delay
                if delay:
                    threading.Thread(target=self._teardown_after, args=(pod, delay), daemon=True).start()
                else:
                    self.teardown(pod)

    def _teardown_after(self, pod: LabPod, delay: float) -> None:
        """The sandbox torn down (CNI DEL: the address released) `delay` after the pod object went, as after a forced
        delete: the object goes at once, the kubelet stops the sandbox when it gets to it."""
        time.sleep(delay)
        with self.store.lock:
            self.teardown(pod)

    def pod(self, namespace: str, name: str) -> LabPod:
        return self.pods[(namespace, name)]

    def sync_services(self) -> None:
        with self.store.lock:
            self.proxy.sync(self.pods.values())

    # -- pods' life ----------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.store.stopped.wait(0.05):
            with self.store.lock:
                pending = [p for p in self.pods.values() if p.obj["status"]["phase"] == "Pending"]
            for pod in pending:
                with self.store.lock:
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
                    self.store.event(
                        pod.obj["metadata"]["namespace"], pod.obj["metadata"]["name"], "LabError", str(exc)
                    )
                finally:
                    with self.store.lock:
                        pod.starting = False
                        if pod.deleted:
                            self.teardown(pod)

    def _start_pod(self, pod: LabPod) -> None:
        meta, spec = pod.obj["metadata"], pod.obj["spec"]
        name, namespace = meta["name"], meta["namespace"]
        node = spec.get("nodeName") or self.node_names[0]
        container = spec["containers"][0]
        faults = self.store.faults
        if container["image"] in faults.pull_fails:
            with self.store.lock:
                waiting = {"reason": "ImagePullBackOff", "message": f"Back-off pulling image {container['image']}"}
                pod.obj["status"]["containerStatuses"] = [container_status(container, {"waiting": waiting})]
                self.store.put(pod.obj)
            return
        if spec.get("hostNetwork"):  # the node's own namespace and address: no IPAM, no CNI (kubelet skips both)
            pod.ns, pod.ip = self.node_ns[node], self.node_ip[node]
        if not pod.ip:
            if faults.ipam_delay:
                time.sleep(faults.ipam_delay)
            if not self.ipam.allocate(pod, node):
                return
        if not pod.ns:
            self._plumb(pod, node)
        args = container.get("args") or []
        if args and args[0] in agnhost.COMMANDS:  # agnhost's servers, by the lab's stand-in
            if pod.server is None:
                pod.identity = self.workdir / f"{namespace}-{name}.identity"
                pod.identity.write_text(name)
                pod.server = netns.spawn(
                    pod.ns,
                    [sys.executable, str(SERVER), str(pod.identity), *args],
                    self.workdir / f"{namespace}-{name}.log",
                )
            port = agnhost.parse(args).http_port
            if port is not None and not netns.wait_listening(pod.ns, port, pod.server):
                if pod.server.poll() is not None:  # its container ended: Failed, as restartPolicy Never leaves it
                    self._failed(pod, container, pod.server.returncode)
                    return
                raise RuntimeError(f"server of {name} did not start")  # waited for again at the next pass
        pod.node = node
        self.before_ready(name, namespace)
        with self.store.lock:
            if self.pods.get((namespace, name)) is not pod:
                return  # deleted meanwhile (and maybe recreated under its name, as a StatefulSet's pod is)
            pod.obj["status"] = {
                "phase": "Running",
                "podIP": pod.ip,
                "hostIP": self.node_ip[node],
                "conditions": [{"type": "Ready", "status": "True"}],
                "podIPs": [{"ip": pod.ip}],
                "containerStatuses": [container_status(container, {"running": {}})],
            }
            pod.obj["spec"]["nodeName"] = node
            if not spec.get("hostNetwork"):  # Multus does not attach a hostNetwork pod: no network-status
                pod.obj["metadata"]["annotations"][NETWORK_STATUS] = json.dumps(
                    [{"name": "/".join(NETWORK), "interface": "eth0", "ips": [pod.ip], "default": True}]
                )
            self.store.put(pod.obj)
        self.sync_services()

    def _failed(self, pod: LabPod, container: dict[str, Any], code: int) -> None:
        """The pod whose one container exited before serving: phase Failed, never Running (the lab restarts
        nothing; the validator's pods are restartPolicy Never)."""
        meta = pod.obj["metadata"]
        terminated = {"terminated": {"exitCode": code, "reason": "Error" if code else "Completed"}}
        with self.store.lock:
            if self.pods.get((meta["namespace"], meta["name"])) is pod:
                pod.obj["status"] = {"phase": "Failed", "containerStatuses": [container_status(container, terminated)]}
                self.store.put(pod.obj)

    def _plumb(self, pod: LabPod, node: str) -> None:
        """The pod's namespace, its macvlan from the real CNI plugin, and a coordinator veth to the node."""
        n = next(self._sandboxes)
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

    def teardown(self, pod: LabPod) -> None:
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
        self.ipam.release(pod)

    # -- exec and logs -------------------------------------------------------------------------------------------

    def exec(self, namespace: str, pod: str, command: Sequence[str], timeout: float) -> ExecResult:
        with self.store.lock:
            lab_pod = self.pods.get((namespace, pod))
            if lab_pod is None or not lab_pod.ns or lab_pod.obj["status"]["phase"] != "Running":
                raise ApiError(404 if lab_pod is None else 400, f"pod {namespace}/{pod} is not running")
            ns = lab_pod.ns
        self.proxy.apply()  # the Services' rules as the pods now are, before the command's traffic
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
            return ExecResult(None, "", "timed out", timed_out=True)
        fault = ExecFault.take(self.store)
        code, out = unwrap_output(fault.stdout(proc.stdout), None if fault.status_lost else proc.returncode)
        return ExecResult(code, out, proc.stderr)

    def logs(self, namespace: str, pod: str) -> str:
        log = self.workdir / f"{namespace}-{pod}.log"
        return log.read_text() if log.exists() else ""


@dataclass(frozen=True)
class ExecFault:
    """What the lab's faults do to one exec, on either path (the kubelet's in process, the API server's websocket):
    what the pod prints rewritten (`garble`: a hostile pod), its exit code lost with its marker
    (`lose_exit_code`), or its exit status only, the marker surviving (`lose_exit_status`)."""

    garble: Callable[[str], str] | None
    code_lost: bool
    status_lost: bool

    @staticmethod
    def take(store: Store) -> ExecFault:
        """This exec's faults, each count consumed."""
        faults = store.faults
        with store.lock:
            code_lost, status_lost = faults.lose_exit_code > 0, False
            if code_lost:
                faults.lose_exit_code -= 1
            elif faults.lose_exit_status:
                faults.lose_exit_status -= 1
                status_lost = True
        return ExecFault(faults.garble, code_lost, status_lost or code_lost)

    @property
    def rewrites(self) -> bool:
        """Whether stdout must be read whole before it is sent."""
        return self.garble is not None or self.code_lost

    def stdout(self, text: str) -> str:
        text = (self.garble or str)(text)
        return text.split(EXIT_MARKER)[0] if self.code_lost else text


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


def container_status(container: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """A ContainerStatus with the fields the API requires (core/v1 types.go: name, image, imageID, ready,
    restartCount; the official client refuses a status without them). imageID is empty until the image is pulled;
    the lab's images are local, so a running container's ID names its tag."""
    running = "running" in state
    return {"name": container["name"], "image": container["image"], "imageID": container["image"] if running else "",
            "ready": running, "started": running, "restartCount": 0, "state": state}  # fmt: skip


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
    """The macvlan plugin's configuration, with the address the lab's Spiderpool allocated (static IPAM)."""
    return {
        "cniVersion": "1.0.0",
        "name": "lab-underlay",
        "type": "macvlan",
        "master": "eth0",
        "mode": "bridge",
        "ipam": {"type": "static", "addresses": [{"address": f"{ip}/{NODE_NET.prefixlen}"}]},
    }

"""The objects a run creates: its namespace, test pods on each node, a Service; every one labelled with the run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from spider_validate.cluster import spiderpool
from spider_validate.engine.params import MANAGED_BY, RUN_LABEL, Parameters

if TYPE_CHECKING:
    from spider_validate.engine.model import PodSecurity

ROLE_LABEL = "spider-validate/role"
APP_LABEL = "spider-validate/app"
# What a test pod is for: the run's shared pods (server, client, app), a suite's own, `watch`'s probes.
Role = Literal["server", "client", "app", "ipam", "rdma", "perf", "watch-probe"]
SERVING_ROLES: set[Role] = {"server", "app"}  # pods that run the HTTP server; every other role sleeps


@dataclass(frozen=True)
class Network:
    namespace: str
    name: str
    attach: Literal["default", "secondary"]
    pools: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def interface(self) -> str:
        """The pod interface the underlay address is on, as the network-status annotation names it."""
        return "eth0" if self.attach == "default" else "net1"

    def pod_annotations(self, pools: tuple[str, ...] = ()) -> dict[str, str]:
        network = {spiderpool.DEFAULT_NETWORK if self.attach == "default" else spiderpool.NETWORKS: self.ref}
        return network | (spiderpool.pool_annotation(self.interface, pools) if pools else {})


def labels(run_id: str, **extra: str) -> dict[str, str]:
    return {**MANAGED_BY, RUN_LABEL: run_id, **extra}


PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_LEVELS = ("restricted", "baseline", "privileged")  # each admits all the ones before it
# ping without CAP_NET_RAW: an ICMP datagram socket, which the kernel allows to the groups in this range (a safe
# sysctl Pod Security's baseline admits; containerd 1.7 leaves the kernel's "1 0", nobody). Every uid and gid, as
# containerd 2.0 sets it with enable_unprivileged_icmp.
PING_SYSCTL = {"name": "net.ipv4.ping_group_range", "value": "0 2147483647"}


def pod_security(needed: Iterable[PodSecurity]) -> PodSecurity:
    """The level the run's namespace enforces: baseline unless a test's pods need more (IPC_LOCK, hostNetwork)."""
    return "privileged" if "privileged" in needed else "baseline"


def admits(enforced: str | None, needed: PodSecurity) -> bool:
    """Whether a namespace enforcing `enforced` admits pods that need `needed`; unlabelled (None): the cluster's
    default decides, and the API server's refusal will say so."""
    return enforced is None or enforced not in PSA_LEVELS or PSA_LEVELS.index(enforced) >= PSA_LEVELS.index(needed)


def label_command(name: str, level: PodSecurity) -> str:
    """What an administrator runs so that `name` admits pods of `level`."""
    return f"kubectl label namespace {name} {PSA_ENFORCE}={level} --overwrite"


def namespace(name: str, run_id: str, level: PodSecurity = "baseline") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**labels(run_id), PSA_ENFORCE: level}},
    }


def _security(non_root: bool) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if non_root:
        ctx["runAsNonRoot"] = True
        ctx["runAsUser"] = 65532
    return ctx


def pod(
    name: str,
    ns: str,
    run_id: str,
    role: Role,
    node: str,
    image: str,
    network: Network,
    params: Parameters,
    app: str | None = None,
    pools: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A test pod pinned to `node`: a serving role answers HTTP with its name and nothing else (`agnhost
    serve-hostname`, on every path; not netexec, whose /shell runs `sh -c` of the query); the others sleep (probes
    exec)."""
    container: dict[str, Any]
    serves = role in SERVING_ROLES
    if not serves:
        container = {"name": role, "image": image, "command": ["sleep", "infinity"]}
    else:
        container = {
            "name": "server",
            "image": image,
            "args": ["serve-hostname", f"--port={params.http_port}"],
            "ports": [{"name": "http", "containerPort": params.http_port}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 2},
        }
    container |= {
        "imagePullPolicy": "IfNotPresent",
        "securityContext": _security(non_root=serves),
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}},
    }
    extra = {ROLE_LABEL: role} | ({APP_LABEL: app} if app else {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": labels(run_id, **extra),
            "annotations": network.pod_annotations(pools),
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"sysctls": [dict(PING_SYSCTL)]},
            "containers": [container],
            "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
        },
    }


def service(name: str, ns: str, run_id: str, params: Parameters) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels(run_id)},
        "spec": {
            "selector": {RUN_LABEL: run_id, ROLE_LABEL: "server"},
            "ports": [{"name": "http", "port": 80, "targetPort": params.http_port}],
        },
    }


def run_objects(
    run_id: str, ns: str, nodes: list[str], network: Network, params: Parameters, level: PodSecurity = "baseline"
) -> list[dict[str, Any]]:
    """The namespace (unless the run is in an existing one) and the pods every run shares (connectivity, apps), in
    creation order."""
    objs = [] if params.in_namespace else [namespace(ns, run_id, level)]
    for i, node in enumerate(nodes):
        objs.append(pod(f"server-{i}", ns, run_id, "server", node, params.image("server"), network, params))
        objs.append(pod(f"client-{i}", ns, run_id, "client", node, params.image("client"), network, params))
    for a in range(params.apps):
        for i, node in enumerate(nodes):
            objs.append(
                pod(f"app-{a}-{i}", ns, run_id, "app", node, params.image("server"), network, params, app=f"app-{a}")
            )
    objs.append(service("echo", ns, run_id, params))
    return objs

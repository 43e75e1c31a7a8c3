"""The narrow interface to the cluster: what spider-validate asks of it, the errors it raises, the kinds it knows.

Everything it returns is plain data in the shape of `kubectl get -o json`, so a test double can stand in for the
implementation (tests/lab/ does, with pods that are real network namespaces); `kube.py` implements it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

EXIT_MARKER = "__spider_validate_exit__="
SPIDERPOOL_GROUP = "spiderpool.spidernet.io"
SPIDERPOOL_VERSION = "v2beta1"
RBAC_FILE = "validators/rbac.yaml"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class ApiError(Exception):
    """An API call that failed: `status` is the HTTP status (0 when the server was not reached)."""

    def __init__(self, status: int, message: str, transient: bool | None = None) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        self._transient = transient

    @property
    def transient(self) -> bool:
        if self._transient is not None:
            return self._transient
        return self.status in {0, 429, 500, 502, 503, 504}


class ConfigProblem(Exception):
    """The kubeconfig cannot be used; the message names the file and what is wrong with it."""


@dataclass(frozen=True)
class Timeouts:
    """Every API call's bounds, in seconds: to connect, and to wait for an answer once connected."""

    connect: float = 5.0
    read: float = 30.0


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None  # None: the command's exit status was lost
    stdout: str
    stderr: str
    timed_out: bool = False  # the command had not ended at the exec's timeout: it was left, its status unknown


class Cluster(Protocol):
    """What spider-validate needs from a cluster; objects are dicts as `kubectl get -o json` shows them."""

    def server_version(self) -> str: ...

    def crd_names(self) -> set[str]: ...

    def list(self, kind: str, namespace: str | None = None, label_selector: str = "") -> list[dict[str, Any]]: ...

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...

    def create(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None: ...

    def watch(
        self, kind: str, namespace: str, label_selector: str, timeout_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...

    def exec(self, namespace: str, pod: str, command: Sequence[str], timeout: float) -> ExecResult: ...

    def logs(self, namespace: str, pod: str) -> str: ...


def wrap_command(command: Sequence[str]) -> list[str]:
    """Run `command` under sh and print its exit code on stdout: read even when the exec status is lost."""
    quoted = " ".join("'" + part.replace("'", "'\\''") + "'" for part in command)
    return ["sh", "-c", f'{quoted}; echo "{EXIT_MARKER}$?"']


def unwrap_output(stdout: str, status_code: int | None) -> tuple[int | None, str]:
    """The exit code from the marker (or the exec status when the marker is missing) and the real stdout."""
    match = re.search(rf"{re.escape(EXIT_MARKER)}(\d+)\n?$", stdout)
    if match:
        return int(match.group(1)), stdout[: match.start()]
    return status_code, stdout


# Kinds spider-validate uses: (API group/version, plural, namespaced).
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("v1", "namespaces", False),
    "Node": ("v1", "nodes", False),
    "Pod": ("v1", "pods", True),
    "Service": ("v1", "services", True),
    "Event": ("v1", "events", True),
    "ConfigMap": ("v1", "configmaps", True),
    "Deployment": ("apps/v1", "deployments", True),
    "DaemonSet": ("apps/v1", "daemonsets", True),
    "StatefulSet": ("apps/v1", "statefulsets", True),
    "SpiderIPPool": (f"{SPIDERPOOL_GROUP}/{SPIDERPOOL_VERSION}", "spiderippools", False),
    "SpiderMultusConfig": (f"{SPIDERPOOL_GROUP}/{SPIDERPOOL_VERSION}", "spidermultusconfigs", True),
    "SpiderEndpoint": (f"{SPIDERPOOL_GROUP}/{SPIDERPOOL_VERSION}", "spiderendpoints", True),
    "SpiderCoordinator": (f"{SPIDERPOOL_GROUP}/{SPIDERPOOL_VERSION}", "spidercoordinators", False),
    # Dynamic Resource Allocation (Kubernetes 1.34+): EFA through aws-dranet's claims
    "DeviceClass": ("resource.k8s.io/v1", "deviceclasses", False),
    "ResourceSlice": ("resource.k8s.io/v1", "resourceslices", False),
    "ResourceClaim": ("resource.k8s.io/v1", "resourceclaims", True),
    "ResourceClaimTemplate": ("resource.k8s.io/v1", "resourceclaimtemplates", True),
}


def resource_path(kind: str, namespace: str | None, name: str | None = None) -> str:
    """The API path of a kind's objects in a namespace (all namespaces without one), or of one of them."""
    api_version, plural, namespaced = KINDS[kind]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    ns = f"/namespaces/{namespace}" if namespaced and namespace else ""
    return f"{base}{ns}/{plural}" + (f"/{name}" if name else "")

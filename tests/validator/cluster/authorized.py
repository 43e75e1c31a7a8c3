"""The namespace double behind Kubernetes' RBAC: each call of the `Cluster` interface is authorized as the request
KubeCluster makes for it (its path from api.resource_path and api.CRD_PATH, its method; the `kubernetes` client's
watch is a list with watch=true, its exec a websocket GET of pods/NAME/exec) with tests/upstream/rbac.py's authorizer
and the given roles; a refused call raises the ApiError 403 KubeCluster raises, and every call is recorded."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from spider_validate.cluster.api import CRD_PATH, RBAC_FILE, ApiError, Cluster, ExecResult, resource_path

from tests.upstream.rbac import Authorizer, Request, User, request_info


class Authorized:
    def __init__(self, cluster: Cluster, authorizer: Authorizer, user: User) -> None:
        self.cluster, self.authorizer, self.user = cluster, authorizer, user
        self.calls: list[Request] = []
        self.refused: list[Request] = []

    def _authorize(self, request: Request) -> None:
        self.calls.append(request)
        if not self.authorizer.allows(self.user, request):
            self.refused.append(request)
            what = request.resource + (f"/{request.subresource}" if request.subresource else "")
            where = f" in namespace {request.namespace}" if request.namespace else ""
            raise ApiError(403, f"forbidden to {request.verb} {what}{where}: grant what {RBAC_FILE} lists")

    def _check(self, method: str, path: str) -> None:
        self._authorize(request_info(method, path))

    def server_version(self) -> str:
        self._check("GET", "/version")
        return self.cluster.server_version()

    def crd_names(self) -> set[str]:
        self._check("GET", CRD_PATH)
        return self.cluster.crd_names()

    def list(self, kind: str, namespace: str | None = None, label_selector: str = "") -> list[dict[str, Any]]:
        self._check("GET", resource_path(kind, namespace))
        return self.cluster.list(kind, namespace, label_selector)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self._check("GET", resource_path(kind, namespace, name))
        return self.cluster.get(kind, name, namespace)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._check("POST", resource_path(obj["kind"], obj["metadata"].get("namespace")))
        return self.cluster.create(obj)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        self._check("DELETE", resource_path(kind, namespace, name))
        self.cluster.delete(kind, name, namespace)

    def watch(
        self, kind: str, namespace: str, label_selector: str, timeout_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        self._check("GET", resource_path(kind, namespace) + "?watch=true")
        return self.cluster.watch(kind, namespace, label_selector, timeout_seconds)

    def exec(self, namespace: str, pod: str, command: Sequence[str], timeout: float) -> ExecResult:
        """The websocket upgrade is a GET, authorized as `get` on pods/exec, and from Kubernetes 1.35 also as
        `create` (AuthorizePodWebsocketUpgradeCreatePermission, kubernetes PR 134577): both are required here."""
        upgrade = request_info("GET", resource_path("Pod", namespace, pod) + "/exec")
        self._authorize(upgrade)
        self._authorize(Request("create", upgrade.group, upgrade.resource, "exec", namespace, pod))
        return self.cluster.exec(namespace, pod, command, timeout)

    def logs(self, namespace: str, pod: str) -> str:
        self._check("GET", resource_path("Pod", namespace, pod) + "/log")
        return self.cluster.logs(namespace, pod)

    def unused(self) -> set[tuple[str, str, str, str]]:
        """The grants (namespace or "*", group, resource, verb) that no call needed: a grant in `*` (a ClusterRole's,
        cluster-wide) serves calls in every namespace and cluster-scoped ones, a Role's those of its namespace."""
        called = {
            (r.namespace, r.group, r.resource + (f"/{r.subresource}" if r.subresource else ""), r.verb)
            for r in self.calls
            if r.is_resource
        }
        return {
            grant
            for grant in self.authorizer.granted(self.user)
            if not any(grant[1:] == call[1:] and grant[0] in {"*", call[0]} for call in called)
        }

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster, name)  # the double's own controls (faults, pods, ...)

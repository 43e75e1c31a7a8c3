"""The narrow interface to the cluster, and its implementation on the official `kubernetes` client.

This module is the only code that knows about the Kubernetes API. Everything it returns is plain data in
the shape of `kubectl get -o json`, so a test double can stand in for it (tests/lab/ does, with pods that
are real network namespaces).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

EXIT_MARKER = "__spider_validate_exit__="
SPIDERPOOL_GROUP = "spiderpool.spidernet.io"
SPIDERPOOL_VERSION = "v2beta1"


class ApiError(Exception):
    """An API call that failed: `status` is the HTTP status (0 when the server was not reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status

    @property
    def transient(self) -> bool:
        return self.status in {0, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None  # None: the command's exit status was lost
    stdout: str
    stderr: str


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
}


class KubeCluster:
    """Cluster on the official client; ApiException becomes ApiError, exec reads the exit marker."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        try:
            config.load_kube_config(config_file=kubeconfig, context=context)
        except (ConfigException, FileNotFoundError, TypeError) as exc:
            try:
                config.load_incluster_config()
            except ConfigException:
                raise ApiError(0, f"no usable kubeconfig ({exc})") from exc
        self._api = client.ApiClient()
        self._dynamic = client.CustomObjectsApi(self._api)
        self._core = client.CoreV1Api(self._api)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise ApiError(exc.status or 0, exc.reason or str(exc)) from exc
        except (HTTPError, OSError) as exc:
            raise ApiError(0, f"cluster unreachable: {exc}") from exc

    def _path(self, kind: str, namespace: str | None, name: str | None = None) -> str:
        api_version, plural, namespaced = KINDS[kind]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        ns = f"/namespaces/{namespace}" if namespaced and namespace else ""
        return f"{base}{ns}/{plural}" + (f"/{name}" if name else "")

    def _request(self, method: str, path: str, body: Any = None, query: list[tuple[str, Any]] | None = None) -> Any:
        data = self._call(
            self._api.call_api,
            path,
            method,
            query_params=query or [],
            body=body,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            auth_settings=["BearerToken"],
            response_type="object",
            _preload_content=True,
            _return_http_data_only=True,
        )
        return data

    def server_version(self) -> str:
        data = self._request("GET", "/version")
        return str(data.get("gitVersion", "unknown"))

    def crd_names(self) -> set[str]:
        data = self._request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        return {item["metadata"]["name"] for item in data.get("items", [])}

    def list(self, kind: str, namespace: str | None = None, label_selector: str = "") -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        items = self._request("GET", self._path(kind, namespace), query=query).get("items", [])
        return [{"kind": kind, **item} for item in items]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return dict(self._request("GET", self._path(kind, namespace, name)))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj["metadata"].get("namespace")
        return dict(self._request("POST", self._path(obj["kind"], namespace), body=obj))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        try:
            self._request("DELETE", self._path(kind, namespace, name), body={"propagationPolicy": "Background"})
        except ApiError as exc:
            if exc.status != 404:
                raise

    def watch(
        self, kind: str, namespace: str, label_selector: str, timeout_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        from kubernetes import watch

        assert kind == "Pod", "spider-validate only watches pods"
        w = watch.Watch()
        stream = w.stream(
            self._core.list_namespaced_pod, namespace, label_selector=label_selector, timeout_seconds=timeout_seconds
        )
        try:
            for event in stream:
                yield event["type"], self._api.sanitize_for_serialization(event["object"])
        except Exception as exc:
            raise ApiError(0, f"watch dropped: {exc}") from exc
        finally:
            w.stop()

    def exec(self, namespace: str, pod: str, command: Sequence[str], timeout: float) -> ExecResult:
        from kubernetes.stream import stream

        resp = self._call(
            stream,
            self._core.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=wrap_command(command),
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
        deadline = time.monotonic() + timeout
        out, err = [], []
        while resp.is_open() and time.monotonic() < deadline:
            resp.update(timeout=1)
            if resp.peek_stdout():
                out.append(resp.read_stdout())
            if resp.peek_stderr():
                err.append(resp.read_stderr())
        timed_out = resp.is_open()
        resp.close()
        status = None if timed_out else resp.returncode
        code, stdout = unwrap_output("".join(out), status)
        return ExecResult(code, stdout, "".join(err) + ("\n(timed out)" if timed_out else ""))

    def logs(self, namespace: str, pod: str) -> str:
        return str(self._call(self._core.read_namespaced_pod_log, pod, namespace, tail_lines=200))

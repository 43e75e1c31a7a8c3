"""A minimal Kubernetes API server on 127.0.0.1 for the real kubectl, which records every request as the authorizer
sees it and refuses (403) what the RBAC objects it is given do not allow the request's user.

It serves what kubectl's apply, delete and wait need: discovery (/api, /apis and each group version's resource
list), an OpenAPI v3 index and per-group-version documents whose PATCH operations take `fieldValidation` (kubectl
then asks the server to validate, as it does a real one: staging/src/k8s.io/kubectl/pkg/cmd/apply, the
QueryParamVerifierV3), then get, list (label selectors as tests/upstream/cluster.py's model reads them, and the
`metadata.name` field selector), watch (the current objects, then their deletion), server-side apply (PATCH,
application/apply-patch+yaml: a new object is created and, as handlers/patch.go authorizes it, also needs
`create`) and delete (Foreground propagation keeps the object, with the garbage collector's finalizer, for a moment
before it goes: what a waiting kubectl must watch). The user is the kubeconfig's bearer token.
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.conftest import REPO
from tests.lab.apiserver import chunk as _chunk
from tests.lab.apiserver import reply as _reply
from tests.lab.apiserver import serve_tls
from tests.upstream.cluster import labels_match
from tests.upstream.rbac import Authorizer, Request, User, request_info

KUBECTL = str(REPO / ".tools" / "bin" / "kubectl")
FOREGROUND_SECONDS = 0.3  # how long a foreground deletion keeps its object (the garbage collector's pass)


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_path(self) -> str:
        return f"apis/{self.group}/{self.version}" if self.group else f"api/{self.version}"


RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", False),
    Resource("", "v1", "pods", "Pod", True),
    Resource("", "v1", "services", "Service", True),
    Resource("", "v1", "configmaps", "ConfigMap", True),
    Resource("apps", "v1", "deployments", "Deployment", True),
    Resource("spiderpool.spidernet.io", "v2beta1", "spiderippools", "SpiderIPPool", False),
    Resource("spiderpool.spidernet.io", "v2beta1", "spidermultusconfigs", "SpiderMultusConfig", True),
    Resource("sriovnetwork.openshift.io", "v1", "sriovnetworknodepolicies", "SriovNetworkNodePolicy", True),
]
Key = tuple[str, str, str, str]  # group, plural, namespace ("" cluster-scoped), name


@dataclass
class ApiServer:
    authorizer: Authorizer | None = None
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)  # bearer token -> who it is
    requests: list[tuple[User, Request]] = field(default_factory=list)  # as served
    refused: list[tuple[User, Request]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    port: int = 0
    ca: str = ""  # the PEM certificate it serves (set by `running`)

    def resource(self, kind: str) -> Resource:
        return next(r for r in RESOURCES if r.kind == kind)

    def key(self, obj: dict[str, Any]) -> Key:
        res = self.resource(obj["kind"])
        namespace = obj["metadata"].get("namespace", "") if res.namespaced else ""
        return (res.group, res.plural, namespace, obj["metadata"]["name"])

    def put(self, obj: dict[str, Any]) -> None:
        with self.lock:
            stored = copy.deepcopy(obj)
            stored["metadata"].setdefault("resourceVersion", "1")
            self.objects[self.key(stored)] = stored

    # -- the calls -----------------------------------------------------------------------------------------------

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        user = self.users.get(handler.headers.get("Authorization", "").removeprefix("Bearer "), User("anonymous"))
        request = request_info(handler.command, handler.path)
        if not self._allowed(user, request):
            refusal = f"{user.name} cannot {request.verb} {request.resource or request.path}"
            return _reply(handler, 403, _status(403, "Forbidden", refusal))
        if not request.is_resource:
            return self._discovery(handler, url.path)
        res = next(
            (r for r in RESOURCES if r.group == request.group and r.plural == request.resource),
            None,
        )
        if res is None:
            return _reply(handler, 404, _status(404, "NotFound", url.path))
        key = (res.group, res.plural, request.namespace if res.namespaced else "", request.name)
        if request.verb == "get":
            obj = self.objects.get(key)
            return _reply(handler, 200, obj) if obj else _reply(handler, 404, _status(404, "NotFound", request.name))
        if request.verb in {"list", "watch"}:
            items = self._select(res, request.namespace, query)
            if request.verb == "list":
                listing = {"kind": f"{res.kind}List", "apiVersion": _api_version(res), "items": items}
                return _reply(handler, 200, listing | {"metadata": {"resourceVersion": "1"}})
            return self._watch(handler, res, request.namespace, query)
        if request.verb == "patch":
            obj = yaml.safe_load(body)
            with self.lock:
                created = key not in self.objects
                if created and not self._allowed(user, Request("create", *_attributes(request))):
                    return _reply(handler, 403, _status(403, "Forbidden", f"{user.name} cannot create {res.plural}"))
                self.put(obj)
            return _reply(handler, 201 if created else 200, self.objects[key])
        if request.verb == "delete":
            options = json.loads(body or b"{}")
            with self.lock:
                obj = self.objects.get(key)
                if obj is None:
                    return _reply(handler, 404, _status(404, "NotFound", request.name))
                if options.get("propagationPolicy") == "Foreground":
                    obj["metadata"]["deletionTimestamp"] = "now"
                    obj["metadata"]["finalizers"] = ["foregroundDeletion"]
                    threading.Timer(FOREGROUND_SECONDS, lambda: self.objects.pop(key, None)).start()
                else:
                    self.objects.pop(key)
            return _reply(handler, 200, obj)
        return _reply(handler, 405, _status(405, "MethodNotAllowed", request.verb))

    def _allowed(self, user: User, request: Request) -> bool:
        with self.lock:
            if self.authorizer is not None and not self.authorizer.allows(user, request):
                self.refused.append((user, request))
                return False
            self.requests.append((user, request))
            return True

    def _select(self, res: Resource, namespace: str, query: dict[str, str]) -> list[dict[str, Any]]:
        name = query.get("fieldSelector", "").removeprefix("metadata.name=")
        with self.lock:
            return [
                copy.deepcopy(obj)
                for (group, plural, ns, obj_name), obj in sorted(self.objects.items())
                if (group, plural) == (res.group, res.plural)
                and (not namespace or ns == namespace)
                and (not name or obj_name == name)
                and labels_match(obj["metadata"].get("labels") or {}, query.get("labelSelector", ""))
            ]

    def _watch(self, handler: BaseHTTPRequestHandler, res: Resource, namespace: str, query: dict[str, str]) -> None:
        """The objects selected now (ADDED), then DELETED for each as it goes, until all went or the timeout."""
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        watching = {o["metadata"]["name"]: o for o in self._select(res, namespace, query)}
        deadline = time.monotonic() + min(float(query.get("timeoutSeconds", 30)), 30)
        for obj in watching.values():
            _chunk(handler, {"type": "ADDED", "object": obj})
        while watching and time.monotonic() < deadline:
            present = {o["metadata"]["name"] for o in self._select(res, namespace, query)}
            for name in [n for n in watching if n not in present]:
                _chunk(handler, {"type": "DELETED", "object": watching.pop(name)})
            time.sleep(0.05)
        handler.wfile.write(b"0\r\n\r\n")

    def _discovery(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        versions = sorted({(r.group, r.version) for r in RESOURCES})
        if path == "/api":
            return _reply(handler, 200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = [
                {"name": g, "versions": [gv := {"groupVersion": f"{g}/{v}", "version": v}], "preferredVersion": gv}
                for g, v in versions
                if g
            ]
            return _reply(handler, 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if path == "/openapi/v3":
            paths = {r.api_path: {"serverRelativeURL": f"/openapi/v3/{r.api_path}?hash=0"} for r in RESOURCES}
            return _reply(handler, 200, {"paths": paths})
        for group, version in versions:
            here = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
            if path == f"/{here[0].api_path}":
                listed = [
                    {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind,
                     "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                    for r in here
                ]  # fmt: skip
                group_version = f"{group}/{version}" if group else version
                listing = {"kind": "APIResourceList", "groupVersion": group_version, "resources": listed}
                return _reply(handler, 200, listing)
            if path == f"/openapi/v3/{here[0].api_path}":
                return _reply(handler, 200, _openapi(here))
        return _reply(handler, 404, _status(404, "NotFound", path))


def _attributes(request: Request) -> tuple[str, str, str, str, str]:
    return request.group, request.resource, request.subresource, request.namespace, request.name


def _api_version(res: Resource) -> str:
    return f"{res.group}/{res.version}" if res.group else res.version


def _openapi(resources: list[Resource]) -> dict[str, Any]:
    """Each resource's item path with the verbs kubectl looks up, each naming the kind and taking fieldValidation."""
    paths = {}
    for r in resources:
        path = f"/{r.api_path}/" + ("namespaces/{namespace}/" if r.namespaced else "") + f"{r.plural}/{{name}}"
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        param = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}]
        paths[path] = {verb: {"x-kubernetes-group-version-kind": gvk, "parameters": param} for verb in ("patch", "put")}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message}  # fmt: skip


@contextmanager
def running(api: ApiServer, workdir: Path) -> Iterator[ApiServer]:
    """The server on a free port of 127.0.0.1 over TLS, for the duration of the block."""
    server, api.ca = serve_tls(api.serve, workdir)
    api.port = server.server_port
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


def kubectl(api: ApiServer, user: User, args: list[str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """The real kubectl as `user` (a bearer token of its own) against the server."""
    token = f"token-{len(api.users)}"
    api.users[token] = user
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "t",
                "cluster": {
                    "server": f"https://127.0.0.1:{api.port}",
                    "certificate-authority-data": base64.b64encode(api.ca.encode()).decode(),
                },
            }
        ],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "u"}}],
        "current-context": "t",
        "users": [{"name": "u", "user": {"token": token}}],
    }
    path = workdir / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    env = {"KUBECONFIG": str(path), "HOME": str(workdir), "PATH": "/usr/bin:/bin"}
    return subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, timeout=60)

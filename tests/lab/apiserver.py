"""The lab double served as a Kubernetes API over HTTPS on 127.0.0.1, for the installed `spider-validate` (the
`kubernetes` client) and the real kubectl: `python -m tests.lab.apiserver --nodes N --kubeconfig PATH` starts the
lab (as root: pods are network namespaces), writes a kubeconfig (the CA it made, a bearer token per user), serves
until SIGTERM, then removes everything it made.

Each behaviour follows kube-apiserver (kubernetes/kubernetes staging/src/k8s.io/apiserver at v0.36, unless cited
otherwise), through the lab's parts (tests/lab/cluster.py) for what a request does:
- Routing and the authorizer's attributes: pkg/endpoints/request/requestinfo.go (tests/upstream/rbac.py
  `request_info`); authentication by bearer token, 401 `Unauthorized` without a known one (pkg/endpoints/filters/
  authentication.go, unauthorized()); RBAC as tests/upstream/rbac.py evaluates it over the Role, ClusterRole and
  bindings stored here, its refusal worded as pkg/endpoints/handlers/responsewriters/errors.go forbiddenMessage().
- Errors as metav1.Status (tests/upstream/apimachinery.py, api/errors/errors.go), written with the Status' code
  (responsewriters/status.go ErrorToAPIStatus).
- list (handlers/get.go ListResource): labelSelector (labels.Parse) and fieldSelector (each kind's field labels),
  both 400 when malformed (tests/upstream/selectors.py); the list options' validation
  (apimachinery pkg/apis/meta/internalversion/validation/validation.go ValidateListOptions, 422 Invalid on
  ListOptions.meta.k8s.io); `limit` and `continue` as the etcd3 store pages (pkg/storage/etcd3/store.go GetList,
  pkg/storage/continue.go: the token is base64 of {"v":"meta.k8s.io/v1","rv":RV,"start":KEY+"\\x00"}, a later page
  is read at the token's resourceVersion, remainingItemCount only without selectors, a compacted one 410 with
  handleCompactedErrorForPaging's message); items of built-in kinds without apiVersion and kind, as the API server
  encodes a list (a custom resource's keep theirs: they are unstructured).
- watch (handlers/watch.go, pkg/storage/cacher): newline-delimited JSON events over a chunked response; no
  resourceVersion or "0": the current objects as ADDED first; a resourceVersion: the changes after it, or one
  ERROR event with 410 Expired once compacted (the cacher answers a too old version with an error watcher,
  cacher.go newErrWatcher); sendInitialEvents: ADDED, then a BOOKMARK annotated k8s.io/initial-events-end (the
  WatchList protocol client-go's reflector speaks); allowWatchBookmarks: a BOOKMARK shortly before the timeout
  (cacher.go: bookmarks are due ~2 s before a watcher's deadline).
- create (handlers/create.go): the body's apiVersion and kind checked against the path, its namespace against
  the request's (400 with rest/create.go's and handlers/rest.go's messages), fieldValidation Strict/Warn/Ignore
  on unknown fields (handlers/create.go, the strict decoder's `unknown field "spec.x"`); 201 with the object.
- patch (handlers/patch.go): JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch
  (tests/upstream/patch.py); a patch of an object that does not exist is 404; update (PUT) replaces, 409
  Conflict on a stale resourceVersion (registry/generic/registry/store.go Update).
- delete (handlers/delete.go, registry/generic/registry/store.go finalizeDelete): a Status Success naming the
  object, or the object itself for the kinds whose storage sets ReturnDeletedObject (pods, namespaces); a
  uid or resourceVersion precondition that does not hold is 409 Conflict.
- pods/log: text/plain (registry/core/pod/rest/log.go); pods/exec over websockets (tests/lab/websocket.py).

What the lab does not do is not served: no other verbs (405), no dry run, no server-side apply.
"""

from __future__ import annotations

import argparse
import base64
import builtins
import copy
import dataclasses
import datetime
import ipaddress
import json
import secrets
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from spider_validate.cluster.api import ApiError

from tests.lab import discovery, websocket
from tests.lab.cluster import LabCluster
from tests.lab.discovery import Resource
from tests.lab.kubelet import ExecFault, container_process
from tests.lab.store import REASONS, Refused, Store, selected
from tests.upstream import patch as patches
from tests.upstream.apimachinery import (
    FORBIDDEN,
    REQUIRED,
    FieldError,
    StatusError,
    go_quote,
    new_bad_request,
    new_forbidden,
    new_invalid,
    new_method_not_supported,
    new_not_found,
    new_resource_expired,
    new_unauthorized,
    not_supported,
)
from tests.upstream.rbac import BOOTSTRAP_DISCOVERY, Authorizer, Request, User, request_info
from tests.upstream.selectors import SelectorError, field_selector

ADMIN = User("kubernetes-admin", ("kubeadm:cluster-admins", "system:masters", "system:authenticated"))
WATCH_TIMEOUT = 1800.0  # seconds: the API server's --min-request-timeout, a watch's bound without timeoutSeconds
BOOKMARK_BEFORE = 2.0  # seconds before a watch's deadline its bookmark is due (cacher.go)
# pkg/storage/etcd3/store.go: what a continue token past a compaction says (handleCompactedErrorForPaging)
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list."
)
# the namespaces kube-apiserver makes at its start (pkg/controlplane/controller/systemnamespaces) and kubeadm's
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
RETURNS_DELETED = {"Pod", "Namespace"}  # ReturnDeletedObject: pkg/registry/core/{pod,namespace}/storage
PATCH_TYPES = {
    "application/json-patch+json": patches.json_patch,
    "application/merge-patch+json": patches.merge_patch,
    "application/strategic-merge-patch+json": patches.strategic_merge_patch,
}


@dataclass
class HttpFaults:
    """Failures at the HTTP layer, each consumed by the first request it matches (`verb resource`, as the
    authorizer names it: "list pods", "create pods/exec"): a status answered instead, an answer held back (the
    client's read timeout), a watch cut after some events, an exec whose websocket closes before its status."""

    status: dict[str, list[int]] = field(default_factory=dict)
    hold: dict[str, float] = field(default_factory=dict)  # seconds before the request is served
    cut_watch_after: int | None = None
    close_exec_early: int = 0

    def take_status(self, what: str) -> int | None:
        codes = self.status.get(what)
        return codes.pop(0) if codes else None


class Answer(Exception):
    """A request answered with a Status (raised anywhere in a handler)."""

    def __init__(self, error: StatusError) -> None:
        super().__init__(error.message)
        self.error = error


def status_of(exc: ApiError) -> StatusError:
    """The Status of an error the lab's parts raise: their own when they carry one."""
    if isinstance(exc, Refused):
        return exc.error
    return StatusError(REASONS.get(exc.status, "Unknown"), exc.status or 500, str(exc).split(": ", 1)[-1])


class ApiServer:
    """The HTTP front of a LabCluster; `users` maps bearer tokens to who they authenticate."""

    def __init__(self, lab: LabCluster) -> None:
        self.lab = lab
        self.users: dict[str, User] = {}
        self.http_faults = HttpFaults()
        self.revoked: set[str] = set()
        self.requests: builtins.list[str] = []  # "METHOD PATH" of each request served, in order
        self.port = 0
        self.ca = ""
        self._server: ThreadingHTTPServer | None = None
        for crd in discovery.crds():
            self.store.put(copy.deepcopy(crd) | {"status": {"acceptedNames": crd["spec"]["names"]}})
        for name in SYSTEM_NAMESPACES:  # what a cluster has from its start (the lab's parts write in kube-system)
            if self.store.find("Namespace", name) is None:
                labels = {"kubernetes.io/metadata.name": name}  # the label the API server gives every namespace
                self.store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels},
                                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})  # fmt: skip

    @property
    def store(self) -> Store:
        return self.lab.store

    # -- who and whether ------------------------------------------------------------------------------------------

    def token_for(self, user: User) -> str:
        token = secrets.token_urlsafe(24)
        self.users[token] = user
        return token

    def authorizer(self) -> Authorizer:
        rbac = [o for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding") for o in self.store.of_kind(k)]
        return Authorizer([*BOOTSTRAP_DISCOVERY, *copy.deepcopy(rbac)])

    def authorize(self, user: User, request: Request, upgrade: bool = False) -> None:
        """system:masters may do anything (the authorizer chain's privileged group); others what RBAC grants. A
        websocket upgrade of a GET to pods/exec, attach or portforward is also authorized as `create` (1.35+:
        AuthorizePodWebsocketUpgradeCreatePermission, kubernetes PR 134577, on by default)."""
        if "system:masters" in user.groups:
            return
        authorizer = self.authorizer()
        checks = [request]
        if upgrade and request.subresource in {"exec", "attach", "portforward"} and request.verb == "get":
            checks.append(dataclasses.replace(request, verb="create"))
        for check in checks:
            if not authorizer.allows(user, check):
                raise Answer(forbidden(user, check))

    # -- serving --------------------------------------------------------------------------------------------------

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        try:
            try:
                self._serve(h)
            except Answer as answer:
                reply(h, answer.error.code, answer.error.status())
            except ApiError as exc:
                error = status_of(exc)
                reply(h, error.code, error.status())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client went (it gave up waiting for a held answer): nobody to answer, also with an error

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        self.requests.append(f"{h.command} {h.path}")
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))  # first: what follows on the connection
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        token = h.headers.get("Authorization", "").removeprefix("Bearer ")
        user = self.users.get(token)
        if user is None or token in self.revoked:
            raise Answer(new_unauthorized("Unauthorized"))
        request = request_info(h.command, h.path)
        self.authorize(user, request, h.headers.get("Upgrade", "").lower() == "websocket")
        what = f"{request.verb} {request.resource}" + (f"/{request.subresource}" if request.subresource else "")
        time.sleep(self.http_faults.hold.pop(what, 0.0))
        code = self.http_faults.take_status(what)
        if code:
            raise Answer(StatusError(REASONS.get(code, "Unknown"), code, f"injected {code} on {what}"))
        if not request.is_resource:
            return self.non_resource(h, url.path)
        parts = url.path.strip("/").split("/")
        prefix = "/".join(parts[:2] if parts[0] == "api" else parts[:3])
        resource = discovery.by_path(prefix, request.resource)
        if resource is None:
            raise Answer(new_not_found("", ""))  # the API server's 404 of an unknown path: "the server could not find"
        media = h.headers.get("Content-Type", "application/json").split(";")[0].strip()
        if body and request.verb in {"create", "update"} and media != "application/json":
            raise Answer(unsupported_media(["application/json"]))  # protobuf (kubectl's typed clients) is not decoded
        if request.subresource:
            return self.subresource(h, resource, request, query)
        handlers: dict[str, Callable[[], None]] = {
            "get": lambda: reply(h, 200, self.get(resource, request)),
            "list": lambda: reply(h, 200, self.list(resource, request.namespace, query)),
            "watch": lambda: self.watch(h, resource, request.namespace, query),
            "create": lambda: self.create(h, resource, request.namespace, body, query),
            "patch": lambda: reply(h, 200, self.patch(resource, request, body, h.headers.get("Content-Type", ""))),
            "update": lambda: reply(h, 200, self.update(resource, request, body)),
            "delete": lambda: reply(h, 200, self.delete(resource, request, body)),
        }
        if request.verb not in handlers:
            raise Answer(new_method_not_supported(resource.group_resource, request.verb))
        handlers[request.verb]()

    def non_resource(self, h: BaseHTTPRequestHandler, path: str) -> None:
        """/version, the discovery documents and OpenAPI v3 (tests/lab/discovery.py)."""
        accept = h.headers.get("Accept", "")
        if path == "/version":
            self.lab.server_version()  # its injected faults
            return reply(h, 200, discovery.VERSION)
        if path in {"/api", "/apis"} and discovery.wants_aggregated(accept):
            return reply(h, 200, discovery.aggregated(core=path == "/api"), discovery.AGGREGATED)
        if path == "/api":
            return reply(h, 200, discovery.api_versions(f"127.0.0.1:{self.port}"))
        if path == "/apis":
            return reply(h, 200, discovery.api_group_list())
        if path == "/openapi/v3":
            return reply(h, 200, discovery.openapi_index())
        if path.startswith("/openapi/v3/") and (
            document := discovery.openapi_document(path.removeprefix("/openapi/v3/"))
        ):
            return reply_text(h, 200, document, "application/json")
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2 and any(r.group == parts[1] for r in discovery.resources().values()):
            return reply(h, 200, discovery.api_group(parts[1]))
        listing = discovery.api_resource_list("/".join(parts))
        if listing is None:
            raise Answer(StatusError("NotFound", 404, "the server could not find the requested resource"))
        reply(h, 200, listing)

    # -- reads ----------------------------------------------------------------------------------------------------

    def get(self, r: Resource, request: Request) -> dict[str, Any]:
        obj = self.lab.get(r.kind, request.name, request.namespace)
        if obj is None:
            raise Answer(new_not_found(r.group_resource, request.name))
        return with_type(r, obj)

    def list(self, r: Resource, namespace: str, query: dict[str, str]) -> dict[str, Any]:
        validate_list_options(query, watch=False)
        wanted = predicate(r, query)
        limit = int(query.get("limit") or 0)
        token = query.get("continue", "")
        with self.store.lock:
            if token:
                version, start = decode_continue(token)
                try:
                    state = self.store.at(version)
                except Refused:
                    rest = encode_continue(-1, start)
                    raise Answer(new_resource_expired(INCONSISTENT_CONTINUE + rest)) from None
            else:
                self.lab.list(r.kind, namespace)  # the call's injected faults
                version, start, state = self.store.version, "", self.store.at(self.store.version)
        keys = sorted(
            (f"{ns}/{name}" if ns else name, obj)
            for (kind, ns, name), obj in state.items()
            if kind == r.kind and (not namespace or ns == namespace)
        )
        if namespace:  # the key prefix is the namespace's: a page starts at a name
            keys = [(k.split("/", 1)[1], o) for k, o in keys]
        items = [(k, o) for k, o in keys if k >= start and wanted(o)]
        page = items[:limit] if limit else items
        meta: dict[str, Any] = {"resourceVersion": str(version)}
        if limit and len(items) > limit:
            meta["continue"] = encode_continue(version, page[-1][0] + "\x00")
            if "labelSelector" not in query and "fieldSelector" not in query:
                meta["remainingItemCount"] = len(items) - limit
        listed = [o if r.crd else {k: v for k, v in o.items() if k not in {"apiVersion", "kind"}} for _, o in page]
        return {"kind": f"{r.kind}List", "apiVersion": r.group_version, "metadata": meta, "items": listed}

    def watch(self, h: BaseHTTPRequestHandler, r: Resource, namespace: str, query: dict[str, str]) -> None:
        validate_list_options(query, watch=True)
        wanted = predicate(r, query)
        version = query.get("resourceVersion", "")
        timeout = float(query.get("timeoutSeconds") or WATCH_TIMEOUT)
        deadline = time.monotonic() + timeout
        bookmarks = query.get("allowWatchBookmarks") == "true"
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        sent = 0

        def send(kind: str, obj: dict[str, Any]) -> None:
            nonlocal sent
            if self.http_faults.cut_watch_after is not None and sent >= self.http_faults.cut_watch_after:
                self.http_faults.cut_watch_after = None
                raise ConnectionResetError("watch cut (injected)")
            chunk(h, {"type": kind, "object": obj})
            sent += 1

        try:
            with self.store.lock:
                if version in {"", "0"} or query.get("sendInitialEvents") == "true":
                    start = self.store.version
                    initial = [o for (k, ns, _), o in sorted(self.store.objects.items())
                               if k == r.kind and (not namespace or ns == namespace) and wanted(o)]  # fmt: skip
                    initial = copy.deepcopy(initial)
                else:
                    start, initial = int(version), []
                    self.store.changes_after(start)  # 410 now, before any event
            for obj in initial:
                send("ADDED", with_type(r, obj))
            if query.get("sendInitialEvents") == "true":
                annotations = {"k8s.io/initial-events-end": "true"}
                send("BOOKMARK", bookmark(r, start, annotations))
            due = deadline - BOOKMARK_BEFORE if bookmarks else None
            for change in self.store.follow(start, due or deadline):
                if change.key[0] == r.kind and (not namespace or change.key[1] == namespace):
                    event = change.seen_by(wanted)
                    if event:
                        send(event[0], with_type(r, event[1]))
            if due is not None and not self.store.stopped.is_set():
                send("BOOKMARK", bookmark(r, self.store.version))
                for change in self.store.follow(self.store.version, deadline):
                    if change.key[0] == r.kind and (not namespace or change.key[1] == namespace):
                        event = change.seen_by(wanted)
                        if event:
                            send(event[0], with_type(r, event[1]))
        except Refused as exc:
            chunk(h, {"type": "ERROR", "object": exc.error.status()})
        except ConnectionResetError:
            h.close_connection = True
            return
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    # -- writes ---------------------------------------------------------------------------------------------------

    def create(
        self, h: BaseHTTPRequestHandler, r: Resource, namespace: str, body: bytes, query: dict[str, str]
    ) -> None:
        obj = decode(body)
        check_type(r, obj)
        meta = obj.setdefault("metadata", {})
        if r.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise Answer(
                    new_bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request"
                    )
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            errors = [FieldError(REQUIRED, "metadata.name", None, "name or generateName is required")]
            raise Answer(new_invalid(f"{r.kind}" + (f".{r.group}" if r.group else ""), "", errors))
        warnings = self.field_validation(r, obj, query)
        obj["kind"], obj["apiVersion"] = r.kind, r.group_version
        created = self.lab.create(obj)
        reply(h, 201, with_type(r, created), warnings=warnings)

    def field_validation(self, r: Resource, obj: dict[str, Any], query: dict[str, str]) -> builtins.list[str]:
        """fieldValidation: Strict refuses unknown fields (400), Warn (the default) warns of them, Ignore says
        nothing."""
        mode = query.get("fieldValidation", "Warn")
        if mode not in {"Strict", "Warn", "Ignore"}:
            raise Answer(new_bad_request(f"fieldValidation parameter unsupported: {mode}"))
        unknown = [f'unknown field "{p}"' for p in discovery.unknown_fields(r, obj)]
        if unknown and mode == "Strict":
            raise Answer(new_bad_request("strict decoding error: " + ", ".join(unknown)))
        return unknown if mode == "Warn" else []

    def patch(self, r: Resource, request: Request, body: bytes, content_type: str) -> dict[str, Any]:
        apply = PATCH_TYPES.get(content_type.split(";")[0].strip())
        if apply is None:
            raise Answer(unsupported_media(list(PATCH_TYPES)))
        with self.store.lock:
            current = self.lab.get(r.kind, request.name, request.namespace)
            if current is None:
                raise Answer(new_not_found(r.group_resource, request.name))
            try:
                patched = apply(with_type(r, current), json.loads(body), discovery.patch_schema(r))
            except (patches.PatchError, ValueError) as exc:
                raise Answer(new_bad_request(str(exc))) from None
            return with_type(r, self.lab.replace(self.keep_identity(r, current, patched)))

    def update(self, r: Resource, request: Request, body: bytes) -> dict[str, Any]:
        obj = decode(body)
        check_type(r, obj)
        with self.store.lock:
            current = self.lab.get(r.kind, request.name, request.namespace)
            if current is None:
                raise Answer(new_not_found(r.group_resource, request.name))
            sent = obj.get("metadata", {}).get("resourceVersion")
            if sent and sent != current["metadata"]["resourceVersion"]:
                raise Answer(
                    conflict(
                        r,
                        request.name,
                        "the object has been modified; please apply your changes to the latest version and try again",
                    )
                )
            return with_type(r, self.lab.replace(self.keep_identity(r, current, obj)))

    @staticmethod
    def keep_identity(r: Resource, current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """What an update cannot change: name, namespace, uid, creationTimestamp (rest/update.go
        BeforeUpdate: ValidateObjectMetaUpdate)."""
        meta = new.setdefault("metadata", {})
        for key in ("name", "namespace", "uid", "creationTimestamp"):
            if key in current["metadata"]:
                meta[key] = current["metadata"][key]
        meta.pop("resourceVersion", None)
        new["kind"], new["apiVersion"] = r.kind, r.group_version
        return new

    def delete(self, r: Resource, request: Request, body: bytes) -> dict[str, Any]:
        options = json.loads(body or b"{}")
        with self.store.lock:
            current = self.lab.get(r.kind, request.name, request.namespace)
            if current is None:
                raise Answer(new_not_found(r.group_resource, request.name))
            preconditions = options.get("preconditions") or {}
            for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                want, have = preconditions.get(key), current["metadata"].get(key)
                if want and want != have:
                    raise Answer(
                        conflict(
                            r,
                            request.name,
                            f"Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}",
                        )
                    )
            self.lab.delete(r.kind, request.name, request.namespace)
        if r.kind in RETURNS_DELETED:
            return with_type(r, current)
        details = {"name": request.name, "group": r.group, "kind": r.plural, "uid": current["metadata"]["uid"]}
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {k: v for k, v in details.items() if v}}  # fmt: skip

    # -- pods' subresources ---------------------------------------------------------------------------------------

    def subresource(self, h: BaseHTTPRequestHandler, r: Resource, request: Request, query: dict[str, str]) -> None:
        if r.kind != "Pod" or request.subresource not in {"log", "exec"}:
            raise Answer(new_not_found(r.group_resource, request.name))
        pod = self.lab.get("Pod", request.name, request.namespace)
        if pod is None:
            raise Answer(new_not_found("pods", request.name))
        if request.subresource == "log":
            text = self.lab.logs(request.namespace, request.name)
            tail = int(query["tailLines"]) if query.get("tailLines") else None
            lines = text.splitlines(keepends=True)
            return reply_text(h, 200, "".join(lines[-tail:] if tail is not None else lines), "text/plain")
        commands = parse_qs(urlsplit(h.path).query).get("command", [])
        if h.headers.get("Upgrade", "").lower() != "websocket":
            raise Answer(
                new_bad_request("Upgrade request required")
            )  # SPDY is not served: kubectl falls back only on its failure
        self.exec(h, request.namespace, request.name, commands)

    def exec(self, h: BaseHTTPRequestHandler, namespace: str, name: str, command: builtins.list[str]) -> None:
        """Run the command in the pod as its container runs it, streaming stdout and stderr, then the error
        channel's Status: Success, or NonZeroExitCode with the exit code as its cause (kubelet
        pkg/kubelet/cri/streaming/remotecommand/httpstream.go and exec.go, writeStatus)."""
        protocol = websocket.negotiate(h.headers.get("Sec-WebSocket-Protocol", ""))
        if protocol is None:
            h.send_response(403)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        lab_pod = self.lab.kubelet.pods.get((namespace, name))
        if lab_pod is None or not lab_pod.ns or lab_pod.obj["status"]["phase"] != "Running":
            raise Answer(new_bad_request(f"pod {name} is not running"))
        if not command:
            raise Answer(new_bad_request("you must specify at least 1 command"))
        h.wfile.write(websocket.handshake_reply(h.headers.get("Sec-WebSocket-Key", ""), protocol))
        h.wfile.flush()
        h.close_connection = True
        sock = h.connection
        channels = websocket.Channels(sock, protocol)
        channels.write(websocket.STDOUT, b"")
        threading.Thread(target=channels.receive, daemon=True).start()
        self.lab.kubelet.proxy.apply()  # the Services' rules as the pods now are, before the command's traffic
        proc = subprocess.Popen(
            ["ip", "netns", "exec", lab_pod.ns, *container_process(lab_pod.obj), *command],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.lab.kubelet.exec_env,
        )  # fmt: skip
        early = self.http_faults.close_exec_early > 0
        if early:
            self.http_faults.close_exec_early -= 1
        fault = ExecFault.take(self.lab.store)  # the lab's own, below the wire: a hostile output, a lost exit code
        whole: builtins.list[bytes] = []  # stdout, when the fault rewrites it: sent once the command ended
        pumps = [
            threading.Thread(target=lambda: whole.append(proc.stdout.read()))  # type: ignore[union-attr]
            if fault.rewrites
            else threading.Thread(target=pump, args=(proc.stdout, channels, websocket.STDOUT)),
            threading.Thread(target=pump, args=(proc.stderr, channels, websocket.STDERR)),
        ]
        for t in pumps:
            t.daemon = True
            t.start()
        while proc.poll() is None and not channels.client_closed.is_set():
            time.sleep(0.02)
        if proc.poll() is None:  # the client went: the command with it
            proc.kill()
        proc.wait()
        for t in pumps:
            t.join(timeout=5)
        if whole and not channels.client_closed.is_set():
            channels.write(websocket.STDOUT, fault.stdout(whole[0].decode(errors="replace")).encode())
        if not early and not fault.status_lost and not channels.client_closed.is_set():
            channels.write(websocket.ERROR, json.dumps(exec_status(proc.returncode)).encode())
        channels.close()

    # -- running --------------------------------------------------------------------------------------------------

    def start(self, workdir: Path) -> ApiServer:
        """Serve on a free port of 127.0.0.1 over TLS, with a CA made for this server."""
        self._server, self.ca = serve_tls(self.serve, workdir)
        self.port = self._server.server_port
        return self

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def kubeconfig(self, user: User = ADMIN, token: str | None = None) -> dict[str, Any]:
        """A kubeconfig whose context authenticates as `user` (a new token unless one is given)."""
        token = token or self.token_for(user)
        ca = base64.b64encode(self.ca.encode()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "lab", "cluster": {"server": self.url, "certificate-authority-data": ca}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": user.name}}],
            "current-context": "lab",
            "users": [{"name": user.name, "user": {"token": token}}],
        }  # fmt: skip


# -- helpers --------------------------------------------------------------------------------------------------------


def pump(stream: Any, channels: websocket.Channels, channel: int) -> None:
    for data in iter(lambda: stream.read1(65536), b""):
        try:
            channels.write(channel, data)
        except OSError:
            return


def exec_status(code: int) -> dict[str, Any]:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: command terminated with exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def forbidden(user: User, request: Request) -> StatusError:
    """responsewriters/errors.go Forbidden: forbiddenMessage() inside NewForbidden of the requested resource."""
    if not request.is_resource:
        message = f"User {go_quote(user.name)} cannot {request.verb} path {go_quote(request.path)}"
        return new_forbidden("", "", message)
    resource = request.resource + (f"/{request.subresource}" if request.subresource else "")
    scope = f"in the namespace {go_quote(request.namespace)}" if request.namespace else "at the cluster scope"
    message = (
        f"User {go_quote(user.name)} cannot {request.verb} resource {go_quote(resource)} in API group "
        f"{go_quote(request.group)} {scope}"
    )
    group_resource = request.resource + (f".{request.group}" if request.group else "")
    return new_forbidden(group_resource, request.name, message)


def unsupported_media(accepted: builtins.list[str]) -> StatusError:
    """NewUnsupportedMediaType (handlers/rest.go): 415, naming the media types the endpoint takes."""
    message = f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}"
    return StatusError("UnsupportedMediaType", 415, message)


def conflict(r: Resource, name: str, why: str) -> StatusError:
    """NewConflict (errors.go): 409, `Operation cannot be fulfilled on RESOURCE "NAME": WHY`."""
    message = f"Operation cannot be fulfilled on {r.group_resource} {go_quote(name)}: {why}"
    details = {"name": name, "kind": r.plural} | ({"group": r.group} if r.group else {})
    return StatusError("Conflict", 409, message, details=details)


def validate_list_options(query: dict[str, str], watch: bool) -> None:
    """ValidateListOptions (apimachinery pkg/apis/meta/internalversion/validation/validation.go), as the
    handler answers it: NewInvalid of ListOptions.meta.k8s.io."""
    match, version = query.get("resourceVersionMatch", ""), query.get("resourceVersion", "")
    initial, errors = query.get("sendInitialEvents"), []
    forbid = lambda path, why: errors.append(FieldError(FORBIDDEN, path, None, why))  # noqa: E731
    if watch:
        if initial is not None and match != "NotOlderThan":
            forbid("resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
        if match:
            if initial is None:
                forbid(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                )
            if match != "NotOlderThan":
                errors.append(not_supported("resourceVersionMatch", match, ["NotOlderThan"]))
            if query.get("continue"):
                forbid("resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided")
    else:
        if match:
            if not version:
                forbid("resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided")
            if query.get("continue"):
                forbid("resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided")
            if match not in {"Exact", "NotOlderThan"}:
                errors.append(not_supported("resourceVersionMatch", match, ["Exact", "NotOlderThan", ""]))
            if match == "Exact" and version == "0":
                forbid("resourceVersionMatch", 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
        if initial is not None:
            forbid("sendInitialEvents", "sendInitialEvents is forbidden for list")
    if errors:
        raise Answer(new_invalid("ListOptions.meta.k8s.io", "", errors))


def predicate(r: Resource, query: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    """The label and field selectors of a list or watch; 400 when one is malformed (handlers/get.go)."""
    labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
    try:
        selected({"metadata": {}}, labels)
        by_fields = field_selector(r.kind, fields)
    except SelectorError as exc:
        raise Answer(new_bad_request(str(exc))) from None
    return lambda obj: selected(obj, labels) and by_fields(obj)


def encode_continue(version: int, start: str) -> str:
    """storage.EncodeContinue (pkg/storage/continue.go): base64url without padding."""
    token = json.dumps({"v": "meta.k8s.io/v1", "rv": version, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    """storage.DecodeContinue: the token's resourceVersion and the key it starts at; 400 when it is not one."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
            )
        if not data.get("start"):
            raise ValueError("continue key is not valid: encoded start key empty")
        return int(data.get("rv", 0)), str(data["start"])
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Answer(new_bad_request(f"invalid continue token: {exc}")) from None


def bookmark(r: Resource, version: int, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A BOOKMARK's object: only the kind and metadata.resourceVersion (and the initial-events-end mark)."""
    meta: dict[str, Any] = {"resourceVersion": str(version), "creationTimestamp": None}
    return {
        "kind": r.kind,
        "apiVersion": r.group_version,
        "metadata": meta | ({"annotations": annotations} if annotations else {}),
    }


def with_type(r: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": r.kind, "apiVersion": r.group_version} | {
        k: v for k, v in obj.items() if k not in {"kind", "apiVersion"}
    }


def check_type(r: Resource, obj: dict[str, Any]) -> None:
    """The body's type must be the endpoint's (handlers/rest.go, the decoder's "does not match" messages)."""
    if obj.get("apiVersion", r.group_version) != r.group_version:
        have = obj["apiVersion"]
        raise Answer(
            new_bad_request(
                f"the API version in the data ({have}) does not match the expected API version ({r.group_version})"
            )
        )
    if obj.get("kind", r.kind) != r.kind:
        raise Answer(
            new_bad_request(f"the kind in the data ({obj['kind']}) does not match the expected kind ({r.kind})")
        )


def decode(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise Answer(new_bad_request(f"the object provided is unrecognized: {exc}")) from None
    if not isinstance(obj, dict):
        raise Answer(new_bad_request("the object provided is unrecognized"))
    return obj


def reply(
    h: BaseHTTPRequestHandler,
    code: int,
    body: Any,
    content_type: str = "application/json",
    warnings: builtins.list[str] | None = None,
) -> None:
    reply_text(h, code, json.dumps(body), content_type, warnings)


def reply_text(
    h: BaseHTTPRequestHandler, code: int, text: str, content_type: str, warnings: builtins.list[str] | None = None
) -> None:
    data = text.encode()
    h.send_response(code)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(data)))
    for warning in warnings or []:  # RFC 7234 warn-code 299, agent "-" (apiserver pkg/warning)
        h.send_header("Warning", f'299 - "{warning.replace(chr(34), chr(92) + chr(34))}"')
    h.end_headers()
    h.wfile.write(data)


def chunk(h: BaseHTTPRequestHandler, event: dict[str, Any]) -> None:
    line = json.dumps(event).encode() + b"\n"
    h.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
    h.wfile.flush()


def certificate(workdir: Path) -> tuple[Path, Path, str]:
    """A CA, and the server's certificate for 127.0.0.1 it signs (what kubeadm makes: ca.crt, apiserver.crt); the
    CA's PEM for the kubeconfig."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])

    def builder(subject: x509.Name, public: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public)
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False)
        )  # fmt: skip

    ca = (
        builder(ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        builder(name, key.public_key())
        # localhost too, as the project's API certificates name it (the kubeconfig of an SSM port forward)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "apiserver.crt", workdir / "apiserver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path, ca.public_bytes(serialization.Encoding.PEM).decode()


def serve_tls(serve: Callable[[BaseHTTPRequestHandler], None], workdir: Path) -> tuple[ThreadingHTTPServer, str]:
    """An HTTP/1.1 server on a free port of 127.0.0.1, over TLS with a certificate of a CA made for it (kubectl and
    the client send a bearer token over TLS only), each request given to `serve` in a thread of its own; the server,
    serving, and the CA's PEM."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            serve(self)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    cert, key, ca = certificate(workdir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, ca


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--kubeconfig", required=True, type=Path)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="lab-apiserver-") as workdir, LabCluster(Path(workdir), args.nodes) as lab:
        api = ApiServer(lab).start(Path(workdir))
        try:
            args.kubeconfig.write_text(yaml.safe_dump(api.kubeconfig()))
            args.kubeconfig.chmod(0o600)
            print(f"serving https://127.0.0.1:{api.port}", flush=True)
            stop.wait()
        finally:
            api.stop()
            args.kubeconfig.unlink(missing_ok=True)


if __name__ == "__main__":
    main()

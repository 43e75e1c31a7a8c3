"""The lab's API server: objects by kind, namespace and name, with resourceVersions, label selectors, the history
of changes a watch streams, events, and the failures a test injects at every layer (`Faults`).

What the store knows about kinds is the validator's own table, `spider_validate.cluster.api.KINDS`: a kind it does
not list fails with KeyError before any API call, as `cluster.kube.KubeCluster` fails on it (its `_resource` and `_path`
look the kind up in KINDS first), so the double never answers a call the real client cannot make. The wire
(tests/lab/apiserver.py) also serves the API server's own kinds a real one has and kubectl uses (`SERVER_KINDS`).

Every change gets the next resourceVersion and is kept, as etcd keeps revisions until a compaction and the watch
cache keeps its window: a watch from a resourceVersion streams the changes after it, a list continued from a token
sees the objects as they were at the token's resourceVersion; both are 410 Expired once `compact` dropped it.
"""

from __future__ import annotations

import builtins
import copy
import datetime
import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spider_validate.cluster.api import KINDS, ApiError

from tests.upstream.apimachinery import StatusError, new_resource_expired
from tests.upstream.selectors import labels_match, parse_labels

if TYPE_CHECKING:
    from tests.lab.cluster import LabCluster


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
    stale_count_on_release: bool = False  # allocatedIPCount not updated when a deleted pod's address is released
    readdress_stateful: bool = False  # a recreated StatefulSet pod gets a new address, its kept one released
    teardown_delay: float = 0.0  # seconds from a pod object's removal to its sandbox's teardown (CNI DEL: IP released)
    garble: Callable[[str], str] | None = None  # rewrites what every exec'd command prints (a hostile pod)
    slow: dict[tuple[str, str], float] = field(default_factory=dict)  # (verb, kind) -> seconds before it acts
    # pool names stored past Spiderpool's IPPool webhook (restored from a backup, say): the one way two pools can
    # share addresses, which the webhook refuses
    unchecked_pools: set[str] = field(default_factory=set)
    # pod name -> called with (lab, namespace) just before that pod shows Running: pods started before it
    # are up, and the runner has not seen the run ready yet. Where tests break the data path.
    before_ready: dict[str, Callable[[LabCluster, str], None]] = field(default_factory=dict)

    def take(self, verb: str, kind: str) -> None:
        codes = self.api.get((verb, kind))
        if codes:
            code = codes.pop(0)
            raise Refused(StatusError(REASONS.get(code, "Unknown"), code, f"injected {code} on {verb} {kind}"))


# metav1.StatusReason of each status code the lab answers with (apimachinery pkg/apis/meta/v1/types.go,
# StatusReason* and the codes their comments give)
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "AlreadyExists", 410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}  # fmt: skip


class Refused(ApiError):
    """An API call the double refuses: an ApiError (what the in-process callers catch) carrying the Status the wire
    answers with."""

    def __init__(self, error: StatusError) -> None:
        super().__init__(error.code, error.message)
        self.error = error


Key = tuple[str, str, str]  # (kind, namespace or "" for a cluster-scoped kind, name)

# The API server's own kinds, which the wire serves beside the validator's: the CRDs (`crd_names` lists them), and
# RBAC's objects, which an administrator applies (validators/rbac.yaml) and binds with kubectl, and which the wire's
# authorizer reads.
SERVER_KINDS: dict[str, tuple[str, str, bool]] = {
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "Role": ("rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings", True),
}
STORED = KINDS | SERVER_KINDS
HISTORY = 10_000  # changes kept: the watch cache's window, far more than a run makes between a list and its watch


def api_version(kind: str) -> str:
    return STORED[kind][0]


def namespaced(kind: str) -> bool:
    return STORED[kind][2]


def group_resource(kind: str) -> str:
    """schema.GroupResource.String() of a kind: `pods`, `spiderippools.spiderpool.spidernet.io`."""
    version, plural, _ = STORED[kind]
    group = version.rpartition("/")[0]
    return f"{plural}.{group}" if group else plural


def now() -> str:
    """A creationTimestamp: RFC 3339 in UTC, to the second (metav1.Time's JSON)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Change:
    """One change as a watch reports it: `obj` after it (for DELETED, the last state at the deletion's version),
    `before` the object it replaced (None when ADDED)."""

    version: int
    type: str  # ADDED, MODIFIED, DELETED
    key: Key
    obj: dict[str, Any]
    before: dict[str, Any] | None

    def seen_by(self, wanted: Callable[[dict[str, Any]], bool]) -> tuple[str, dict[str, Any]] | None:
        """The event a watcher that selects `wanted` objects gets (a copy), or None: ADDED when the object starts to
        match, MODIFIED while it does, DELETED (its last matching state at this version) when it stops or goes
        (apiserver pkg/storage/cacher/cache_watcher.go:374-400 at v0.35.2, convertToWatchEvent)."""
        now_in = self.type != "DELETED" and wanted(self.obj)
        was_in = self.before is not None and wanted(self.before)
        if now_in:
            return ("MODIFIED" if was_in else "ADDED"), copy.deepcopy(self.obj)
        if was_in and self.before is not None:
            gone = copy.deepcopy(self.before)
            gone["metadata"]["resourceVersion"] = str(self.version)
            return "DELETED", gone
        return None


class Store:
    """Objects as `kubectl get -o json` shows them. `list`, `get` and `watch` are API calls (faults apply);
    `find` and `of_kind` are the controllers' own reads of the live objects (under `lock`)."""

    def __init__(self) -> None:
        self.faults = Faults()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.objects: dict[Key, dict[str, Any]] = {}
        self.stopped = threading.Event()
        self.version = 0  # the last resourceVersion given
        self.history: deque[Change] = deque(maxlen=HISTORY)
        self.compacted = 0  # changes up to this version are gone from the history
        self._last: dict[Key, dict[str, Any]] = {}  # each object as its last change left it
        self._events = itertools.count()

    def key(self, kind: str, name: str, namespace: str | None) -> Key:
        return (kind, namespace or "" if namespaced(kind) else "", name)  # KeyError for a kind outside STORED

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        key = self.key(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now())
        meta.setdefault("labels", {})
        meta.setdefault("annotations", {})
        with self.lock:
            meta["resourceVersion"] = str(self._next())
            self.objects[key] = obj
            self._record("MODIFIED" if key in self._last else "ADDED", key, copy.deepcopy(obj))
        return obj

    def remove(self, kind: str, name: str, namespace: str | None) -> None:
        with self.lock:
            key = self.key(kind, name, namespace)
            gone = self.objects.pop(key, None)
            if gone is not None:
                last = copy.deepcopy(self._last.get(key, gone))
                last["metadata"]["resourceVersion"] = str(self._next())
                self._record("DELETED", key, last)

    def _next(self) -> int:
        self.version += 1
        return self.version

    def _record(self, kind: str, key: Key, obj: dict[str, Any]) -> None:
        if len(self.history) == self.history.maxlen:
            self.compacted = self.history[0].version
        self.history.append(Change(self.version, kind, key, obj, self._last.get(key)))
        if kind == "DELETED":
            self._last.pop(key, None)
        else:
            self._last[key] = obj
        self.changed.notify_all()

    def compact(self) -> None:
        """Drop the history up to now, as etcd's compaction does: older resourceVersions are 410 Expired."""
        with self.lock:
            self.history.clear()
            self.compacted = self.version

    def changes_after(self, version: int) -> builtins.list[Change]:
        """The changes after `version`; 410 Expired when the history no longer reaches back to it (the watch cache's
        "too old resource version: RV (OLDEST-1)", apiserver pkg/storage/cacher/watch_cache.go:916 at v0.35.2)."""
        with self.lock:
            if version < self.compacted:
                raise Refused(new_resource_expired(f"too old resource version: {version} ({self.compacted})"))
            return [c for c in self.history if c.version > version]

    def at(self, version: int) -> dict[Key, dict[str, Any]]:
        """The objects as they were at `version` (the current ones undone change by change)."""
        with self.lock:
            state = {k: copy.deepcopy(v) for k, v in self.objects.items()}
            for change in reversed(self.changes_after(version)):
                if change.before is None:
                    state.pop(change.key, None)
                else:
                    state[change.key] = copy.deepcopy(change.before)
            return state

    def find(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The live object (not a copy), for the double's controllers."""
        return self.objects.get(self.key(kind, name, namespace))

    def of_kind(self, kind: str) -> builtins.list[dict[str, Any]]:
        with self.lock:
            return [obj for (k, _, _), obj in self.objects.items() if k == kind]

    def event(self, namespace: str, pod: str, reason: str, message: str) -> None:
        self.put(
            {
                "apiVersion": api_version("Event"),
                "kind": "Event",
                "type": "Warning",
                "reason": reason,
                "message": message,
                "metadata": {"name": f"{pod}.{next(self._events)}", "namespace": namespace},
                "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace},
            }
        )

    # -- API calls ------------------------------------------------------------------------------------------------

    def list(self, kind: str, namespace: str | None = None, label_selector: str = "") -> builtins.list[dict[str, Any]]:
        self.faults.take("list", kind)
        self.key(kind, "", namespace)
        with self.lock:
            return [
                copy.deepcopy(obj)
                for (k, ns, _), obj in sorted(self.objects.items())
                if k == kind and (not namespace or ns == namespace) and selected(obj, label_selector)
            ]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.faults.take("get", kind)
        with self.lock:
            obj = self.find(kind, name, namespace)
            return copy.deepcopy(obj) if obj else None

    def watch(
        self, kind: str, namespace: str, label_selector: str, timeout_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The objects selected now (ADDED), then their changes, until the timeout or the lab stops: a watch without
        a resourceVersion ("get state and start at most recent")."""
        deadline = time.monotonic() + timeout_seconds
        for sent, event in enumerate(self._events_of(kind, namespace, label_selector, deadline)):
            if self.faults.drop_watch_after is not None and sent >= self.faults.drop_watch_after:
                self.faults.drop_watch_after = None
                raise ApiError(0, "watch dropped (injected)")
            yield event

    def _events_of(
        self, kind: str, namespace: str, label_selector: str, deadline: float
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        with self.lock:
            objects, start = self.list(kind, namespace, label_selector), self.version
        for obj in objects:
            yield "ADDED", obj
        for change in self.follow(start, deadline):
            if change.key[0] == kind and (not namespace or change.key[1] == namespace):
                event = change.seen_by(lambda obj: selected(obj, label_selector))
                if event:
                    yield event

    def follow(self, version: int, deadline: float) -> Iterator[Change]:
        """Each change after `version` as it happens, until `deadline` (monotonic) or the lab stops."""
        while not self.stopped.is_set():
            with self.lock:
                changes = self.changes_after(version)
                if not changes:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self.changed.wait(min(remaining, 0.5))
                    continue
            yield from changes
            version = changes[-1].version


def selected(obj: dict[str, Any], label_selector: str) -> bool:
    """Whether the object's labels match the selector (labels.Parse's syntax; tests/upstream/selectors.py)."""
    return labels_match(parse_labels(label_selector), obj["metadata"].get("labels") or {})

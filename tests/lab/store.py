"""The lab's API server: objects by kind, namespace and name, with resourceVersions, label selectors, a polling
watch, events, and the failures a test injects at every layer (`Faults`).

What the store knows about kinds is the validator's own table, `spider_validate.cluster.api.KINDS`: a kind it does
not list fails with KeyError before any API call, as `cluster.kube.KubeCluster` fails on it (its `_resource` and `_path`
look the kind up in KINDS first), so the double never answers a call the real client cannot make.
"""

from __future__ import annotations

import builtins
import copy
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spider_validate.cluster.api import KINDS, ApiError

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
            raise ApiError(code, f"injected {code} on {verb} {kind}")


Key = tuple[str, str, str]  # (kind, namespace or "" for a cluster-scoped kind, name)


def api_version(kind: str) -> str:
    return KINDS[kind][0]


def namespaced(kind: str) -> bool:
    return KINDS[kind][2]


class Store:
    """Objects as `kubectl get -o json` shows them. `list`, `get` and `watch` are API calls (faults apply);
    `find` and `of_kind` are the controllers' own reads of the live objects (under `lock`)."""

    def __init__(self) -> None:
        self.faults = Faults()
        self.lock = threading.RLock()
        self.objects: dict[Key, dict[str, Any]] = {}
        self.stopped = threading.Event()
        self._version = itertools.count(1)
        self._events = itertools.count()

    def key(self, kind: str, name: str, namespace: str | None) -> Key:
        return (kind, namespace or "" if namespaced(kind) else "", name)  # KeyError for a kind outside KINDS

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        key = self.key(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("labels", {})
        meta.setdefault("annotations", {})
        meta["resourceVersion"] = str(next(self._version))
        with self.lock:
            self.objects[key] = obj
        return obj

    def remove(self, kind: str, name: str, namespace: str | None) -> None:
        with self.lock:
            self.objects.pop(self.key(kind, name, namespace), None)

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
            obj = self.find(kind, name, namespace)
            return copy.deepcopy(obj) if obj else None

    def watch(
        self, kind: str, namespace: str, label_selector: str, timeout_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """ADDED and MODIFIED events by polling the list (every 50 ms), until the timeout or the lab stops."""
        seen: dict[str, str] = {}
        deadline = time.monotonic() + timeout_seconds
        sent = 0
        while time.monotonic() < deadline and not self.stopped.is_set():
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

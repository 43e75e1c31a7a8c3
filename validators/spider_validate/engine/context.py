"""What the suites share during a run: the cluster, the chosen network and nodes, the test pods and their IPs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from spider_validate.cluster.api import ApiError, Cluster
from spider_validate.cluster.spiderpool import underlay_ip
from spider_validate.engine import manifests
from spider_validate.engine.facts import Facts
from spider_validate.engine.manifests import Network, Role
from spider_validate.engine.model import ActionResult, PodSecurity
from spider_validate.engine.params import EXPIRES, RUN_LABEL, Parameters

STUCK_REASONS = {
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
}


class SetupError(Exception):
    """The run could not set up its pods; the message names the pod and what blocks it."""


class NotReady(SetupError):
    """Pods were not ready in time: those still waited for (in the order asked), and those that were."""

    def __init__(self, message: str, waiting: list[str], ready: dict[str, PodInfo]) -> None:
        super().__init__(message)
        self.waiting, self.ready = waiting, ready


@dataclass
class PodInfo:
    name: str
    role: Role
    node: str
    ip: str  # underlay address, from the pod's network-status
    node_ip: str
    app: str | None = None
    uid: str = ""
    ready: float = 0.0  # monotonic time it was first seen ready with its underlay address (0: not by wait_pods)


@dataclass
class RunContext:
    cluster: Cluster
    params: Parameters
    run_id: str
    namespace: str
    network: Network | None = None
    nodes: list[str] = field(default_factory=list)
    node_ips: dict[str, str] = field(default_factory=dict)
    pods: dict[str, PodInfo] = field(default_factory=dict)
    service_ip: str = ""
    facts: Facts = field(default_factory=Facts)
    pod_security: PodSecurity = "baseline"  # the level the run's namespace enforces (manifests.pod_security)
    # when what the run creates may be removed by `spider-validate cleanup` (epoch seconds; None: while it runs, as
    # a watch does: `cleanup --all` only). A run's: its deadline and its cleanup's (set by the runner).
    expires: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    finalizers: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)  # the run's probe workers
    # called with each check's result as it finishes, from the thread that ran it (the CLI's dots)
    on_action: Callable[[ActionResult], None] = lambda result: None

    def track_thread(self) -> None:
        self.threads.append(threading.current_thread())

    def add_finalizer(self, what: str, fn: Callable[[], None]) -> None:
        self.finalizers.append((what, fn))

    def by_role(self, role: Role) -> list[PodInfo]:
        # a snapshot: tests running in other threads add their pods (rdma) while this one iterates
        return [p for p in list(self.pods.values()) if p.role == role]

    # -- API calls with bounded retries on transient errors (429, 5xx, connection) -------------------

    def api(self, fn: Callable[[], Any]) -> Any:
        delay = self.params.retry_delay
        for attempt in range(1, self.params.retries + 2):
            try:
                return fn()
            except ApiError as exc:
                if not exc.transient or attempt > self.params.retries or self.stop.is_set():
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def create(self, obj: dict[str, Any], remove: bool = False) -> None:
        """Create, treating 'already exists' as done when the object is this run's (a retried create), stamped with
        when `cleanup` may take it. With `remove` its deletion is registered first, to wait for the create: a
        create still in flight when the run ends (its deadline, Ctrl-C) is removed once it lands, never left."""
        if self.stop.is_set():
            raise SetupError("the run was stopped: nothing more is created")
        meta = obj["metadata"]
        meta.setdefault("annotations", {})[EXPIRES] = "never" if self.expires is None else str(int(self.expires))
        landed = threading.Event()
        # in an existing namespace nothing takes the run's objects away with it: each is removed on its own
        if remove or (self.params.in_namespace and obj["kind"] != "Namespace" and not self.params.keep):
            kind, name, namespace = obj["kind"], meta["name"], meta.get("namespace")

            def delete() -> None:
                landed.wait()  # bounded by the cleanup's deadline (runner.bounded)
                self.cluster.delete(kind, name, namespace)

            self.add_finalizer(f"{kind.lower() if kind == 'Namespace' else kind} {name}", delete)
        try:
            self.api(lambda: self.cluster.create(obj))
        except ApiError as exc:
            if exc.status != 409:
                raise
            existing = self.cluster.get(obj["kind"], meta["name"], meta.get("namespace"))
            if not existing or existing["metadata"].get("labels", {}).get(RUN_LABEL) != self.run_id:
                raise SetupError(f"{obj['kind']} {meta['name']} already exists and is not this run's") from exc
        finally:
            landed.set()

    # -- setup ------------------------------------------------------------------------------------------

    def deploy(self, objects: list[dict[str, Any]]) -> None:
        """Create the run's objects (its namespace first, if it makes one) and wait until every pod runs with an
        underlay IP."""
        ns_obj, rest = (objects[0], objects[1:]) if objects[0]["kind"] == "Namespace" else (None, objects)
        if ns_obj:
            self.create(ns_obj, remove=not self.params.keep)
        self.start_pods(rest)
        svc = self.cluster.get("Service", "echo", self.namespace)
        self.service_ip = (svc or {}).get("spec", {}).get("clusterIP", "")

    def create_all(self, objects: list[dict[str, Any]]) -> dict[str, float]:
        """Create `objects` in order; the monotonic time each was asked for, by name."""
        created = {}
        for obj in objects:
            created[obj["metadata"]["name"]] = time.monotonic()
            self.create(obj)
        return created

    def start_pods(self, objects: list[dict[str, Any]]) -> dict[str, PodInfo]:
        """Create `objects` in order, wait until their pods on the underlay (not hostNetwork) are ready with their
        address, and add them to the run's pods (what probes and the environment read), in name order."""
        self.create_all(objects)
        names = [o["metadata"]["name"] for o in objects if o["kind"] == "Pod" and not o["spec"].get("hostNetwork")]
        started = self.wait_pods(names)
        self.pods.update(sorted(started.items()))
        return started

    def wait_host_pods(self, names: list[str]) -> dict[str, str]:
        """hostNetwork pods have no underlay address (Multus leaves them alone): ready, and their podIP (the node's)."""
        deadline = time.monotonic() + self.params.pod_ready_timeout
        ips: dict[str, str] = {}
        while len(ips) < len(names):
            if time.monotonic() > deadline or self.stop.is_set():
                raise SetupError(f"hostNetwork pods not ready within {self.params.pod_ready_timeout:.0f}s")
            for name in set(names) - set(ips):
                status = (self.cluster.get("Pod", name, self.namespace) or {}).get("status", {})
                conditions = status.get("conditions", [])
                ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
                if status.get("phase") == "Running" and ready and status.get("podIP"):
                    ips[name] = status["podIP"]
            time.sleep(0.2)
        return ips

    def wait_pods(self, names: list[str], report_stuck: bool = True) -> dict[str, PodInfo]:
        """Watch the run's pods until all are running and ready with their underlay address. A pod stuck (its
        image, or a warning past stuck_after) is reported early unless `report_stuck` is off: a pod may be meant
        to wait for an address (ipam's pod one too many for its pool)."""
        assert self.network is not None
        deadline = time.monotonic() + self.params.pod_ready_timeout
        first_seen: dict[str, float] = {}
        ready: dict[str, PodInfo] = {}
        while len(ready) < len(names):
            if self.stop.is_set():
                raise SetupError("interrupted while waiting for pods")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = [n for n in names if n not in ready]
                message = f"pods not ready within {self.params.pod_ready_timeout:.0f}s: {', '.join(sorted(missing))}"
                raise NotReady(message, missing, ready)
            try:
                # A fresh list first: a watch can drop, and events missed in between must not be lost.
                for pod in self.cluster.list("Pod", self.namespace, f"{RUN_LABEL}={self.run_id}"):
                    self._observe(pod, names, first_seen, ready, report_stuck)
                if len(ready) == len(names):
                    break
                for _, pod in self.cluster.watch(
                    "Pod", self.namespace, f"{RUN_LABEL}={self.run_id}", max(1, min(int(remaining), 10))
                ):
                    self._observe(pod, names, first_seen, ready, report_stuck)
                    if len(ready) == len(names) or self.stop.is_set():
                        break
            except ApiError as exc:
                if not exc.transient:
                    raise
                time.sleep(self.params.retry_delay)  # the watch dropped or the API hiccuped: re-list
        return {name: ready[name] for name in names}

    def _observe(
        self,
        pod: dict[str, Any],
        names: list[str],
        first_seen: dict[str, float],
        ready: dict[str, PodInfo],
        report_stuck: bool,
    ) -> None:
        name = pod["metadata"]["name"]
        if name not in names:
            return
        first_seen.setdefault(name, time.monotonic())
        status = pod.get("status", {})
        phase = status.get("phase")
        if report_stuck:
            for cs in status.get("containerStatuses", []) or []:
                waiting = (cs.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in STUCK_REASONS:
                    raise SetupError(
                        f"pod {name} is stuck in {waiting['reason']} (image {cs.get('image')}): "
                        f"{waiting.get('message', '').strip()}"
                    )
            if phase in {"Failed", "Succeeded"}:
                raise SetupError(f"pod {name} ended ({phase}) instead of running")
        conditions = {c["type"]: c["status"] for c in status.get("conditions", []) or []}
        if phase == "Running" and conditions.get("Ready") == "True" and self._underlay_ip(pod):
            if name not in ready:  # the first time it is seen ready
                ready[name] = self._pod_info(pod)
        elif report_stuck and time.monotonic() - first_seen[name] > self.params.stuck_after:
            # A warning (no node fits, no address, a failed mount) means stuck; a pull of a large image in
            # progress does not: that pod has until the deadline.
            reason = self._blocking_event(name)
            if reason:
                raise SetupError(f"pod {name} is stuck ({reason}) after {self.params.stuck_after:.0f}s")

    def _blocking_event(self, pod: str) -> str:
        events = self.cluster.list("Event", self.namespace)
        warnings = [e for e in events if e.get("involvedObject", {}).get("name") == pod and e.get("type") == "Warning"]
        return f"{warnings[-1].get('reason')}: {warnings[-1].get('message')}" if warnings else ""

    def _underlay_ip(self, pod: dict[str, Any]) -> str:
        assert self.network is not None
        return underlay_ip(pod, self.network.interface)

    def _pod_info(self, pod: dict[str, Any]) -> PodInfo:
        labels = pod["metadata"].get("labels", {})
        node = pod["spec"]["nodeName"]
        return PodInfo(
            pod["metadata"]["name"],
            cast("Role", labels.get(manifests.ROLE_LABEL, "")),  # the run's pods all carry it (manifests.pod)
            node,
            self._underlay_ip(pod),
            self.node_ips.get(node, ""),
            labels.get(manifests.APP_LABEL),
            pod["metadata"].get("uid", ""),
            time.monotonic(),
        )

"""What a result needs to be read later, away from the cluster: versions, nodes, pods, pools and the flags.

Collected once after a run (or from an audit's snapshot) into the result's `environment` (format 2, see
result_schema.json). Every read is best effort: a cluster that stopped answering leaves a field empty with the
reason in `errors`, it never fails a run whose tests are done.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from spider_validate import __version__
from spider_validate.cluster.api import ApiError
from spider_validate.probes import linerate

if TYPE_CHECKING:
    from spider_validate.cluster.api import Cluster
    from spider_validate.engine.context import RunContext
    from spider_validate.engine.params import Parameters

# Spiderpool's chart labels its controller with the app version (charts/spiderpool/templates/_helpers.tpl,
# "spiderpool.spiderpoolController.labels": app.kubernetes.io/version: {{ .Chart.AppVersion }}), and its image
# tag defaults to v<AppVersion> ("spiderpool.spiderpoolController.image").
VERSION_LABEL = "app.kubernetes.io/version"
CONTROLLER = "spiderpool-controller"


def pool_usage(pools: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each SpiderIPPool's size and use, from its status (totalIPCount, allocatedIPCount)."""
    usage = []
    for pool in pools:
        spec, status = pool.get("spec", {}) or {}, pool.get("status", {}) or {}
        total = status.get("totalIPCount")
        allocated = status.get("allocatedIPCount")
        usage.append(
            {
                "name": pool.get("metadata", {}).get("name", "?"),
                "subnet": spec.get("subnet", ""),
                "nodes": list(spec.get("nodeName") or []),
                "total": total if isinstance(total, int) else None,  # Spiderpool's controller sets it
                "allocated": allocated if isinstance(allocated, int) else 0,
            }
        )
    return sorted(usage, key=lambda p: p["name"])


def spiderpool_version(deployments: Iterable[dict[str, Any]]) -> str:
    for dep in deployments:
        if dep.get("metadata", {}).get("name") != CONTROLLER:
            continue
        label = (dep["metadata"].get("labels") or {}).get(VERSION_LABEL)
        if label:
            return str(label)
        for container in dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []) or []:
            image = str(container.get("image", ""))
            if ":" in image.rsplit("/", 1)[-1]:
                return image.rsplit(":", 1)[1]
        return "unknown (no version label or image tag)"
    return f"unknown ({CONTROLLER} not found)"


def node_facts(nodes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    facts = []
    for node in nodes:
        meta, status = node.get("metadata", {}), node.get("status", {}) or {}
        rate, source = linerate.node_line_rate(node)
        ips = {a.get("type"): a.get("address") for a in status.get("addresses", []) or []}
        facts.append(
            {
                "name": meta.get("name", "?"),
                "instance_type": (meta.get("labels") or {}).get(linerate.INSTANCE_TYPE_LABEL, ""),
                "internal_ip": ips.get("InternalIP", ""),
                "kubelet_version": (status.get("nodeInfo") or {}).get("kubeletVersion", ""),
                "line_rate_gbps": rate,
                "line_rate_source": source,
            }
        )
    return sorted(facts, key=lambda n: n["name"])


def collect(
    cluster: Cluster | None,
    params: Parameters | None = None,
    ctx: RunContext | None = None,
    argv: list[str] | None = None,
    pools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The environment of a run (or an audit: `pools` from its snapshot, `cluster` None when offline)."""
    errors: list[str] = []

    def read(what: str, fn: Callable[[], Any], default: Any) -> Any:
        """One API read; after a failure the rest are not tried (a dead API server costs one timeout)."""
        if cluster is None or errors:
            return default
        try:
            return fn()
        except (ApiError, OSError) as exc:
            errors.append(f"{what}: {exc}")
            return default

    env: dict[str, Any] = {
        "validator_version": __version__,
        "argv": list(argv or []),
        "parameters": dataclasses.asdict(params) if params else {},
        "collected": time.time(),
        "kubernetes_version": read("version", lambda: cluster.server_version() if cluster else "", ""),
        "spiderpool_version": read(
            "Spiderpool", lambda: spiderpool_version(cluster.list("Deployment") if cluster else []), ""
        ),
        "nodes": read("nodes", lambda: node_facts(cluster.list("Node") if cluster else []), []),
        "pools": pool_usage(
            pools if pools is not None else read("pools", lambda: cluster.list("SpiderIPPool") if cluster else [], [])
        ),
    }
    if ctx is not None:
        env["network"] = ctx.network.ref if ctx.network else ""
        env["test_nodes"] = list(ctx.nodes)
        env["pod_security"] = ctx.pod_security
        env["pods"] = [
            {"name": p.name, "role": p.role, "node": p.node, "ip": p.ip, "app": p.app or ""}
            for p in sorted(ctx.pods.values(), key=lambda p: p.name)
        ]
    env["errors"] = errors
    return env

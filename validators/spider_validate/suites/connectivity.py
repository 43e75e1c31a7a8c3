"""Pod connectivity on the underlay: ping and HTTP within and across nodes, to a Service, to the node."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Literal

from spider_validate.actions import reach as actions
from spider_validate.engine.context import PodInfo, RunContext
from spider_validate.engine.model import Action, Skip
from spider_validate.engine.test import Scenario, Test

SUITE = "connectivity"


def _pairs(ctx: RunContext, same_node: bool) -> Iterator[tuple[PodInfo, PodInfo]]:
    for client in ctx.by_role("client"):
        for server in ctx.by_role("server"):
            if (client.node == server.node) == same_node:
                yield client, server


def pod_to_pod(probe: Literal["ping", "http"], same_node: bool) -> Scenario:
    """Same node: one probe per pod pair (one pair per node). Across nodes: every client probes every other node's
    server in one exec (actions.batched), n execs for n(n-1) pairs; the actions are yielded a source at a time
    in turn, so that the runner's workers start different sources' execs at once."""

    def run(ctx: RunContext) -> Iterator[Action]:
        pairs = list(_pairs(ctx, same_node))
        if not pairs:
            raise Skip("needs test pods on two nodes" if not same_node else "no server on a client's node")
        if same_node:
            for client, server in pairs:
                if probe == "ping":
                    yield actions.ping(ctx, client, server.name, server.ip)
                else:
                    yield actions.http(ctx, client, server.name, server.ip, ctx.params.http_port, {server.name})
            return
        by_source: dict[str, list[tuple[str, str]]] = {}
        for client, server in pairs:
            by_source.setdefault(client.name, []).append((server.name, server.ip))
        batches = [
            actions.batched(ctx, ctx.pods[src], probe, targets, ctx.params.http_port)
            for src, targets in by_source.items()
        ]
        for turn in itertools.zip_longest(*batches):
            yield from (a for a in turn if a is not None)

    return Scenario(f"{probe}-{'same' if same_node else 'other'}-node", run)


def to_service(ctx: RunContext) -> Iterator[Action]:
    if not ctx.service_ip:
        raise Skip("the echo Service has no ClusterIP")
    servers = {p.name for p in ctx.by_role("server")}
    for client in ctx.by_role("client"):
        yield actions.http(ctx, client, "service/echo", ctx.service_ip, 80, servers)


def to_node(ctx: RunContext) -> Iterator[Action]:
    for client in ctx.by_role("client"):
        if not client.node_ip:
            raise Skip(f"node {client.node} has no InternalIP")
        yield actions.ping(ctx, client, f"node/{client.node}", client.node_ip)


TESTS = [
    Test(
        SUITE,
        "pod-to-pod-same-node",
        "ping and HTTP between pods on one node, over their underlay IPs",
        (pod_to_pod("ping", True), pod_to_pod("http", True)),
        labels=("underlay",),
    ),
    Test(
        SUITE,
        "pod-to-pod-cross-node",
        "ping and HTTP between pods on different nodes, over their underlay IPs",
        (pod_to_pod("ping", False), pod_to_pod("http", False)),
        labels=("underlay", "cross-node"),
        requires_nodes=2,
    ),
    Test(
        SUITE,
        "pod-to-service",
        "HTTP from each client to a ClusterIP Service backed by the servers",
        (Scenario("http-service", to_service),),
        labels=("service",),
    ),
    Test(
        SUITE,
        "pod-to-node",
        "ping from each client to its own node's IP (coordinator routes)",
        (Scenario("ping-node", to_node),),
        labels=("node",),
    ),
]

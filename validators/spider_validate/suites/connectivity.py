"""Pod connectivity on the underlay: ping and HTTP within and across nodes, to a Service, to the node."""

from __future__ import annotations

from collections.abc import Iterator

from spider_validate.actions import reach as actions
from spider_validate.engine.context import RunContext
from spider_validate.engine.model import Action, Scenario, Skip, Test

SUITE = "connectivity"


def _pairs(ctx: RunContext, same_node: bool) -> Iterator[tuple[str, str, str, str]]:
    for client in ctx.by_role("client"):
        for server in ctx.by_role("server"):
            if (client.node == server.node) == same_node:
                yield client.name, server.name, server.ip, server.node


def pod_to_pod(probe: str, same_node: bool) -> Scenario:
    def run(ctx: RunContext) -> Iterator[Action]:
        pairs = list(_pairs(ctx, same_node))
        if not pairs:
            raise Skip("needs test pods on two nodes" if not same_node else "no server on a client's node")
        for client, server, ip, _ in pairs:
            src = ctx.pods[client]
            if probe == "ping":
                yield actions.ping(ctx, src, server, ip)
            else:
                yield actions.http(ctx, src, server, ip, ctx.params.http_port, {server})

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

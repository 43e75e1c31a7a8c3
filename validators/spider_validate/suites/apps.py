"""The sample web apps: distinct underlay IPs from each app's own pools, and HTTP answers with their own names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from spider_validate.actions import reach as actions
from spider_validate.cluster import addresses, spiderpool
from spider_validate.cluster.spiderpool import underlay_ip
from spider_validate.engine.context import PodInfo, RunContext
from spider_validate.engine.model import Action, Outcome, Skip
from spider_validate.engine.test import Scenario, Test
from spider_validate.names import APP_LABEL

SUITE = "apps"


def app_pods(ctx: RunContext) -> dict[str, list[tuple[PodInfo, dict[str, Any]]]]:
    """Running pods by app: the run's own (--apps N) or the umbrella chart's sample apps."""
    assert ctx.network is not None
    if ctx.params.apps:
        own = ctx.by_role("app")
        return {app: [(p, {}) for p in own if p.app == app] for app in sorted({p.app or "" for p in own})}
    found: dict[str, list[tuple[PodInfo, dict[str, Any]]]] = {}
    for pod in ctx.cluster.list("Pod", label_selector=APP_LABEL):
        if pod.get("status", {}).get("phase") != "Running":
            continue
        app = pod["metadata"]["labels"][APP_LABEL]
        node = pod["spec"].get("nodeName", "")
        info = PodInfo(
            pod["metadata"]["name"],
            "app",
            node,
            underlay_ip(pod, ctx.network.interface),
            ctx.node_ips.get(node, ""),
            app,
            pod["metadata"].get("uid", ""),
        )
        found.setdefault(app, []).append((info, pod))
    if not found:
        raise Skip("no sample apps found (install the chart with sampleApps.count > 0, or pass --apps N)")
    return found


def distinct_ips(ctx: RunContext) -> Iterator[Action]:
    apps = app_pods(ctx)
    pools = {p["metadata"]["name"]: p for p in ctx.cluster.list("SpiderIPPool")} if not ctx.params.apps else {}
    owners: dict[str, str] = {}
    for app, members in apps.items():
        for info, _ in members:
            if info.ip:
                owners.setdefault(info.ip, app)

    for app, members in sorted(apps.items()):

        def check(app: str = app, members: list[tuple[PodInfo, dict[str, Any]]] = members) -> Outcome:
            problems = []
            for info, pod in members:
                if not info.ip:
                    problems.append(f"{info.name} has no underlay address")
                    continue
                if owners[info.ip] != app:
                    problems.append(f"{info.name} has {info.ip}, also used by {owners[info.ip]}")
                names = spiderpool.requested_pools(pod)
                if pod and not names:
                    problems.append(f"{info.name} asks for no pool of its own")
                elif names and not any(
                    addresses.contains(pools.get(n, {}).get("spec", {}).get("ips", []), info.ip) for n in names
                ):
                    problems.append(f"{info.name}'s {info.ip} is in none of its pools {names}")
            ips = sorted(i.ip for i, _ in members)
            return Outcome(not problems, "; ".join(problems) or f"{len(ips)} pods on {', '.join(ips)}")

        yield Action(f"addresses of {app}", "api", app, "pools", check)


def http_identity(ctx: RunContext) -> Iterator[Action]:
    clients = ctx.by_role("client")
    for app, members in sorted(app_pods(ctx).items()):
        for info, _ in members:
            remote = [c for c in clients if c.node != info.node]
            if not remote:
                raise Skip("needs a client pod on a node other than the app's")
            yield actions.http(ctx, remote[0], f"{app}/{info.name}", info.ip, ctx.params.http_port, {info.name})


TESTS = [
    Test(
        SUITE,
        "distinct-ips",
        "every app's pods have underlay IPs from its own pools, shared with no other app",
        (Scenario("addresses", distinct_ips),),
        labels=("apps",),
    ),
    Test(
        SUITE,
        "http-identity",
        "each app pod answers HTTP with its own name, from a client on another node",
        (Scenario("http", http_identity),),
        labels=("apps", "cross-node"),
        requires_nodes=2,
    ),
]

"""What the underlay costs against the host network on the same two nodes: TCP throughput (iperf3, parallel
streams) and request/response latency percentiles (sockperf), pod to pod over the underlay addresses and host to
host (hostNetwork pods), each pod figure judged against the host's within a tolerance (k8s-netperf's idea)."""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from spider_validate.engine import manifests
from spider_validate.engine.context import RunContext
from spider_validate.engine.model import Outcome, Skip
from spider_validate.engine.steps import StepFailed
from spider_validate.engine.test import Test
from spider_validate.probes import perf as perf_probes

if TYPE_CHECKING:
    from spider_validate.engine.steps import Steps

SUITE = "perf"
RESOURCES = {"requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"cpu": "2", "memory": "256Mi"}}
TOOLS = {"throughput": "iperf3", "latency": "sockperf"}  # what each test runs from the perf image
MEASURING = threading.Lock()  # one measurement at a time: iperf3 filling the link would spoil sockperf's figures
Figure = Literal["throughput", "latency"]
T = TypeVar("T")


@dataclass(frozen=True)
class Path:
    """One way across the two nodes: `server` listens on `ip`, `client` connects."""

    kind: Literal["pod", "host"]
    server: str
    client: str
    ip: str = ""


def perf_pod(ctx: RunContext, name: str, node: str, host: bool) -> dict[str, Any]:
    """A sleeping pod with iperf3 and sockperf; on the host network with `host` (same image, same CPU)."""
    assert ctx.network is not None
    pod = manifests.pod(
        name, ctx.namespace, ctx.run_id, "perf", node, ctx.params.image("perf"), ctx.network, ctx.params
    )
    pod["spec"]["containers"][0]["resources"] = {k: dict(v) for k, v in RESOURCES.items()}
    if host:
        pod["spec"]["hostNetwork"] = True
        pod["metadata"]["annotations"] = {}  # no underlay attachment
        pod["spec"].pop("securityContext", None)  # network sysctls are refused with hostNetwork
    return pod


def _name(test: str, kind: str, i: int) -> str:
    return f"perf-{test[:3]}-{kind}-{i}"


def objects(test: str, ctx: RunContext) -> list[dict[str, Any]]:
    """The test's pods: one on the underlay and one on the host network, on each of the first two nodes."""
    nodes = (ctx.nodes * 2)[:2]
    return [
        perf_pod(ctx, _name(test, k, i), node, k == "host") for k in ("pod", "host") for i, node in enumerate(nodes)
    ]


def _exec(ctx: RunContext, pod: str, command: list[str] | str, timeout: float) -> tuple[int | None, str, str]:
    argv = ["sh", "-c", command] if isinstance(command, str) else command
    r = ctx.cluster.exec(ctx.namespace, pod, argv, timeout=timeout)
    return r.exit_code, r.stdout, r.stderr


def _start(ctx: RunContext, t: Steps, test: str, tool: str) -> dict[str, Path]:
    """Create the test's pods and wait for them; Skip (the test, not a pass) when the perf image lacks `tool`."""

    def run() -> tuple[dict[str, Path], Outcome]:
        specs = objects(test, ctx)
        pods = ctx.start_pods(specs)
        host_ips = ctx.wait_host_pods([s["metadata"]["name"] for s in specs if s["spec"].get("hostNetwork")])
        ips = {"pod": {n: p.ip for n, p in pods.items()}, "host": host_ips}
        paths = {kind: dataclasses.replace(p, ip=ips[p.kind][p.server]) for kind, p in _paths(test).items()}
        if _exec(ctx, paths["pod"].client, f"command -v {tool}", 10)[0] != 0:
            image = ctx.params.image("perf")
            raise Skip(f"the perf image {image} has no {tool}: pass --image perf=REF with one that has")
        return paths, Outcome(True, ", ".join(f"{p.kind} server {p.server} at {p.ip}" for p in paths.values()))

    return t.step("start the pod and hostNetwork pods on two nodes", run, destination="pods")


def _exchange(
    ctx: RunContext, path: Path, port: int, server: list[str], client: list[str], timeout: float
) -> Outcome | str:
    """Start the server in the background, run the client once it listens, stop the server (by the PID its start
    printed: a hostNetwork server would otherwise outlive the pod's test in the node's network); the client's
    output, or an Outcome when the server never listened."""
    _, pid, _ = _exec(ctx, path.server, f"nohup {shlex.join(server)} >/dev/null 2>&1 & echo $!", 15)
    try:
        for _ in range(50):
            if f":{port}" in _exec(ctx, path.server, f"ss -ltnH 'sport = :{port}'", 10)[1]:
                _, out, err = _exec(ctx, path.client, client, timeout)
                return out + err
            time.sleep(0.2)
        return Outcome(False, f"{server[2]} did not listen on {path.ip}:{port} in {path.server}")
    finally:
        if pid.strip().isdigit():
            _exec(ctx, path.server, f"kill {pid.strip()} 2>/dev/null || true", 10)


def _probe(
    ctx: RunContext,
    path: Path,
    port: int,
    server: list[str],
    client: list[str],
    timeout: float,
    parse: Callable[[str], T],
) -> T | Outcome:
    """One exchange on `path` with its client's output parsed: the figure, or an Outcome saying why there is none."""
    output = _exchange(ctx, path, port, server, client, timeout)
    if isinstance(output, Outcome):
        return output
    try:
        return parse(output)
    except perf_probes.PerfError as exc:
        return Outcome(False, str(exc))


def server_port(run_id: str, test: str, kind: str) -> int:
    # unique to the run and path; below the NodePort range (30000-32767) and Linux's ephemeral ports (32768-60999),
    # which a hostNetwork server shares with the node
    return 20000 + zlib.crc32(f"{run_id}/{test}/{kind}".encode()) % 10000


def _paths(test: str) -> dict[str, Path]:
    return {kind: Path(kind, _name(test, kind, 0), _name(test, kind, 1)) for kind in ("host", "pod")}


def throughput(ctx: RunContext, t: Steps) -> None:
    paths = _start(ctx, t, "throughput", TOOLS["throughput"])
    seconds, streams, tolerance = ctx.params.perf_seconds, ctx.params.perf_streams, ctx.params.perf_tolerance

    def measure(kind: str, host: perf_probes.Throughput | None) -> tuple[perf_probes.Throughput, Outcome] | Outcome:
        path, port = paths[kind], server_port(ctx.run_id, "throughput", kind)
        server = perf_probes.iperf3_server_command(port, seconds + 30)
        client = perf_probes.iperf3_client_command(path.ip, port, streams, seconds)
        tp = _probe(ctx, path, port, server, client, seconds + 30, perf_probes.parse_iperf3)
        if isinstance(tp, Outcome):
            return tp
        data: dict[str, Any] = {
            "transport": f"TCP {kind} to {kind}",
            "average_gbps": round(tp.gbps, 3),
            "streams": tp.streams,
            "measured_seconds": round(tp.seconds, 2),
            "retransmits": tp.retransmits,
        }
        summary = f"{tp.gbps:.2f} Gb/s with {tp.streams} streams over {tp.seconds:.0f}s"
        if host is None:
            return tp, Outcome(True, f"host to host: {summary}", data=data)
        return tp, throughput_verdict(tp.gbps, host.gbps, tolerance, summary, data)

    host = _measured(t, "throughput", paths["host"], partial(measure, "host", None))
    _measured(t, "throughput", paths["pod"], partial(measure, "pod", host))


def throughput_verdict(gbps: float, host_gbps: float, tolerance: float, summary: str, data: dict[str, Any]) -> Outcome:
    """The pods pass when they reach (1 - tolerance) of the host's throughput on the same nodes."""
    need, ratio = host_gbps * (1 - tolerance), gbps / host_gbps if host_gbps else 0.0
    data = data | {"host_gbps": round(host_gbps, 3), "ratio": round(ratio, 3), "min_gbps": round(need, 3)}
    data["tolerance"] = tolerance
    verdict = f"pod to pod: {summary}, {ratio:.1%} of the host's {host_gbps:.2f} Gb/s (needs {1 - tolerance:.0%})"
    return Outcome(gbps >= need, verdict, data=data)


def _measured(t: Steps, figure: Figure, path: Path, measure: Callable[[], tuple[T, Outcome] | Outcome]) -> T:
    """One measurement on `path`, alone (MEASURING): what it measured."""

    def run() -> tuple[T, Outcome] | Outcome:
        with MEASURING:
            return measure()

    return t.step(f"{figure} {path.kind} to {path.kind}", run, figure, path.client, path.server)


def latency(ctx: RunContext, t: Steps) -> None:
    paths = _start(ctx, t, "latency", TOOLS["latency"])
    seconds, tolerance = ctx.params.perf_seconds, ctx.params.perf_latency_tolerance

    def measure(kind: str, host: perf_probes.Latency | None) -> tuple[perf_probes.Latency, Outcome] | Outcome:
        path, port = paths[kind], server_port(ctx.run_id, "latency", kind)
        server = perf_probes.sockperf_server_command(path.ip, port, seconds + 30)
        client = perf_probes.sockperf_client_command(path.ip, port, seconds)
        lat = _probe(ctx, path, port, server, client, seconds + 30, perf_probes.parse_sockperf)
        if isinstance(lat, Outcome):
            return lat
        data: dict[str, Any] = {
            "transport": f"TCP {kind} to {kind}",
            "p50_us": lat.p50_us,
            "p90_us": lat.p90_us,
            "p99_us": lat.p99_us,
            "avg_us": lat.avg_us,
            "observations": lat.observations,
        }
        summary = f"p50 {lat.p50_us:.1f} us, p90 {lat.p90_us:.1f} us, p99 {lat.p99_us:.1f} us (half round trips)"
        if host is None:
            return lat, Outcome(True, f"host to host: {summary}", data=data)
        limit = host.p50_us * (1 + tolerance)
        data |= {f"host_{p}_us": getattr(host, f"{p}_us") for p in ("p50", "p90", "p99")}
        data |= {"ratio_p50": round(lat.p50_us / host.p50_us, 3), "max_p50_us": round(limit, 3), "tolerance": tolerance}
        verdict = f"pod to pod: {summary}; p50 is {lat.p50_us / host.p50_us:.2f}x the host's {host.p50_us:.1f} us"
        return lat, Outcome(lat.p50_us <= limit, f"{verdict} (at most {1 + tolerance:.2f}x)", data=data)

    host = _measured(t, "latency", paths["host"], partial(measure, "host", None))
    _measured(t, "latency", paths["pod"], partial(measure, "pod", host))


RING_FLOOR = 0.5  # a pairing below this fraction of the median pairing is slow


def ring_rounds(nodes: list[str]) -> list[list[tuple[str, str]]]:
    """Rounds of disjoint pairs in which every node meets both its neighbours on a ring (in the order given): the
    edges (i, i+1) alternately in two rounds, an odd ring's closing edge in a third; two nodes make one pair. Each
    round's pairs run at once: 2 or 3 rounds whatever the size, n pairings in all."""
    n = len(nodes)
    if n < 2:
        return []
    edges = [(nodes[i], nodes[(i + 1) % n]) for i in range(n if n > 2 else 1)]
    if n % 2 == 0:
        return [r for r in (edges[0::2], edges[1::2]) if r]
    return [edges[0 : n - 1 : 2], edges[1 : n - 1 : 2], [edges[-1]]]


def bad_nodes(figures: dict[tuple[str, str], float | None]) -> tuple[float, set[str]]:
    """The floor (RING_FLOOR of the median pairing's Gb/s) and the nodes slow in every pairing they are part of
    (a pairing that failed is slow): on a ring each node is in two, so one slow link implicates neither of its
    ends alone, and a slow node makes both its pairings slow."""
    measured = sorted(g for g in figures.values() if g is not None)
    floor = measured[len(measured) // 2] * RING_FLOOR if measured else 0.0
    pairings: dict[str, list[bool]] = {}
    for (a, b), gbps in figures.items():
        for node in (a, b):
            pairings.setdefault(node, []).append(gbps is None or gbps < floor)
    return floor, {node for node, slow in pairings.items() if len(slow) > 1 and all(slow)}


def bandwidth_ring(ctx: RunContext, t: Steps) -> None:
    """TCP bandwidth on every node without n^2 pairs: iperf3 between the client pods of ring neighbours, a round
    of disjoint pairs at a time (ring_rounds), then each pairing and each node judged against the floor; a node
    slow in every pairing is named, and a slow pairing says which of its nodes the other round implicates."""
    pods = {p.node: p for p in ctx.by_role("client")}
    seconds, streams = ctx.params.perf_seconds, ctx.params.perf_streams
    figures: dict[tuple[str, str], float | None] = {}
    details: dict[tuple[str, str], str] = {}

    def measure(pair: tuple[str, str]) -> None:
        client, server = pods[pair[0]], pods[pair[1]]
        port = server_port(ctx.run_id, "ring", "-".join(pair))
        path = Path("pod", server.name, client.name, server.ip)
        server_cmd = perf_probes.iperf3_server_command(port, seconds + 30)
        client_cmd = perf_probes.iperf3_client_command(server.ip, port, streams, seconds)
        tp = _probe(ctx, path, port, server_cmd, client_cmd, seconds + 30, perf_probes.parse_iperf3)
        figures[pair] = None if isinstance(tp, Outcome) else tp.gbps
        details[pair] = tp.detail if isinstance(tp, Outcome) else f"{tp.gbps:.2f} Gb/s with {tp.streams} streams"

    rounds = ring_rounds(sorted(pods))
    for pairs in rounds:
        with MEASURING, ThreadPoolExecutor(len(pairs), "ring") as pool:
            list(pool.map(measure, pairs))
    floor, bad = bad_nodes(figures)
    for i, pairs in enumerate(rounds):
        for pair in pairs:
            gbps = figures[pair]
            ok = gbps is not None and gbps >= floor
            blamed = sorted(set(pair) & bad)
            why = "" if ok else f"; the other round implicates {' and '.join(blamed) or 'neither node (their link)'}"
            data = {"transport": "TCP pod to pod", "min_gbps": round(floor, 3)}
            data |= {"average_gbps": round(gbps, 3)} if gbps is not None else {}
            outcome = Outcome(ok, f"round {i + 1}: {details[pair]} (floor {floor:.2f} Gb/s){why}", data=data)
            _judged(t, f"throughput {pair[0]} -> {pair[1]}", outcome, pods[pair[0]].name, pods[pair[1]].name)
    for node in sorted(pods):
        mine = {pair: g for pair, g in figures.items() if node in pair}
        best = max((g for g in mine.values() if g is not None), default=None)
        seen = ", ".join(
            f"with {b if a == node else a}: {g:.2f}" if g is not None else "failed" for (a, b), g in mine.items()
        )
        verdict = "bad node: slow in every pairing" if node in bad else f"best {best or 0:.2f} Gb/s"
        data = {"average_gbps": round(best or 0.0, 3), "min_gbps": round(floor, 3), "transport": "TCP pod to pod"}
        outcome = Outcome(node not in bad and best is not None, f"{verdict} ({seen} Gb/s)", data=data)
        _judged(t, f"bandwidth of node {node}", outcome, node, "")


def _judged(t: Steps, name: str, outcome: Outcome, source: str, destination: str) -> None:
    """A verdict made from every round's figures, recorded as its own result; a failing one ends nothing."""
    with contextlib.suppress(StepFailed):
        t.step(name, lambda: outcome, "throughput", source, destination)


def _test(name: str, description: str, steps: Callable[[RunContext, Steps], None]) -> Test:
    """A perf test: its own pods on two nodes, in order; privileged for the hostNetwork pods."""
    return Test(
        SUITE,
        name,
        description,
        steps=steps,
        labels=("perf", "cross-node"),
        requires_nodes=2,
        pod_security="privileged",
        objects=partial(objects, name),
    )


TESTS = [
    Test(
        SUITE,
        "bandwidth-ring",
        "TCP bandwidth of every node: iperf3 between ring neighbours in rounds of disjoint pairs; a node slow in "
        "every pairing is named",
        steps=bandwidth_ring,
        labels=("perf", "cross-node", "every-node"),
        requires_nodes=2,
    ),
    _test(
        "throughput",
        "TCP throughput pod to pod over the underlay reaches (1 - tolerance) of host to host on the same nodes",
        throughput,
    ),
    _test(
        "latency",
        "TCP request/response latency (p50, p90, p99) pod to pod within (1 + tolerance) of host to host",
        latency,
    ),
]

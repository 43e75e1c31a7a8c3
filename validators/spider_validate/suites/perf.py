"""What the underlay costs against the host network on the same two nodes: TCP throughput (iperf3, parallel
streams) and request/response latency percentiles (sockperf), pod to pod over the underlay addresses and host to
host (hostNetwork pods), each pod figure judged against the host's within a tolerance (k8s-netperf's idea)."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from spider_validate.actions import servers
from spider_validate.engine import manifests
from spider_validate.engine.context import RunContext
from spider_validate.engine.model import Outcome, Skip
from spider_validate.engine.test import Test
from spider_validate.probes import perf as perf_probes
from spider_validate.suites import ring

if TYPE_CHECKING:
    from spider_validate.engine.steps import Steps

SUITE = "perf"
RESOURCES = {"requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"cpu": "2", "memory": "256Mi"}}
TOOLS = {"throughput": "iperf3", "latency": "sockperf"}  # what each test runs from the perf image
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
    """The server started in the background, the client run once it listens, the server stopped (actions/servers.py):
    the client's output, or an Outcome when the server never listened."""
    pid = servers.start(ctx, path.server, server, port)
    if isinstance(pid, Outcome):
        return dataclasses.replace(pid, detail=f"{pid.detail} (at {path.ip})")
    try:
        _, out, err = _exec(ctx, path.client, client, timeout)
        return out + err
    finally:
        servers.stop(ctx, path.server, pid)


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
    """One measurement on `path`, alone (ring.MEASURING): what it measured."""

    def run() -> tuple[T, Outcome] | Outcome:
        with ring.MEASURING:
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


def bandwidth_ring(ctx: RunContext, t: Steps) -> None:
    """TCP bandwidth on every node without n^2 pairs: iperf3 between the client pods of ring neighbours, a round
    of disjoint pairs at a time (suites/ring.py), each pairing and each node judged against half the median
    pairing (TCP has no threshold of its own)."""
    pods = {p.node: p for p in ctx.by_role("client")}
    seconds, streams = ctx.params.perf_seconds, ctx.params.perf_streams

    def measure(pair: ring.Pair) -> ring.Measured:
        client, server = pods[pair[0]], pods[pair[1]]
        port = server_port(ctx.run_id, "ring", "-".join(pair))
        path = Path("pod", server.name, client.name, server.ip)
        server_cmd = perf_probes.iperf3_server_command(port, seconds + 30)
        client_cmd = perf_probes.iperf3_client_command(server.ip, port, streams, seconds)
        tp = _probe(ctx, path, port, server_cmd, client_cmd, seconds + 30, perf_probes.parse_iperf3)
        if isinstance(tp, Outcome):
            return ring.Measured(None, tp.detail)
        return ring.Measured(
            tp.gbps, f"{tp.gbps:.2f} Gb/s with {tp.streams} streams", {"average_gbps": round(tp.gbps, 3)}
        )

    figures = ring.measure(sorted(pods), measure)
    floor = ring.median_floor(figures, RING_FLOOR)
    ring.judge(t, figures, floor, "throughput", {n: p.name for n, p in pods.items()}, {"transport": "TCP pod to pod"})


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

"""What the underlay costs against the host network on the same two nodes: TCP throughput (iperf3, parallel
streams) and request/response latency percentiles (sockperf), pod to pod over the underlay addresses and host to
host (hostNetwork pods), each pod figure judged against the host's within a tolerance (k8s-netperf's idea)."""

from __future__ import annotations

import shlex
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from spider_validate import manifests, perf_probes
from spider_validate.context import RunContext, SetupError
from spider_validate.model import Action, Outcome, Scenario, Skip, Test

SUITE = "perf"
RESOURCES = {"requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"cpu": "2", "memory": "256Mi"}}
TOOLS = {"throughput": "iperf3", "latency": "sockperf"}  # what each test runs from the perf image
MEASURING = threading.Lock()  # one measurement at a time: iperf3 filling the link would spoil sockperf's figures


@dataclass(frozen=True)
class Path:
    """One way across the two nodes: `server` listens on `ip`, `client` connects."""

    kind: str  # pod | host
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


def _wait_host_pods(ctx: RunContext, names: list[str]) -> dict[str, str]:
    """hostNetwork pods have no underlay address (Multus leaves them alone): ready, and their podIP (the node's)."""
    deadline = time.monotonic() + ctx.params.pod_ready_timeout
    ips: dict[str, str] = {}
    while len(ips) < len(names):
        if time.monotonic() > deadline or ctx.stop.is_set():
            raise SetupError(f"hostNetwork pods not ready within {ctx.params.pod_ready_timeout:.0f}s")
        for name in set(names) - set(ips):
            status = (ctx.cluster.get("Pod", name, ctx.namespace) or {}).get("status", {})
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
            if status.get("phase") == "Running" and ready and status.get("podIP"):
                ips[name] = status["podIP"]
        time.sleep(0.2)
    return ips


def start_pods(ctx: RunContext, test: str, paths: dict[str, Path], tool: str) -> Action:
    """Create the test's pods and wait for them; Skip (the test, not a pass) when the perf image lacks `tool`."""

    def run() -> Outcome:
        specs = objects(test, ctx)
        for spec in specs:
            ctx.create(spec)
        ctx.wait_pods([s["metadata"]["name"] for s in specs if not s["spec"].get("hostNetwork")])
        host_ips = _wait_host_pods(ctx, [s["metadata"]["name"] for s in specs if s["spec"].get("hostNetwork")])
        for kind, path in list(paths.items()):
            server_ip = ctx.pods[path.server].ip if kind == "pod" else host_ips[path.server]
            paths[kind] = Path(kind, path.server, path.client, server_ip)
        if _exec(ctx, paths["pod"].client, f"command -v {tool}", 10)[0] != 0:
            image = ctx.params.image("perf")
            raise Skip(f"the perf image {image} has no {tool}: pass --image perf=REF with one that has")
        return Outcome(True, ", ".join(f"{p.kind} server {p.server} at {p.ip}" for p in paths.values()))

    return Action("start the pod and hostNetwork pods on two nodes", "api", test, "pods", run)


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


def server_port(run_id: str, test: str, kind: str) -> int:
    # unique to the run and path; below the NodePort range (30000-32767) and Linux's ephemeral ports (32768-60999),
    # which a hostNetwork server shares with the node
    return 20000 + zlib.crc32(f"{run_id}/{test}/{kind}".encode()) % 10000


def _paths(test: str) -> dict[str, Path]:
    return {kind: Path(kind, _name(test, kind, 0), _name(test, kind, 1)) for kind in ("host", "pod")}


def throughput(ctx: RunContext) -> Iterator[Action]:
    paths = _paths("throughput")
    yield start_pods(ctx, "throughput", paths, TOOLS["throughput"])
    seconds, streams, tolerance = ctx.params.perf_seconds, ctx.params.perf_streams, ctx.params.perf_tolerance
    measured: dict[str, perf_probes.Throughput] = {}

    def measure(kind: str) -> Outcome:
        path, port = paths[kind], server_port(ctx.run_id, "throughput", kind)
        server = perf_probes.iperf3_server_command(port, seconds + 30)
        client = perf_probes.iperf3_client_command(path.ip, port, streams, seconds)
        output = _exchange(ctx, path, port, server, client, seconds + 30)
        if isinstance(output, Outcome):
            return output
        try:
            tp = measured[kind] = perf_probes.parse_iperf3(output)
        except perf_probes.PerfError as exc:
            return Outcome(False, str(exc))
        data: dict[str, Any] = {
            "transport": f"TCP {kind} to {kind}",
            "average_gbps": round(tp.gbps, 3),
            "streams": tp.streams,
            "measured_seconds": round(tp.seconds, 2),
            "retransmits": tp.retransmits,
        }
        summary = f"{tp.gbps:.2f} Gb/s with {tp.streams} streams over {tp.seconds:.0f}s"
        if kind == "host":
            return Outcome(True, f"host to host: {summary}", data=data)
        host = measured["host"].gbps
        need, ratio = host * (1 - tolerance), tp.gbps / host if host else 0.0
        data |= {"host_gbps": round(host, 3), "ratio": round(ratio, 3), "min_gbps": round(need, 3)}
        data["tolerance"] = tolerance
        verdict = f"pod to pod: {summary}, {ratio:.0%} of the host's {host:.2f} Gb/s (needs {1 - tolerance:.0%})"
        return Outcome(tp.gbps >= need, verdict, data=data)

    for kind in ("host", "pod"):
        yield _measured(kind, "throughput", paths, measure)


def _measured(kind: str, figure: str, paths: dict[str, Path], measure: Callable[[str], Outcome]) -> Action:
    def run() -> Outcome:
        with MEASURING:
            return measure(kind)

    path = paths[kind]
    return Action(f"{figure} {kind} to {kind}", figure, path.client, path.server, run)


def latency(ctx: RunContext) -> Iterator[Action]:
    paths = _paths("latency")
    yield start_pods(ctx, "latency", paths, TOOLS["latency"])
    seconds, tolerance = ctx.params.perf_seconds, ctx.params.perf_latency_tolerance
    measured: dict[str, perf_probes.Latency] = {}

    def measure(kind: str) -> Outcome:
        path, port = paths[kind], server_port(ctx.run_id, "latency", kind)
        server = perf_probes.sockperf_server_command(path.ip, port, seconds + 30)
        client = perf_probes.sockperf_client_command(path.ip, port, seconds)
        output = _exchange(ctx, path, port, server, client, seconds + 30)
        if isinstance(output, Outcome):
            return output
        try:
            lat = measured[kind] = perf_probes.parse_sockperf(output)
        except perf_probes.PerfError as exc:
            return Outcome(False, str(exc))
        data: dict[str, Any] = {
            "transport": f"TCP {kind} to {kind}",
            "p50_us": lat.p50_us,
            "p90_us": lat.p90_us,
            "p99_us": lat.p99_us,
            "avg_us": lat.avg_us,
            "observations": lat.observations,
        }
        summary = f"p50 {lat.p50_us:.1f} us, p90 {lat.p90_us:.1f} us, p99 {lat.p99_us:.1f} us (half round trips)"
        if kind == "host":
            return Outcome(True, f"host to host: {summary}", data=data)
        host = measured["host"]
        limit = host.p50_us * (1 + tolerance)
        data |= {f"host_{p}_us": getattr(host, f"{p}_us") for p in ("p50", "p90", "p99")}
        data |= {"ratio_p50": round(lat.p50_us / host.p50_us, 3), "max_p50_us": round(limit, 3), "tolerance": tolerance}
        verdict = f"pod to pod: {summary}; p50 is {lat.p50_us / host.p50_us:.2f}x the host's {host.p50_us:.1f} us"
        return Outcome(lat.p50_us <= limit, f"{verdict} (at most {1 + tolerance:.2f}x)", data=data)

    for kind in ("host", "pod"):
        yield _measured(kind, "latency", paths, measure)


def _test(name: str, description: str, actions: Callable[[RunContext], Iterator[Action]]) -> Test:
    """A perf test: its own pods on two nodes, in order; privileged for the hostNetwork pods."""
    return Test(
        SUITE,
        name,
        description,
        (Scenario(name, actions),),
        labels=("perf", "cross-node"),
        requires_nodes=2,
        sequential=True,
        pod_security="privileged",
        objects=partial(objects, name),
    )


TESTS = [
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

"""RDMA: the device is in the pod that requests it (and not in one that does not, in exclusive modes), and
bandwidth between two nodes over the underlay: perftest RC with the RoCEv2 GID (shared, sriov), SRD on EFA."""

from __future__ import annotations

import shlex
import time
import zlib
from functools import partial
from typing import TYPE_CHECKING, Any

from spider_validate import manifests, rdma_fabric, rdma_probes
from spider_validate.context import PodInfo, RunContext
from spider_validate.discovery import EFA_RESOURCE, RESOURCES, SRIOV_DEFAULT
from spider_validate.model import Outcome, Test

if TYPE_CHECKING:
    from spider_validate.runner import Steps

SUITE = "rdma"
FRACTION = {"efa": 0.8, "sriov": 0.8, "shared": 0.5, "softroce": 0.05}  # of the line rate; rxe is CPU-bound


def rdma_pod(ctx: RunContext, name: str, node: str, mode: str, resource: str | None) -> dict[str, Any]:
    """A pod with the RDMA tools; with `resource` it requests one device, IPC_LOCK and (EFA) hugepages."""
    assert ctx.network is not None
    pod = manifests.pod(
        name, ctx.namespace, ctx.run_id, "rdma", node, ctx.params.image("rdma"), ctx.network, ctx.params
    )
    container = pod["spec"]["containers"][0]
    container["securityContext"]["capabilities"]["add"] = ["IPC_LOCK"] if resource else []
    if resource:
        limits = {resource: "1", "cpu": "2", "memory": "1Gi"}
        if mode == "efa":
            limits["hugepages-2Mi"] = "512Mi"
            container["volumeMounts"] = [{"name": "hugepages", "mountPath": "/dev/hugepages"}]
            pod["spec"]["volumes"] = [{"name": "hugepages", "emptyDir": {"medium": "HugePages"}}]
        container["resources"] = {"requests": dict(limits), "limits": limits}
    return pod


def _exec(ctx: RunContext, pod: str, script: str, timeout: float) -> tuple[int | None, str, str]:
    r = ctx.cluster.exec(ctx.namespace, pod, ["sh", "-c", script], timeout=timeout)
    return r.exit_code, r.stdout, r.stderr


def _start(ctx: RunContext, t: Steps, specs: list[dict[str, Any]]) -> dict[str, PodInfo]:
    """Create the test's RDMA pods and wait for them (the run's namespace takes them away)."""

    def run() -> tuple[dict[str, PodInfo], Outcome]:
        pods = ctx.start_pods(specs)
        return pods, Outcome(True, ", ".join(f"{p.name} on {p.node} ({p.ip})" for p in pods.values()))

    return t.step(f"start {len(specs)} RDMA pod(s)", run, destination="pods")


def device(ctx: RunContext, t: Steps) -> None:
    mode, resource = ctx.facts.rdma_mode, ctx.facts.rdma_resource
    node = ctx.nodes[0]
    exclusive = mode in {"efa", "sriov"}
    specs = [rdma_pod(ctx, "rdma-with", node, mode, resource)]
    if exclusive:
        specs.append(rdma_pod(ctx, "rdma-without", node, mode, None))
    _start(ctx, t, specs)

    def sees(pod: str, want: bool) -> Outcome:
        code, out, err = _exec(ctx, pod, "ibv_devices", 30)
        return device_outcome(pod, resource, want, code, out + err)

    t.step("device in the pod that requests it", lambda: sees("rdma-with", True), "rdma", "rdma-with", resource)
    if exclusive:
        t.step("no device without a request", lambda: sees("rdma-without", False), "rdma", "rdma-without", "-")


def device_outcome(pod: str, resource: str, want: bool, code: int | None, output: str) -> Outcome:
    """Whether `ibv_devices` in `pod` shows a device exactly when the pod requested one."""
    if code is None:
        return Outcome(False, "the exit code of ibv_devices was lost", transient=True)
    found = rdma_probes.parse_devices(output)
    if want:
        if found:
            return Outcome(True, f"{pod} sees {', '.join(found)}")
        return Outcome(False, f"{pod} requests {resource} but sees no RDMA device ({output.strip()[:120]})")
    if found:
        return Outcome(False, f"{pod} requests no RDMA device but sees {', '.join(found)}: isolation is broken")
    return Outcome(True, f"{pod} sees none (isolated)")


def required_gbps(rate: float, mode: str) -> tuple[float, str]:
    """The bandwidth to reach: a fraction of the line rate, small for Soft-RoCE (rxe is CPU-bound)."""
    fraction = FRACTION[mode]
    return rate * fraction, f"{fraction:g} x {rate:g} Gb/s"


def judge(bw: rdma_probes.Bandwidth, threshold: float, how: str) -> Outcome:
    data = {
        "peak_gbps": round(bw.peak_gbps, 2),
        "average_gbps": round(bw.average_gbps, 2),
        "min_gbps": round(threshold, 3),
        "unit": bw.unit,
        "bytes": bw.size_bytes,
    }
    summary = f"average {bw.average_gbps:.2f} Gb/s, peak {bw.peak_gbps:.2f} Gb/s ({bw.size_bytes} B messages)"
    return Outcome(bw.average_gbps >= threshold, f"{summary}, needs {threshold:.2f} ({how})", data=data)


def _device_of(ctx: RunContext, mode: str, pod: str) -> tuple[tuple[str, int | None], Outcome] | Outcome:
    """The pod's RDMA device, and on RoCE its v2 GID index with an IPv4 address (EFA has none)."""
    if mode == "efa":
        _code, out, _ = _exec(ctx, pod, "ibv_devices", 30)
        devices = [d for d in rdma_probes.parse_devices(out) if d.startswith("rdmap")]
        if not devices:
            return Outcome(False, f"{pod}: no EFA device")
        return (devices[0], None), Outcome(True, f"{pod}: EFA device {devices[0]}")
    code, out, err = _exec(ctx, pod, rdma_probes.GID_SCRIPT, 30)
    if code != 0:
        return Outcome(False, f"{pod}: no RoCE v2 GID with an IPv4 address ({(err or out).strip()[:120]})")
    dev, index = rdma_probes.parse_gid(out)
    return (dev, index), Outcome(True, f"{pod}: {dev}, RoCE v2 GID index {index}")


def bandwidth(ctx: RunContext, t: Steps) -> None:
    mode, resource = ctx.facts.rdma_mode, ctx.facts.rdma_resource
    min_gbps = ctx.params.rdma_min_gbps
    rate, source = ctx.facts.line_rate or (0.0, "")  # none with --rdma-min-gbps
    server, client = "rdma-server", "rdma-client"
    pods = _start(
        ctx,
        t,
        [rdma_pod(ctx, server, ctx.nodes[0], mode, resource), rdma_pod(ctx, client, ctx.nodes[1], mode, resource)],
    )
    port = 20000 + zlib.crc32(ctx.run_id.encode()) % 20000  # unique to the run
    found = {
        pod: t.step(f"RDMA device of {pod}", partial(_device_of, ctx, mode, pod), "rdma", pod, "gid")
        for pod in (server, client)
    }
    devices = {pod: dev for pod, (dev, _gid) in found.items()}
    before = t.step("RDMA counters before", partial(rdma_fabric.read, ctx, devices), "rdma", "pods", "counters")

    seconds = ctx.params.rdma_seconds
    deadline = seconds + 30

    def start_server() -> Outcome:
        dev, gid = found[server]
        cmd = shlex.join(["timeout", str(deadline), *rdma_probes.write_bw_command(mode, dev, gid, port, seconds)])
        _code, _, err = _exec(ctx, server, f"nohup {cmd} >/tmp/sv-server.log 2>&1 &", 15)
        for _ in range(50):  # the client starts only once the server listens on its port
            _, out, _ = _exec(ctx, server, f"ss -ltnH 'sport = :{port}' || netstat -ltn", 10)
            if f":{port}" in out:
                return Outcome(True, f"ib_write_bw listens on {pods[server].ip}:{port} (killed after {deadline}s)")
            time.sleep(0.2)
        return Outcome(False, f"server did not listen on {port}: {err.strip()[:120]}")

    t.step("start the server", start_server, "rdma", server, f"port {port}")

    def measure() -> tuple[rdma_probes.Bandwidth, Outcome] | Outcome:
        dev, gid = found[client]
        if min_gbps is not None:
            threshold, how = min_gbps, "--rdma-min-gbps"
        else:
            threshold, how = required_gbps(rate, mode)
            how = f"{how}, {source}"
        cmd = ["timeout", str(deadline), *rdma_probes.write_bw_command(mode, dev, gid, port, seconds, pods[server].ip)]
        _code, out, err = _exec(ctx, client, shlex.join(cmd), deadline + 10)
        try:
            bw = rdma_probes.parse_perftest(out + err)
        except rdma_probes.PerftestError as exc:
            return Outcome(False, f"ib_write_bw failed: {exc}")
        return bw, judge(bw, threshold, how)

    measured = t.step(f"bandwidth {client} -> {server}", measure, "rdma", client, server)
    proof = partial(rdma_fabric.proof, ctx, client, server, devices, before, measured, seconds)
    t.step("traffic crossed the RDMA devices", proof, "rdma", client, server)

    def stop() -> Outcome:
        _exec(ctx, server, "pkill ib_write_bw || true", 10)
        return Outcome(True, "server stopped")

    t.step("stop the server", stop, "rdma", server, "-")
    if mode == "efa":
        pingpong = partial(rdma_fabric.fi_pingpong, ctx, server, client, pods[server].ip, port + 1)
        t.step(f"fi_pingpong {client} -> {server}", pingpong, "rdma", client, server)


def objects(ctx: RunContext) -> list[dict[str, Any]]:
    """The pods an RDMA test creates (EFA's, the fullest: a device, IPC_LOCK, hugepages), for `manifests`."""
    node = ctx.nodes[0]
    mode, resource = (ctx.params.rdma_mode, "") if ctx.params.rdma_mode != "auto" else ("efa", EFA_RESOURCE)
    resource = resource or RESOURCES.get(mode, SRIOV_DEFAULT)
    return [rdma_pod(ctx, "rdma-with", node, mode, resource), rdma_pod(ctx, "rdma-without", node, mode, None)]


TESTS = [
    Test(
        SUITE,
        "device",
        "a pod that requests the RDMA resource sees its device; without, none (exclusive modes)",
        steps=device,
        labels=("rdma",),
        requires_nodes=1,
        requires=("rdma",),
        pod_security="privileged",  # IPC_LOCK, which perftest needs to pin its buffers
        objects=objects,
    ),
    Test(
        SUITE,
        "bandwidth",
        "ib_write_bw between pods on two nodes over the underlay reaches the minimum",
        steps=bandwidth,
        labels=("rdma", "cross-node"),
        requires_nodes=2,
        requires=("rdma", "line-rate"),
        pod_security="privileged",
        objects=objects,
    ),
]

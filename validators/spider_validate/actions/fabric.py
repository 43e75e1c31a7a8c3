"""The rdma/bandwidth test's proof of fabric: the devices' traffic counters on both nodes before and after the
perftest run, which must account for the bytes it reports; on EFA, a latency figure from libfabric's fi_pingpong."""

from __future__ import annotations

import shlex
import time

from spider_validate.engine.context import RunContext
from spider_validate.engine.model import Outcome
from spider_validate.probes import counters as rdma_counters
from spider_validate.probes import perf as perf_probes
from spider_validate.probes.rdma import Bandwidth

Readings = dict[str, dict[str, int]]  # pod -> counters


def _read(ctx: RunContext, pod: str, device: str) -> dict[str, int] | str:
    r = ctx.cluster.exec(ctx.namespace, pod, rdma_counters.command(device), timeout=30)
    counters = rdma_counters.parse(r.stdout)
    return counters if r.exit_code == 0 and counters else f"{pod}: no counters for {device} ({r.stderr.strip()[:120]})"


def read(ctx: RunContext, devices: dict[str, str]) -> tuple[Readings, Outcome] | Outcome:
    """Every counter of each pod's device (`devices`: pod -> device), read before the test."""
    readings: Readings = {}
    for pod, device in devices.items():
        counters = _read(ctx, pod, device)
        if isinstance(counters, str):
            return Outcome(False, counters)
        readings[pod] = counters
    return readings, Outcome(True, ", ".join(f"{pod}: {len(c)} counters" for pod, c in readings.items()))


def proof(
    ctx: RunContext,
    sender: str,
    receiver: str,
    devices: dict[str, str],
    before: Readings,
    bw: Bandwidth,
    seconds: int,
    verb: str = "",
) -> Outcome:
    """The data sender's device sent and the receiver's received what perftest reports, counted by the verb's own
    counters where the driver has them (a fallback to TCP moves none)."""
    after: Readings = {}
    for pod in (sender, receiver):
        counters = _read(ctx, pod, devices[pod])
        if isinstance(counters, str):
            return Outcome(False, counters)
        after[pod] = counters
    sent = rdma_counters.delta(before[sender], after[sender], verb)
    received = rdma_counters.delta(before[receiver], after[receiver], verb)
    if sent is None or received is None:
        known = ", ".join(sorted(after[sender]))[:200]
        return Outcome(False, f"no traffic counter this driver is known to have ({known})")
    tool_bytes = bw.average_gbps * 1e9 / 8 * seconds
    ok, why = rdma_counters.crossed(tool_bytes, sent, received)
    data = {"tool_bytes": int(tool_bytes), "sent": sent.sent, "received": received.received, "unit": sent.unit}
    return Outcome(ok, why, data=data | {"counters": sent.source})


def fi_pingpong(ctx: RunContext, server: str, client: str, server_ip: str, port: int) -> Outcome:
    """Half round-trip latency over EFA's libfabric provider (what NCCL's aws-ofi-nccl plugin uses)."""
    iterations, size, deadline = 1000, 64, 60
    exec_ = ctx.cluster.exec
    if exec_(ctx.namespace, client, ["sh", "-c", "command -v fi_pingpong"], timeout=10).exit_code != 0:
        return Outcome(True, f"no fi_pingpong in {ctx.params.image('rdma')}: no libfabric latency figure")
    serve = shlex.join(["timeout", str(deadline), *perf_probes.fi_pingpong_command("efa", iterations, size, port)])
    exec_(ctx.namespace, server, ["sh", "-c", f"nohup {serve} >/dev/null 2>&1 &"], timeout=15)
    command = ["timeout", str(deadline), *perf_probes.fi_pingpong_command("efa", iterations, size, port, server_ip)]
    output = ""
    for _ in range(25):  # until the server's control port listens
        r = exec_(ctx.namespace, client, command, timeout=deadline + 10)
        output = r.stdout + r.stderr
        if "Connection refused" not in output:
            break
        time.sleep(0.2)
    try:
        usec = perf_probes.parse_fi_pingpong(output)
    except perf_probes.PerfError as exc:
        return Outcome(False, str(exc))
    data = {"latency_us": usec, "bytes": size, "provider": "efa"}
    return Outcome(True, f"{usec:.2f} us per transfer ({size} B messages, half a round trip)", data=data)

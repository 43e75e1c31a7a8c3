"""TCP throughput (iperf3), request/response latency (sockperf) and libfabric latency (fi_pingpong): the commands
run in pods and the parsers of their real output (tests/fixtures/perf/ holds it, with the commands and versions).

sockperf rather than qperf or iperf3: `sockperf ping-pong` prints latency percentiles (p50, p90, p99 and more) in
its summary without --full-log; qperf's tcp_lat prints only a mean, iperf3 measures no latency.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from spider_validate.probes.output import reads

ANSI = re.compile(r"\x1b\[[0-9;]*m")  # sockperf colours its summary even when stdout is not a terminal


class PerfError(Exception):
    """The tool ran but measured nothing; the message is its own error."""


@dataclass(frozen=True)
class Throughput:
    gbps: float  # what the receiver got (iperf3's end.sum_received), all streams together
    streams: int
    seconds: float
    retransmits: int | None


@dataclass(frozen=True)
class Latency:
    """sockperf's figures in microseconds: half a round trip ("the average latency for a given one-way path between
    the two machines is the average RTT divided by two", sockperf(1) of Debian's sockperf 3.7, DESCRIPTION)."""

    p50_us: float
    p90_us: float
    p99_us: float
    avg_us: float
    observations: int


def iperf3_server_command(port: int, seconds: int) -> list[str]:
    """One client, then exit (-1); bounded by `timeout` in case no client comes."""
    return ["timeout", str(seconds), "iperf3", "-s", "-1", "-p", str(port)]


def iperf3_client_command(ip: str, port: int, streams: int, seconds: int) -> list[str]:
    """-J: one JSON document, also on error (iperf3's `error` key); -P parallel streams, -t seconds."""
    return ["iperf3", "-c", ip, "-p", str(port), "-P", str(streams), "-t", str(seconds), "-J"]


@reads("iperf3")
def parse_iperf3(output: str) -> Throughput:
    """iperf3 -J's summary (end.sum_received: what crossed to the server); PerfError on its error or no JSON."""
    start = output.find("{")
    try:
        doc = json.loads(output[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise PerfError(f"iperf3 printed no JSON: {output.strip()[:200]}")
    if doc.get("error"):
        raise PerfError(f"iperf3: {doc['error']}")
    end = doc.get("end", {})
    received, sent = end.get("sum_received"), end.get("sum_sent", {})
    if not received:
        raise PerfError("iperf3's JSON has no end.sum_received")
    return Throughput(
        received["bits_per_second"] / 1e9,
        len(end.get("streams", [])),
        float(received.get("seconds", 0.0)),
        sent.get("retransmits"),
    )


def sockperf_server_command(ip: str, port: int, seconds: int) -> list[str]:
    return ["timeout", str(seconds), "sockperf", "server", "--tcp", "-i", ip, "-p", str(port)]


def sockperf_client_command(ip: str, port: int, seconds: int) -> list[str]:
    return ["sockperf", "ping-pong", "--tcp", "-i", ip, "-p", str(port), "-t", str(seconds)]


_PERCENTILE = re.compile(r"---> percentile ([\d.]+) =\s*([\d.]+)")
_AVG = re.compile(r"avg-latency=([\d.]+)")
_OBSERVATIONS = re.compile(r"Total (\d+) observations")


@reads("sockperf")
def parse_sockperf(output: str) -> Latency:
    """The percentiles of `sockperf ping-pong`'s summary; PerfError with its ERROR line when it measured nothing."""
    text = ANSI.sub("", output)
    errors = [line.split("ERROR:", 1)[1].strip() for line in text.splitlines() if "ERROR:" in line]
    percentiles = {float(p): float(v) for p, v in _PERCENTILE.findall(text)}
    avg, observations = _AVG.search(text), _OBSERVATIONS.search(text)
    if errors or not avg or not observations or not {50.0, 90.0, 99.0} <= percentiles.keys():
        raise PerfError(f"sockperf: {'; '.join(errors) or 'no latency summary in the output'}")
    return Latency(percentiles[50.0], percentiles[90.0], percentiles[99.0], float(avg.group(1)), int(observations[1]))


def fi_pingpong_command(
    provider: str, iterations: int, size: int, port: int, server_ip: str | None = None
) -> list[str]:
    """libfabric's util/pingpong.c over a reliable-datagram endpoint (the EFA provider offers FI_EP_RDM)."""
    cmd = ["fi_pingpong", "-p", provider, "-e", "rdm", "-I", str(iterations), "-S", str(size)]
    return [*cmd, "-P", str(port), server_ip] if server_ip else [*cmd, "-B", str(port)]


_FI_HEADER = re.compile(r"bytes\s+#sent\s+#ack\s+total\s+time\s+MB/sec\s+usec/xfer")


@reads("fi_pingpong")
def parse_fi_pingpong(output: str) -> float:
    """usec/xfer of fi_pingpong's last row. libfabric's show_perf divides the time by iterations and by the
    transfers per iteration (2 for a ping and its pong), so this is half a round trip, like sockperf's figure."""
    header = _FI_HEADER.search(output)
    if not header:
        errors = [line.strip() for line in output.splitlines() if "error" in line.lower()]
        raise PerfError(f"fi_pingpong: {'; '.join(errors) or 'no result table in the output'}")
    rows = [line.split() for line in output[header.end() :].splitlines() if line.strip()]
    rows = [r for r in rows if len(r) >= 8 and r[0][0].isdigit()]
    if not rows:
        raise PerfError("fi_pingpong: the result table has no row")
    return float(rows[-1][6])

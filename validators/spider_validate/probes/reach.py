"""Commands run in pods and the parsers of their output (iputils and busybox ping, curl -w)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from spider_validate.probes.output import reads

CURL_MARK = "__curl__"
CURL_ERRORS = {
    6: "could not resolve host",
    7: "connection refused or no route",
    28: "timed out",
    52: "empty reply",
    56: "connection reset",
}


@dataclass(frozen=True)
class PingStats:
    transmitted: int
    received: int
    loss_percent: float
    rtt_avg_ms: float | None
    errors: int = 0


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: str
    seconds: float


def ping_command(ip: str, count: int = 3, timeout_s: int = 2) -> list[str]:
    """iputils and busybox both take -c and -W; -i 0.2 is the shortest interval iputils allows without root."""
    return ["ping", "-c", str(count), "-i", "0.2", "-W", str(timeout_s), ip]


def http_command(ip: str, port: int, path: str = "/hostname", timeout_s: int = 5) -> list[str]:
    host = f"[{ip}]" if ":" in ip else ip
    return [
        "curl",
        "-sS",
        "--max-time",
        str(timeout_s),
        "-w",
        f"\\n{CURL_MARK} %{{http_code}} %{{time_total}}\\n",
        f"http://{host}:{port}{path}",
    ]


_TX = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received(?:, \+(\d+) errors)?")
_LOSS = re.compile(r"([\d.]+)% packet loss")
_RTT = re.compile(r"(?:rtt|round-trip) min/avg/max(?:/mdev)? = [\d.]+/([\d.]+)/")


@reads("ping")
def parse_ping(output: str) -> PingStats | None:
    """Statistics of iputils or busybox ping; None when the output has none (ping did not run)."""
    tx, loss = _TX.search(output), _LOSS.search(output)
    if not tx or not loss:
        return None
    rtt = _RTT.search(output)
    return PingStats(
        int(tx.group(1)),
        int(tx.group(2)),
        float(loss.group(1)),
        float(rtt.group(1)) if rtt else None,
        int(tx.group(3) or 0),
    )


@reads("curl")
def parse_curl(stdout: str) -> HttpReply | None:
    """The reply of http_command's curl; None when curl printed no write-out (it failed before a reply)."""
    head, sep, tail = stdout.rpartition(f"\n{CURL_MARK} ")
    if not sep:
        if stdout.startswith(f"{CURL_MARK} "):
            head, tail = "", stdout[len(CURL_MARK) + 1 :]
        else:
            return None
    code, _, seconds = tail.strip().partition(" ")
    if not code.isdigit() or int(code) == 0:
        return None
    return HttpReply(int(code), head, float(seconds or 0))


def curl_stderr(merged: str) -> str:
    """curl's own messages in its output merged with its stderr (a batch's part): all before the write-out."""
    head, sep, _ = merged.rpartition(f"\n{CURL_MARK} ")
    return head if sep else merged


def curl_error(exit_code: int | None, stderr: str) -> str:
    message = CURL_ERRORS.get(exit_code or -1, f"curl exit code {exit_code}")
    line = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return f"{message} ({line})" if line else message

"""Commands run in pods and the parsers of their output (iputils and busybox ping, curl -w)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from spider_validate.probes.output import reads

PING_COUNT = 3  # probes a ping action judges
PING_INTERVAL = 0.2  # seconds between probes: the shortest interval iputils allows without root
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
    replied: frozenset[int] = field(default_factory=frozenset)  # the probes answered, numbered from 0

    def unanswered(self, count: int = PING_COUNT) -> int:
        """How many of the first `count` probes got no reply. Not the summary's loss: with -w, iputils goes on
        sending until `count` replies have come, and its summary counts the probes still in flight at its exit."""
        return count - len({n for n in self.replied if n < count})


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: str
    seconds: float


def ping_command(ip: str, count: int = PING_COUNT, timeout_s: int = 2) -> list[str]:
    """`count` probes, each given `timeout_s` seconds for its reply, and ping ends by a deadline of that plus the
    time to send them (-w, whole seconds in both pings). Rules read in iputils 20221126 and busybox 1.35:

    - iputils with -c alone: once a reply has come, it waits only max(2 x max RTT, interval) after its last probe
      (ping/ping_common.c:255-279 __schedule_exit; -W counts only while no reply has come): a reply a busy node
      sent late was counted lost.
    - iputils with -c and -w: no such wait (ping/ping.h:329); it sends on past `count` probes (ping_common.c:318)
      until `count` replies (or errors) have come (:587), an error comes (:589) or the deadline passes, and exits 1
      when fewer than `count` replies came (:935), 0 otherwise.
    - busybox ping (an image without iputils; the client image, netshoot, has iputils) stops at `count` probes and
      reads -w only when it sends, then waits -W seconds while no reply has come, else max(1 s, about 2 x max RTT)
      (networking/ping.c:532-557 sendping_tail): a reply later than that still counts as lost there. Its exit code
      follows the same rule (:509)."""
    deadline = timeout_s + math.ceil(PING_INTERVAL * (count - 1))
    return ["ping", "-c", str(count), "-i", str(PING_INTERVAL), "-w", str(deadline), "-W", str(timeout_s), ip]


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
# a reply's line: iputils numbers its probes from 1 (`icmp_seq=1`, ping/ping.c ping4_send_probe: ntransmitted + 1),
# busybox from 0 (`seq=0`, networking/ping.c sendping4: ntransmitted)
_REPLY = re.compile(r"^\d+ bytes from .*? (icmp_)?seq=(\d+) ", re.MULTILINE)


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
        frozenset(int(seq) - bool(iputils) for iputils, seq in _REPLY.findall(output)),
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

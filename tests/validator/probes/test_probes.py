"""Probe parsers on real output: iputils and busybox ping, curl -w, produced live between two namespaces."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from spider_validate.actions import reach as actions
from spider_validate.cluster.api import unwrap_output, wrap_command
from spider_validate.probes import reach as probes

from tests.lab import netns
from tests.lab.cluster import SERVER

A_IP, B_IP, ABSENT_IP = "198.18.1.1", "198.18.1.2", "198.18.1.99"  # only inside the pair's namespaces


@dataclass
class Pair:
    a: str
    b: str

    def run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return netns.sh(*cmd, ns=self.a, check=False, timeout=30)

    def drop_in_b(self, rule: str) -> None:
        netns.sh(
            "nft",
            "-f",
            "-",
            ns=self.b,
            stdin=f"flush ruleset\ntable ip f {{\n chain in {{ type filter hook input priority 0;\n  {rule}\n }}\n}}\n",
        )


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    prefix = f"{netns.PREFIX}{secrets.token_hex(2)}"
    a, b = f"{prefix}-pa", f"{prefix}-pb"
    owner = netns.Owner(prefix)
    try:
        netns.add_netns(a)
        netns.add_netns(b)
        netns.sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b, ns=a)
        for ns, ip in ((a, A_IP), (b, B_IP)):
            netns.sh("ip", "addr", "add", f"{ip}/24", "dev", "eth0", ns=ns)
            netns.sh("ip", "link", "set", "eth0", "up", ns=ns)
        identity = tmp_path_factory.mktemp("srv") / "identity"
        identity.write_text("server-b")
        server = [sys.executable, str(SERVER), str(identity), "netexec", "--http-port=8080", "--udp-port=-1"]
        assert netns.wait_listening(b, 8080, netns.spawn(b, server, identity.with_suffix(".log")))
        yield Pair(a, b)
    finally:
        netns.sweep(prefix)
        owner.release()


@pytest.fixture(autouse=True)
def clear_faults(pair: Pair) -> None:
    netns.sh("nft", "flush", "ruleset", ns=pair.b)


@pytest.mark.parametrize("ping", ["ping", "busybox ping"])
def test_ping_success(pair: Pair, ping: str) -> None:
    proc = pair.run(*ping.split(), *probes.ping_command(B_IP)[1:])
    stats = probes.parse_ping(proc.stdout)
    # not (3, 3, 0 %) from the summary: with -w, iputils sends a 4th probe if the 3rd reply is read after its time
    assert stats is not None and proc.returncode == 0 and stats.unanswered(3) == 0, proc.stdout
    assert stats.rtt_avg_ms is not None and stats.rtt_avg_ms > 0


@pytest.fixture
def late_from_third(pair: Pair, tmp_path: Path) -> Iterator[None]:
    """B answers pings through late_echo.py: the replies from the third probe on (iputils numbers from 1) 0.8 s late."""
    log = tmp_path / "late_echo.log"
    netns.sh("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1", ns=pair.b)
    responder = netns.spawn(pair.b, [sys.executable, str(Path(__file__).with_name("late_echo.py")), "3", "0.8"], log)
    try:
        deadline = time.monotonic() + 30
        while "ready" not in log.read_text() and responder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "ready" in log.read_text(), log.read_text()
        yield
    finally:
        responder.kill()
        responder.wait()
        netns.sh("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=0", ns=pair.b)


@pytest.mark.usefixtures("late_from_third")
def test_iputils_ping_counts_a_reply_that_comes_late_but_within_the_timeout(pair: Pair) -> None:
    """A busy node: the replies from the third on come 0.8 s late, inside the probe's timeout (2 s), so none is lost.
    With -c alone iputils waits only max(2 x max RTT, interval) after its last probe once a reply has come
    (ping/ping_common.c __schedule_exit, iputils 20221126 lines 255-279): 0.2 s here, and the third reply was lost."""
    proc = pair.run(*probes.ping_command(B_IP, count=3, timeout_s=2))
    assert proc.returncode == 0 and all(f" icmp_seq={n} " in proc.stdout for n in (1, 2, 3)), proc.stdout
    outcome = actions._judge_ping(proc.returncode, proc.stdout, proc.stderr)
    assert outcome.ok, outcome.detail


def test_iputils_ping_loss_with_decimals_is_a_percentage(pair: Pair) -> None:
    """One reply of three lost: iputils prints `33.3333% packet loss` (ping/ping_common.c, finish:
    `", %g%% packet loss"`), read as 33.3 %, not 3333 % (the digits after the point)."""
    pair.drop_in_b("icmp type echo-request numgen inc mod 3 0 drop")
    out = pair.run("ping", "-c", "3", "-i", "0.2", "-W", "2", B_IP).stdout  # no -w: it would send on (see below)
    assert "33.3333% packet loss" in out, out
    stats = probes.parse_ping(out)
    assert stats is not None and (stats.transmitted, stats.received) == (3, 2)
    assert stats.loss_percent == pytest.approx(100 / 3, abs=0.001)


@pytest.mark.parametrize("ping", ["ping", "busybox ping"])
def test_ping_partial_loss_is_of_the_probes_not_of_the_summary(pair: Pair, ping: str) -> None:
    """Every other request dropped (the first too). iputils with -w sends on until 3 replies have come (6 probes)
    and exits 0, its summary saying 50 % loss; busybox stops at 3 probes (1 reply) and exits 1. Of the 3 probes the
    action judges, the 1st and 3rd went unanswered in both."""
    pair.drop_in_b("icmp type echo-request numgen inc mod 2 0 drop")
    proc = pair.run(*ping.split(), *probes.ping_command(B_IP)[1:])
    stats = probes.parse_ping(proc.stdout)
    assert stats is not None and stats.unanswered(3) == 2, proc.stdout
    if ping == "ping":
        assert (proc.returncode, stats.received) == (0, 3) and stats.transmitted >= 6  # more if ping ran late
    else:
        assert (proc.returncode, stats.transmitted, stats.received) == (1, 3, 1)
    outcome = actions._judge_ping(proc.returncode, proc.stdout, proc.stderr)
    assert not outcome.ok and outcome.detail == "lossy path: 66.7% loss (1/3)"


@pytest.mark.parametrize("ping", ["ping", "busybox ping"])
def test_ping_timeout_everything_dropped(pair: Pair, ping: str) -> None:
    pair.drop_in_b("icmp type echo-request drop")
    proc = pair.run(*ping.split(), *probes.ping_command(B_IP, timeout_s=1)[1:])
    stats = probes.parse_ping(proc.stdout)
    assert proc.returncode != 0
    assert stats is not None and stats.received == 0 and stats.loss_percent == 100.0 and stats.rtt_avg_ms is None


@pytest.mark.parametrize("ping", ["ping", "busybox ping"])
def test_ping_unreachable_host(pair: Pair, ping: str) -> None:
    # ARP gives up after about 3 s: ping long enough for the kernel to report the host unreachable.
    proc = pair.run(*ping.split(), "-c", "5", "-W", "1", ABSENT_IP)
    stats = probes.parse_ping(proc.stdout)
    assert stats is not None and stats.received == 0 and stats.loss_percent == 100.0
    if ping == "ping":
        assert "Destination Host Unreachable" in proc.stdout and stats.errors > 0


def test_ping_that_did_not_run_has_no_stats(pair: Pair) -> None:
    proc = pair.run("ping", "-c", "1", "not-an-address.invalid")
    assert probes.parse_ping(proc.stdout + proc.stderr) is None


def test_curl_reply_and_identity(pair: Pair) -> None:
    proc = pair.run(*probes.http_command(B_IP, 8080))
    reply = probes.parse_curl(proc.stdout)
    assert proc.returncode == 0 and reply is not None
    assert (reply.status, reply.body) == (200, "server-b") and reply.seconds > 0


def test_curl_http_error_status(pair: Pair) -> None:
    reply = probes.parse_curl(pair.run(*probes.http_command(B_IP, 8080, path="/echo?code=404&msg=gone")).stdout)
    assert reply is not None and (reply.status, reply.body) == (404, "gone")


def test_curl_refused(pair: Pair) -> None:
    proc = pair.run(*probes.http_command(B_IP, 9))
    assert proc.returncode == 7 and probes.parse_curl(proc.stdout) is None
    assert probes.curl_error(proc.returncode, proc.stderr).startswith("connection refused")


def test_curl_timeout(pair: Pair) -> None:
    pair.drop_in_b("tcp dport 8080 drop")
    proc = pair.run(*probes.http_command(B_IP, 8080, timeout_s=1))
    assert proc.returncode == 28 and probes.parse_curl(proc.stdout) is None
    assert probes.curl_error(proc.returncode, proc.stderr).startswith("timed out")


@pytest.mark.parametrize("command", [["sh", "-c", "echo out; exit 3"], ["sh", "-c", "printf 'no newline'"], ["false"]])
def test_exit_code_survives_wrapping(pair: Pair, command: list[str]) -> None:
    direct = pair.run(*command)
    wrapped = pair.run(*wrap_command(command))
    code, stdout = unwrap_output(wrapped.stdout, None)  # as if the exec status were lost
    assert code == direct.returncode and stdout == direct.stdout


def test_lost_marker_falls_back_to_exec_status() -> None:
    assert unwrap_output("partial output", 0) == (0, "partial output")
    assert unwrap_output("partial output", None) == (None, "partial output")


def test_everything_was_created_in_the_pair_only(pair: Pair) -> None:
    """Network safety: the pair has no default route; only its own /24 is reachable."""
    routes = netns.sh("ip", "-4", "route", ns=pair.a).stdout
    assert "default" not in routes and routes.strip().startswith("198.18.1.0/24")
    assert Path(f"/var/run/netns/{pair.a}").exists()

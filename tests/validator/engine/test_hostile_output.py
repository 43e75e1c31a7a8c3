"""Hostile or broken output of a pod never ends a run: every parser turns what it cannot read into that action's
failure quoting the text, and a test that still raises is that test's error, not a traceback without a report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from spider_validate.actions import reach as actions
from spider_validate.cluster.api import ExecResult
from spider_validate.engine.context import PodInfo, RunContext
from spider_validate.engine.model import Action, Outcome, Status
from spider_validate.engine.params import Parameters
from spider_validate.engine.runner import run_test
from spider_validate.engine.steps import execute
from spider_validate.engine.test import Scenario, Test
from spider_validate.probes import counters as rdma_counters
from spider_validate.probes import perf as perf_probes
from spider_validate.probes import rdma as rdma_probes
from spider_validate.probes import reach as probes
from spider_validate.probes.output import UnreadableOutput

FIXTURES = Path(__file__).parents[2] / "fixtures"
PING = "PING 10.0.0.2\n3 packets transmitted, 3 received, {loss}% packet loss, time 401ms\n"  # iputils' summary


def fixture(name: str, real: str, hostile: str) -> str:
    """A real output of tests/fixtures/ with one figure made unreadable."""
    text = (FIXTURES / name).read_text()
    assert real in text
    return text.replace(real, hostile)


#: (parser, an output a broken or hostile pod can print): the tool's real output with one field made unreadable.
HOSTILE: list[tuple[Callable[[str], Any], str]] = [
    (probes.parse_ping, PING.format(loss="1.2.3")),
    (probes.parse_curl, "server-0\n__curl__ 200 1.2.3\n"),
    (perf_probes.parse_iperf3, fixture("perf/iperf3-P4.json", '"bits_per_second"', '"bits_per_sec"')),
    (perf_probes.parse_iperf3, '{"start": {}, "end": []}'),  # end is not an object
    (perf_probes.parse_sockperf, fixture("perf/sockperf-ping-pong.txt", "=   25.758", "=   25.7.58")),
    (perf_probes.parse_fi_pingpong, fixture("perf/fi_pingpong-tcp-client.txt", "4548.34", "4548.3.4")),
    (rdma_probes.parse_perftest, fixture("perftest/gb-sec.txt", "0.48", "0.4.8")),
    (rdma_probes.parse_gid_table, "rxe0 1 \u00b2 0000:0000:0000:0000:0000:ffff:0a00:0002 ens5 RoCE v2\n"),
    (rdma_probes.perftest_gids, " local address: LID 0000 QPN 0x0011\n GID: 0:0:0:0:0:0:0:0:0:0:255:255:10:0:0:999\n"),
    (rdma_counters.parse, "hw_counters/tx_bytes \u00b2\n"),  # str.isdigit() accepts a superscript two, int() does not
]


@pytest.mark.parametrize(("parse", "output"), HOSTILE, ids=[f"{p.__module__}.{p.__name__}" for p, _ in HOSTILE])
def test_every_parser_names_what_it_could_not_read(parse: Callable[[str], Any], output: str) -> None:
    with pytest.raises(UnreadableOutput) as err:
        parse(output)
    assert "could not read the output of" in str(err.value)
    assert repr(output)[1:-1][-40:] in str(err.value)  # the text itself, as it was printed


def test_a_long_unreadable_output_is_quoted_by_its_end() -> None:
    with pytest.raises(UnreadableOutput) as err:
        probes.parse_ping("x" * 100_000 + PING.format(loss="1.2.3"))
    assert len(str(err.value)) < 600 and "1.2.3% packet loss" in str(err.value)


class Printing:
    """A cluster whose pods print `stdout` for every command (as KubeCluster.exec hands it over)."""

    def __init__(self, stdout: str) -> None:
        self.stdout = stdout

    def exec(self, namespace: str, pod: str, command: list[str], timeout: float) -> ExecResult:
        return ExecResult(0, self.stdout, "")


def context(stdout: str) -> RunContext:
    return RunContext(Printing(stdout), Parameters(retry_delay=0.01), "run", "ns")  # type: ignore[arg-type]


POD = PodInfo("client-0", "client", "node-a", "10.0.0.1", "192.168.0.1")


@pytest.mark.parametrize(
    ("make", "stdout", "quoted"),
    [
        (lambda ctx: actions.ping(ctx, POD, "server-0", "10.0.0.2"), PING.format(loss="1.2.3"), "1.2.3% packet loss"),
        (lambda ctx: actions.http(ctx, POD, "server-0", "10.0.0.2", 8080), "a\n__curl__ 200 1.2.3\n", "200 1.2.3"),
    ],
    ids=["ping", "http"],
)
def test_an_unreadable_probe_is_that_actions_failure_with_its_command_and_output(
    make: Callable[[RunContext], Action], stdout: str, quoted: str
) -> None:
    result = execute(context(stdout), "scenario", make(context(stdout)))
    assert result.status is Status.FAIL and result.attempts == 1  # not transient: asking again reads the same
    assert "could not read the output of" in result.detail and quoted in result.detail
    assert result.data["exec"]["stdout"] == stdout and result.data["exec"]["command"].startswith("kubectl exec")


def test_an_unreadable_step_fails_that_step_and_the_test_goes_on_to_report() -> None:
    def steps(ctx: RunContext, t: Any) -> None:
        hostile = fixture("perf/sockperf-ping-pong.txt", "=   25.758", "=   25.7.58")
        t.step("measure", lambda: Outcome(True, f"{perf_probes.parse_sockperf(hostile)}"))

    result = run_test(context(""), Test("perf", "latency", "a test of steps", steps=steps))
    assert result.status is Status.FAIL
    assert "could not read the output of sockperf" in result.actions[0].detail


def test_a_test_that_raises_anything_else_is_that_tests_error_with_the_exception() -> None:
    def scenario(ctx: RunContext) -> list[Action]:
        return [Action("a", "api", "x", "y", lambda: Outcome(bool(1 / 0), "never"))]

    result = run_test(context(""), Test("suite", "broken", "a bug", (Scenario("s", scenario),)))
    assert result.status is Status.ERROR and "ZeroDivisionError" in result.reason

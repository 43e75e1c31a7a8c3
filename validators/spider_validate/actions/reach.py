"""Actions that run a probe in a pod: ping and HTTP, with reliable exit codes and honest failure details."""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from typing import Any

from spider_validate.cluster.api import ApiError
from spider_validate.engine.context import PodInfo, RunContext
from spider_validate.engine.model import Action, Outcome
from spider_validate.probes import reach as probes
from spider_validate.probes.output import UnreadableOutput

OUTPUT_LIMIT = 2000  # characters of a probe's stdout and stderr kept in the result (their ends)


class ExecTimedOut(Exception):
    """The probe's command had not ended when its exec timed out: the probe ends there, with that reason (not
    retried: a command that outlived its own timeouts would hang again)."""


def _exec(ctx: RunContext, pod: PodInfo, command: list[str], record: dict[str, Any]) -> tuple[int | None, str, str]:
    record["command"] = f"kubectl exec -n {ctx.namespace} {pod.name} -- {shlex.join(command)}"
    timeout = ctx.params.probe_timeout * 4 + 5
    result = ctx.cluster.exec(ctx.namespace, pod.name, command, timeout=timeout)
    record.update(
        exit_code=result.exit_code, stdout=result.stdout[-OUTPUT_LIMIT:], stderr=result.stderr[-OUTPUT_LIMIT:]
    )
    if result.timed_out:
        raise ExecTimedOut(f"{command[0]} did not finish within {timeout}s: its exec was ended at the timeout")
    return result.exit_code, result.stdout, result.stderr


def _recorded(run: Callable[[dict[str, Any]], Outcome]) -> Callable[[], Outcome]:
    """The probe's command and what it printed go into the outcome's data as `exec` (result format 2)."""

    def call() -> Outcome:
        record: dict[str, Any] = {}
        try:
            outcome = run(record)
        except (ExecTimedOut, UnreadableOutput) as exc:  # the action's failure, with its command and output
            outcome = Outcome(False, str(exc))
        return dataclasses.replace(outcome, data={**outcome.data, "exec": record}) if record else outcome

    return call


def ping(ctx: RunContext, src: PodInfo, dst_name: str, dst_ip: str, expect_success: bool = True) -> Action:
    def run(record: dict[str, Any]) -> Outcome:
        try:
            code, out, err = _exec(
                ctx, src, probes.ping_command(dst_ip, timeout_s=max(1, ctx.params.probe_timeout // 2)), record
            )
        except ApiError as exc:
            return Outcome(False, f"exec failed: {exc}", transient=exc.transient)
        if code is None:
            return Outcome(False, "the exit code of ping was lost", transient=True)
        stats = probes.parse_ping(out)
        if stats is None:
            return Outcome(False, f"ping did not run (exit {code}): {(err or out).strip()[:200]}")
        data = {"loss_percent": stats.loss_percent, "rtt_avg_ms": stats.rtt_avg_ms}
        if stats.received == stats.transmitted and code == 0:
            return Outcome(True, f"{stats.received}/{stats.transmitted} replies, avg {stats.rtt_avg_ms} ms", data=data)
        what = "unreachable" if stats.received == 0 else "lossy path"
        return Outcome(False, f"{what}: {stats.loss_percent:g}% loss ({stats.received}/{stats.transmitted})", data=data)

    return Action(f"ping {src.name} -> {dst_name}", "ping", src.name, dst_name, _recorded(run), expect_success)


def http(
    ctx: RunContext,
    src: PodInfo,
    dst_name: str,
    dst_ip: str,
    port: int,
    expect_body: set[str] | None = None,
    expect_success: bool = True,
) -> Action:
    """GET /hostname; success means status 200 and, when given, a body (the answering pod's name) in expect_body."""

    def run(record: dict[str, Any]) -> Outcome:
        try:
            code, out, err = _exec(
                ctx, src, probes.http_command(dst_ip, port, timeout_s=ctx.params.probe_timeout), record
            )
        except ApiError as exc:
            return Outcome(False, f"exec failed: {exc}", transient=exc.transient)
        if code is None:
            return Outcome(False, "the exit code of curl was lost", transient=True)
        reply = probes.parse_curl(out)
        if code != 0 or reply is None:
            return Outcome(False, probes.curl_error(code, err), transient=code in {28, 52, 56})
        body = reply.body.strip()
        data = {"status": reply.status, "body": body[:100], "seconds": reply.seconds}
        if reply.status != 200:
            return Outcome(False, f"HTTP {reply.status}", data=data)
        if expect_body is not None and body not in expect_body:
            wanted = next(iter(expect_body)) if len(expect_body) == 1 else f"one of {sorted(expect_body)}"
            return Outcome(False, f"answered as {body!r}, expected {wanted}", data=data)
        return Outcome(True, f"HTTP 200 from {body} in {reply.seconds * 1000:.0f} ms", data=data)

    return Action(f"http {src.name} -> {dst_name}", "http", src.name, dst_name, _recorded(run), expect_success)

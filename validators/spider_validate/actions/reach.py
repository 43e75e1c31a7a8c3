"""Actions that run a probe in a pod: ping and HTTP, with reliable exit codes and honest failure details."""

from __future__ import annotations

import dataclasses
import shlex
import threading
from collections.abc import Callable
from typing import Any, Literal

from spider_validate.cluster.api import ApiError
from spider_validate.engine.context import PodInfo, RunContext
from spider_validate.engine.model import Action, Outcome
from spider_validate.probes import batch
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


def _judge_ping(code: int | None, out: str, err: str) -> Outcome:
    """Success means a reply to each of the probe's PING_COUNT probes within its deadline (probes/reach.py,
    ping_command); the loss is of those probes, not ping's summary, which counts probes still in flight."""
    if code is None:
        return Outcome(False, "the exit code of ping was lost", transient=True)
    stats = probes.parse_ping(out)
    if stats is None:
        return Outcome(False, f"ping did not run (exit {code}): {(err or out).strip()[:200]}")
    count = probes.PING_COUNT
    answered = count - stats.unanswered(count)
    data = {"loss_percent": round(100 * (count - answered) / count, 1), "rtt_avg_ms": stats.rtt_avg_ms}
    if answered == count and code == 0:
        return Outcome(True, f"{answered}/{count} replies, avg {stats.rtt_avg_ms} ms", data=data)
    what = "unreachable" if stats.received == 0 else "lossy path"
    return Outcome(False, f"{what}: {data['loss_percent']:g}% loss ({answered}/{count})", data=data)


def _judge_http(code: int | None, out: str, err: str, expect_body: set[str] | None) -> Outcome:
    """Success means status 200 and, when given, a body (the answering pod's name) in expect_body."""
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


Judge = Callable[[int | None, str, str], Outcome]


def _single(ctx: RunContext, src: PodInfo, command: list[str], judge: Judge) -> Callable[[], Outcome]:
    def run(record: dict[str, Any]) -> Outcome:
        try:
            code, out, err = _exec(ctx, src, command, record)
        except ApiError as exc:
            return Outcome(False, f"exec failed: {exc}", transient=exc.transient)
        return judge(code, out, err)

    return _recorded(run)


def _ping_command(ctx: RunContext, ip: str) -> list[str]:
    return probes.ping_command(ip, timeout_s=max(1, ctx.params.probe_timeout // 2))


def ping(ctx: RunContext, src: PodInfo, dst_name: str, dst_ip: str, expect_success: bool = True) -> Action:
    run = _single(ctx, src, _ping_command(ctx, dst_ip), _judge_ping)
    return Action(f"ping {src.name} -> {dst_name}", "ping", src.name, dst_name, run, expect_success)


def http(
    ctx: RunContext,
    src: PodInfo,
    dst_name: str,
    dst_ip: str,
    port: int,
    expect_body: set[str] | None = None,
    expect_success: bool = True,
) -> Action:
    """GET /hostname from `src` (see _judge_http)."""
    command = probes.http_command(dst_ip, port, timeout_s=ctx.params.probe_timeout)
    run = _single(ctx, src, command, lambda code, out, err: _judge_http(code, out, err, expect_body))
    return Action(f"http {src.name} -> {dst_name}", "http", src.name, dst_name, run, expect_success)


class Batch:
    """One exec in `src` that runs the probes of all its pairs at once (probes/batch.py): the API calls of a
    connectivity matrix grow with the sources, not the pairs. The exec runs once, when the first of its actions
    runs (transient API errors retried as any call, ctx.api); each action then judges its own part, and records
    its job of the shared command, its part of the output and how many pairs share it (`exec.shared_by`, result
    format 3)."""

    def __init__(self, ctx: RunContext, src: PodInfo, commands: list[list[str]]) -> None:
        self.ctx, self.src, self.commands = ctx, src, commands
        self.command = batch.command(commands)
        self.lock = threading.Lock()
        self.done: tuple[dict[str, Any], dict[int, batch.Part]] | Outcome | None = None

    def _run(self) -> tuple[dict[str, Any], dict[int, batch.Part]] | Outcome:
        record: dict[str, Any] = {}
        try:
            _, out, _ = self.ctx.api(lambda: _exec(self.ctx, self.src, self.command, record))
            return record, batch.parse(out)
        except ApiError as exc:
            return Outcome(False, f"exec failed: {exc}", transient=exc.transient)
        except (ExecTimedOut, UnreadableOutput) as exc:
            return Outcome(False, str(exc), data={"exec": record})

    def part(self, index: int, judge: Judge) -> Callable[[], Outcome]:
        def run() -> Outcome:
            with self.lock:
                if self.done is None:
                    self.done = self._run()
                done = self.done
            if isinstance(done, Outcome):
                return done
            record, parts = done
            part = parts.get(index)
            mine = {
                # its own job of the shared command (all of it, for each of n pairs, was n^2 in size)
                "command": f"kubectl exec -n {self.ctx.namespace} {self.src.name} -- "
                + shlex.join(["sh", "-c", f"... {batch.job(index, self.commands[index])} ... wait"]),
                "exit_code": part.exit_code if part else None,
                "stdout": part.output[-OUTPUT_LIMIT:] if part else "",
                "stderr": record["stderr"],
                "shared_by": len(self.commands),
            }
            if part is None or part.exit_code is None:
                outcome = Outcome(False, "the probe printed nothing in its shared exec (it did not end in time)")
            else:
                try:
                    outcome = judge(part.exit_code, part.output, part.output)
                except UnreadableOutput as exc:
                    outcome = Outcome(False, str(exc))
            return dataclasses.replace(outcome, data={**outcome.data, "exec": mine})

        return run


def batched(
    ctx: RunContext, src: PodInfo, probe: Literal["ping", "http"], targets: list[tuple[str, str]], port: int = 0
) -> list[Action]:
    """One Action per (name, ip) of `targets`, all run by one exec in `src` (Batch). HTTP expects each target to
    answer with its own name (the echo server's /hostname). Not retried one by one: the shared exec was (Batch)."""
    if probe == "ping":
        commands = [_ping_command(ctx, ip) for _, ip in targets]
        judges: list[Judge] = [_judge_ping] * len(targets)
    else:
        commands = [probes.http_command(ip, port, timeout_s=ctx.params.probe_timeout) for _, ip in targets]
        judges = [_http_judge({name}) for name, _ in targets]
    shared = Batch(ctx, src, commands)
    return [
        Action(f"{probe} {src.name} -> {name}", probe, src.name, name, shared.part(i, judges[i]), retry=False)
        for i, (name, _) in enumerate(targets)
    ]


def _http_judge(expect_body: set[str]) -> Judge:
    return lambda code, out, err: _judge_http(code, out, probes.curl_stderr(err), expect_body)

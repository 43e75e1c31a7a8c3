"""A measuring tool's server in a pod: started in the background, waited for until it listens, stopped by the PID
its start printed. By PID, never by name: a hostNetwork server shares the node with the pods of other pairings
measured at the same time (the bandwidth rings), and would otherwise outlive the test in the node's network."""

from __future__ import annotations

import shlex
import time

from spider_validate.engine.context import RunContext
from spider_validate.engine.model import Outcome

WAIT_TRIES, WAIT_INTERVAL = 50, 0.2  # how long a server may take to listen: 10 s (each check an exec)


def _sh(ctx: RunContext, pod: str, script: str, timeout: float) -> tuple[int | None, str]:
    r = ctx.cluster.exec(ctx.namespace, pod, ["sh", "-c", script], timeout=timeout)
    return r.exit_code, r.stdout + r.stderr


def start(ctx: RunContext, pod: str, command: list[str], port: int) -> str | Outcome:
    """`command` started in the background in `pod` (its output discarded): its PID once something listens on TCP
    `port` there, or an Outcome saying it never did (the server stopped)."""
    _, out = _sh(ctx, pod, f"nohup {shlex.join(command)} >/dev/null 2>&1 & echo $!", 15)
    pid = out.strip()
    for _ in range(WAIT_TRIES):
        if f":{port}" in _sh(ctx, pod, f"ss -ltnH 'sport = :{port}'", 10)[1]:
            return pid
        time.sleep(WAIT_INTERVAL)
    stop(ctx, pod, pid)
    tool = command[2] if command[0] == "timeout" else command[0]
    return Outcome(False, f"{tool} did not listen on port {port} in {pod}")


def stop(ctx: RunContext, pod: str, pid: str) -> None:
    """The server started by `start` ended (nothing when it already has)."""
    if pid.isdigit():
        _sh(ctx, pod, f"kill {pid} 2>/dev/null || true", 10)

"""The test session's sweep removes only what a dead run left: two runs on one machine never break each other."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from pathlib import Path

from tests.lab import netns

REPO = Path(__file__).resolve().parents[2]
# Another run: owns its prefix, creates a namespace, says so, and lives until killed.
OTHER_RUN = """
import sys, time
from tests.lab import netns
owner = netns.Owner(sys.argv[1])
netns.add_netns(sys.argv[1] + "-n0")
print("ready", flush=True)
time.sleep(600)
"""


def start_other_run(prefix: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", OTHER_RUN, prefix], cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_sweep_spares_a_live_run_and_an_untagged_namespace_and_removes_a_dead_runs() -> None:
    live, dead, untagged = (f"{netns.PREFIX}{secrets.token_hex(2)}" for _ in range(3))
    runs = {prefix: start_other_run(prefix) for prefix in (live, dead)}
    netns.add_netns(f"{untagged}-n0")
    try:
        runs[dead].send_signal(signal.SIGKILL)  # a run that crashed: its lock goes with it, its namespaces stay
        runs[dead].wait(timeout=10)
        assert netns.owner_alive(live) is True and netns.owner_alive(dead) is False
        assert netns.owner_alive(untagged) is None
        removed = netns.sweep_dead()
        assert f"{dead}-n0" in removed
        left = set(netns.lab_namespaces())
        assert {f"{live}-n0", f"{untagged}-n0"} <= left and f"{dead}-n0" not in left
        assert not (netns.OWNERS / f"{dead}.lock").exists()
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for prefix in (live, dead, untagged):
            netns.sweep(prefix)
            (netns.OWNERS / f"{prefix}.lock").unlink(missing_ok=True)

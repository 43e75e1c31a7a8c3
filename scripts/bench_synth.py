"""Benchmark: synthesis of the default configuration against the bare import of cdktn + cdktn_provider_aws.

Prints wall time and peak memory (RSS of the Python process and its Node child, summed, sampled every
20 ms), median of 5 runs each, after one untimed warm-up run that fills the jsii cache. Wall time comes
from runs without the sampler, which competes for the two cores; memory from separate sampled runs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 5
REPO = Path(__file__).resolve().parents[1]


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and all its descendants, from /proc."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total


def wall_time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def peak_mib(cmd: list[str], env: dict[str, str]) -> float:
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kib(proc.pid))
        time.sleep(0.02)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return peak / 1024


def series(name: str, cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    wall_time(cmd, env)  # warm-up
    walls = [wall_time(cmd, env) for _ in range(RUNS)]
    peak = statistics.median(peak_mib(cmd, env) for _ in range(RUNS))
    wall = statistics.median(walls)
    print(f"{name:<38} wall {wall:6.2f} s (min {min(walls):.2f})   peak {peak:7.0f} MiB")
    return wall, peak


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "CDKTF_OUTDIR": out}
        print(f"median of {RUNS} runs, warm jsii cache ({env.get('JSII_RUNTIME_PACKAGE_CACHE_ROOT', '~/.cache')})")
        imp, _ = series(
            "import cdktn + cdktn_provider_aws", [sys.executable, "-c", "import cdktn, cdktn_provider_aws"], env
        )
        syn, peak = series("synthesis of cdk/cluster.yaml", [sys.executable, "-m", "cdk.main"], env)
    print(f"synthesis / import: {syn / imp:.2f}x (target <= 1.3x); peak {peak:.0f} MiB (target < 1024 MiB)")


if __name__ == "__main__":
    main()

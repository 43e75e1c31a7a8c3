"""One sh running many probes with each one's output kept apart (probes/batch.py), run for real by sh."""

from __future__ import annotations

import subprocess

from spider_validate.probes import batch

HOSTILE = "  leading blanks\\\\x %s %%d\\n\\n\\ttab\\n0|= 7\\nlast line without a newline"


def test_each_probe_gets_its_own_lines_using_nothing_but_the_shell() -> None:
    """Every line of each probe (blanks, backslashes, a line posing as an exit code) kept as the probe printed it,
    with its exit code; with an empty PATH: the shell alone prefixes the lines (a `sed` per probe was half the
    batch's CPU beside the probes)."""
    probes = [["printf", HOSTILE], ["printf", "one\\n"], ["false"]]
    shell, *script = batch.command(probes)
    proc = subprocess.run([f"/bin/{shell}", *script], env={"PATH": "/nonexistent"}, capture_output=True, text=True)
    parts = batch.parse(proc.stdout)
    assert parts[0] == batch.Part(0, "  leading blanks\\x  %d\n\n\ttab\n0|= 7\nlast line without a newline\n")
    assert parts[1] == batch.Part(0, "one\n") and parts[2] == batch.Part(1, "")

"""What `spider-validate run` prints while it runs, read from the installed CLI against the lab's API server: a dot
per check as it finishes (an `x` for one that did not pass), then each test's `[k/N]` line with what failed in it,
as cilium-cli's connectivity test reports, within an 80-column terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left, invoke

TEST_LINE = re.compile(r"^\[(\d+)/(\d+)\] (\w+) +(\S+) \((\d+) checks?, [\d.]+s\)")


def test_run_prints_a_dot_per_check_and_each_test_when_it_ends(
    lab: LabCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    lab.faults.before_ready = {"client-1": lambda lab, ns: lab.stop_server(ns, "server-1")}  # its HTTP checks fail
    outcome = invoke(lab, ["run", "--test", "connectivity/pod-to-pod", "-o", "json"], tmp_path)
    assert outcome.exit_code == 1, outcome.output
    result = json.loads(outcome.stdout)
    lines = outcome.stderr.splitlines()
    assert max(len(line) for line in lines) <= 80, outcome.stderr

    ran = {f"{t['suite']}/{t['name']}": t for t in result["tests"]}
    dots = ""
    seen = []
    for line in lines:
        if re.fullmatch(r"[.x]+", line):
            dots += line
        elif match := TEST_LINE.match(line):
            seen.append(match.group(4))
            assert int(match.group(2)) == len(ran) and int(match.group(1)) == len(seen), line
            assert int(match.group(5)) == len(ran[match.group(4)]["actions"]), line
    assert sorted(seen) == sorted(ran)  # each test's line, once
    actions = [a for t in result["tests"] for a in t["actions"]]
    assert len(dots) == len(actions) > 0, outcome.stderr  # a mark per check, none lost to another test's line
    assert dots.count("x") == sum(a["status"] != "pass" for a in actions) > 0
    assert "      fail: " in outcome.stderr  # what failed, under its test's line
    assert_nothing_left(lab)

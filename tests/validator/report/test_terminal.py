"""What a new user read in the terminal: counts that add up, plurals, the terminal's width, each audit finding once,
the run's progress without rich's highlighter."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from spider_validate.cli import run as run_command
from spider_validate.engine.model import ActionResult, RunResult, Status, TestResult
from spider_validate.report import formats

from tests.conftest import REPO

AUDIT_FIXTURE = REPO / "tests" / "fixtures" / "audit" / "consistent.json"


def action(status: Status, detail: str = "", probe: str = "ping") -> ActionResult:
    return ActionResult("s", "a", probe, "pod-a", "10.0.0.12", "success", status, detail, 1, 0.5)  # type: ignore[arg-type]


def test_a_run_with_only_errors_says_so_not_zero_failed() -> None:
    errored = TestResult("rdma", "bandwidth", "", Status.ERROR, "perftest did not start", [action(Status.ERROR)])
    line = formats.table(RunResult("r", "ns", "c", tests=[errored]), width=100).splitlines()[-1]
    assert line == "0 passed, 1 error of 1 test in 0.0s"
    assert "0 failed" not in formats.table(RunResult("r", "ns", "c", tests=[errored]), width=100)


def test_one_check_and_one_test_are_singular() -> None:
    one = TestResult("connectivity", "ping", "", Status.PASS, "", [action(Status.PASS)], 1.0)
    assert "(1 check, 1.0s)" in formats.progress_line(one)
    many = TestResult("connectivity", "ping", "", Status.PASS, "", [action(Status.PASS)] * 2, 1.0)
    assert "(2 checks, 1.0s)" in formats.progress_line(many)
    assert formats.summary_line(RunResult("r", "ns", "c", tests=[one, many])) == "2 passed of 2 tests in 0.0s"


def test_the_table_fits_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """It was 120 columns whatever the terminal: at 80 every row wrapped into two."""
    monkeypatch.setenv("COLUMNS", "80")
    failing = TestResult("apps", "http", "", Status.FAIL, "", [action(Status.FAIL, "timed out " * 20)])
    lines = formats.table(RunResult("r", "ns", "c", tests=[failing])).splitlines()
    table_lines = [line for line in lines if not line.startswith(("FAIL", "0 passed"))]
    assert max(len(line) for line in table_lines) <= 80


def test_an_audit_finding_is_printed_once(tmp_path: Path) -> None:
    """The finding's message was in the table's detail twice (the action and its detail) and once more below it."""
    dump = json.loads(AUDIT_FIXTURE.read_text())
    items = dump["items"] if isinstance(dump, dict) else dump
    items.remove(next(i for i in items if i.get("kind") == "Pod"))
    (tmp_path / "dump.json").write_text(json.dumps(dump))
    run = subprocess.run(
        [str(REPO / ".venv/bin/spider-validate"), "audit", "--from-file", str(tmp_path / "dump.json")],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 1, run.stderr
    assert run.stdout.count("which is gone") == 1, run.stdout


def test_progress_colours_the_status_only() -> None:
    """rich's highlighter coloured fragments of names, addresses and numbers in each progress line."""
    out = io.StringIO()
    console = run_command.progress_console(file=out, force_terminal=True, color_system="standard")
    test = TestResult("connectivity", "ping-10.0.0.12", "", Status.PASS, "", [action(Status.PASS)] * 12, 3.25)
    console.print(formats.progress_line(test))
    assert re.findall(r"\x1b\[[0-9;]*m", out.getvalue()) == ["\x1b[32m", "\x1b[0m"], repr(out.getvalue())


def test_progress_counts_the_tests_and_shows_failures_as_they_happen() -> None:
    """Only a status per test went by; which check failed was in the table at the end (cilium-cli shows `[k/N]`
    and the failures inline)."""
    out = io.StringIO()
    console = run_command.progress_console(file=out, width=200)
    failing = [action(Status.FAIL, f"no reply from [10.0.0.{i}]") for i in range(5)]
    test = TestResult("connectivity", "ping", "", Status.FAIL, "", [action(Status.PASS), *failing], 2.0)
    console.print(formats.progress_line(test, 3, 12))
    assert out.getvalue().splitlines() == [
        "[3/12] FAIL  connectivity/ping (6 checks, 2.0s)",
        "      fail: a: no reply from [10.0.0.0]",
        "      fail: a: no reply from [10.0.0.1]",
        "      fail: a: no reply from [10.0.0.2]",
        "      and 2 more (the table below)",
    ]

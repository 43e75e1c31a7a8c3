"""Reports from the one result model: the summary table with the connectivity matrix, JSON and JUnit."""

from __future__ import annotations

import dataclasses
import json
import shutil
from io import StringIO
from pathlib import Path
from typing import Any

from junit_xml import TestCase, TestSuite, to_xml_report_string
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from spider_validate.engine.model import RunResult, Status, TestResult
from spider_validate.report.nodes import NodeRow, by_node, pod_nodes

MATRIX_PROBES = {"ping", "http"}  # the probes between pods, shown as the connectivity matrix
STYLE = {
    Status.PASS: "green",
    Status.FAIL: "red",
    Status.ERROR: "magenta",
    Status.SKIP: "yellow",
    Status.WARN: "cyan",
}


def matrix(result: RunResult) -> list[dict[str, str]]:
    """source x destination x probe -> status, for every probe that ran between pods."""
    return [
        {
            "source": a.source,
            "destination": a.destination,
            "probe": a.probe,
            "status": a.status.value,
            "detail": a.detail,
        }
        for t in result.tests
        for a in t.actions
        if a.probe in MATRIX_PROBES
    ]


def node_rows(result: RunResult) -> list[NodeRow]:
    """The matrix's probes between two of the run's pods, by node (report/nodes.py)."""
    node_of = pod_nodes(result.environment)
    return by_node(
        (node_of[c["source"]], node_of[c["destination"]], c["status"] == Status.PASS.value)
        for c in matrix(result)
        if c["source"] in node_of and c["destination"] in node_of
    )


def to_dict(result: RunResult) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["counts"] = result.counts()
    data["passed"] = result.passed
    data["matrix"] = matrix(result)
    return data


def to_json(result: RunResult) -> str:
    return json.dumps(to_dict(result), indent=2, default=str)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary_line(result: RunResult) -> str:
    """What ran, as counts that add up: errors are neither passed nor failed, so they are said, never "0 failed"."""
    counts = result.counts()
    parts = [f"{counts['pass']} passed"]
    parts += [f"{counts['fail']} failed"] if counts["fail"] else []
    parts += [plural(counts["error"], "error")] if counts["error"] else []
    parts += [plural(counts["warn"], "warning")] if counts["warn"] else []
    parts += [f"{counts['skip']} skipped"] if counts["skip"] else []
    return f"{', '.join(parts)} of {plural(len(result.tests), 'test')} in {result.seconds:.1f}s"


def progress_line(test: TestResult, done: int = 0, total: int = 0) -> str:
    """A finished test as the run goes: `[k/N]` of the tests selected, and what failed in it, at once (as
    cilium-cli reports a connectivity test), rather than only in the table at the end."""
    position = f"[{done}/{total}] " if total else ""
    reason = f" - {escape(test.reason)}" if test.reason else ""
    lines = [
        f"{position}[{STYLE[test.status]}]{test.status.value.upper():5}[/] {test.id} "
        f"({plural(len(test.actions), 'check')}, {test.seconds:.1f}s){reason}"
    ]
    failing = [a for a in test.actions if a.status in (Status.FAIL, Status.ERROR)]
    lines += [f"      {a.status.value}: {escape(a.action)}: {escape(a.detail)}" for a in failing[:3]]
    lines += [f"      and {len(failing) - 3} more (the table below)"] if len(failing) > 3 else []
    return "\n".join(lines)


def table(result: RunResult, width: int | None = None) -> str:
    """The summary table, as wide as the terminal ($COLUMNS, else the terminal's width, else 80 columns)."""
    buf = StringIO()
    width = width or shutil.get_terminal_size().columns
    console = Console(file=buf, width=width, force_terminal=False, color_system=None, highlight=False)
    summary = Table(title=f"spider-validate run {result.run_id}", show_lines=False)
    for col in ("test", "result", "checks", "seconds", "detail"):
        summary.add_column(col)
    for t in result.tests:
        failing = [a for a in t.actions if a.status is not Status.PASS]
        # a failure between pods is a cell of the matrix below; any other is printed whole under the table, once
        between_pods = [f"{a.action}: {a.detail}" for a in failing if a.probe in MATRIX_PROBES]
        below = len(failing) - len(between_pods)
        detail = t.reason or "; ".join(between_pods[:3]) or (f"{plural(below, 'problem')} below" if below else "")
        summary.add_row(t.id, t.status.value, str(len(t.actions)), f"{t.seconds:.1f}", detail)
    console.print(summary)
    for t in result.tests:
        for a in t.actions:
            if a.status is not Status.PASS and a.probe not in MATRIX_PROBES:
                console.print(f"{a.status.value.upper()} {t.id}: {a.detail}", soft_wrap=True)
    rows = node_rows(result)
    if rows:
        grid = Table(title="connectivity by node (ping and HTTP to and from its pods; JSON and HTML have each pair)")
        for col in ("node", "passed", "verdict"):
            grid.add_column(col)
        for row in rows:
            grid.add_row(row.node, f"{row.passed}/{row.total}", row.verdict)
        console.print(grid)
    console.print(summary_line(result))
    if result.preflight_failed:
        console.print("preflight failed: the cluster is not ready for testing. To fix:", soft_wrap=True)
        for t in result.tests:
            for a in t.actions:
                if t.suite == "preflight" and a.status is not Status.PASS:
                    console.print(f"  {t.id}: {a.detail}", soft_wrap=True)
    if result.setup_error:
        console.print(f"setup failed: {result.setup_error}", soft_wrap=True)
    if result.diagnostics:
        console.print(f"diagnostics: {result.diagnostics}")
    for line in result.cleanup:
        console.print(f"cleanup: {line}")
    return buf.getvalue()


def junit(result: RunResult) -> str:
    suites: dict[str, list[TestCase]] = {}
    for t in result.tests:
        case = TestCase(
            t.name,
            classname=f"spider-validate.{t.suite}",
            elapsed_sec=t.seconds,
            stdout="\n".join(f"{a.action}: {a.status.value} - {a.detail} ({a.attempts} attempts)" for a in t.actions),
        )
        failing = [a for a in t.actions if a.status is not Status.PASS]
        message = t.reason or "; ".join(f"{a.action}: {a.detail}" for a in failing)
        if t.status is Status.FAIL:
            case.add_failure_info(message=message)
        elif t.status is Status.ERROR:
            case.add_error_info(message=message)
        elif t.status is Status.SKIP:
            case.add_skipped_info(message=message)
        suites.setdefault(t.suite, []).append(case)
    if result.setup_error and not result.tests:
        setup = TestCase("setup", classname="spider-validate.setup")
        setup.add_error_info(message=result.setup_error)
        suites["setup"] = [setup]
    return to_xml_report_string([TestSuite(f"spider-validate.{name}", cases) for name, cases in suites.items()])


def write_junit(result: RunResult, path: str | Path) -> None:
    Path(path).write_text(junit(result))

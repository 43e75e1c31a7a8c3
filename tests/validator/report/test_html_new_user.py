"""What a new user misread in the HTML report, looked at in Chromium (tests/browser.py): host and pod bandwidth on
one scale, counts of what happened only, no empty field in the subtitle, commands as code instead of backticks,
blank matrix cells explained. The page is rendered from a saved result by `spider-validate report`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.browser import CHROMIUM, Browser
from tests.lab.fixtures import entry_point

SHOTS = Path(__file__).parents[2] / "output" / "report-screenshots"


def action(pair: tuple[str, str], status: str, detail: str, **data: Any) -> dict[str, Any]:
    return {
        "scenario": "s",
        "action": "a",
        "probe": "iperf3" if data else "ping",
        "source": pair[0],
        "destination": pair[1],
        "expected": "success",
        "status": status,
        "detail": detail,
        "attempts": 1,
        "seconds": 1.0,
        "data": data,
    }


RESULT: dict[str, Any] = {
    "run_id": "1207090000-abcd",
    "namespace": "",
    "cluster": "the cluster",
    "seconds": 12.0,
    "counts": {"pass": 1, "fail": 0, "skip": 0, "error": 1, "warn": 0},  # as `run -o json` writes them
    "tests": [
        {
            "suite": "perf",
            "name": "bandwidth",
            "description": "",
            "status": "pass",
            "reason": "",
            "seconds": 10.0,
            "actions": [
                action(("host-a", "host-b"), "pass", "13.80 Gb/s", average_gbps=13.80, peak_gbps=14.2),
                action(("pod-a", "pod-b"), "pass", "10.31 Gb/s", average_gbps=10.31, peak_gbps=10.9, min_gbps=5.0),
            ],
        },
        {
            "suite": "rdma",
            "name": "device",
            "description": "",
            "status": "error",
            "reason": "the device plugin is not running: `kubectl -n kube-system get ds` shows it",
            "seconds": 1.0,
            "actions": [action(("pod-a", "pod-b"), "error", "no answer")],
        },
    ],
}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, Path]]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip("needs Debian's chromium (scripts/install-tools.sh installs it)")
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "result.json").write_text(json.dumps(RESULT))
    out = CliRunner().invoke(entry_point(), ["report", str(tmp / "result.json"), "-o", str(tmp / "report.html")])
    assert out.exit_code == 0, out.output
    with Browser() as browser:
        browser.open(tmp / "report.html")
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.screenshot(SHOTS / "new-user.png", full_page=True)
        yield browser, tmp / "report.html"


def test_host_and_pod_bars_are_drawn_to_one_scale(page: tuple[Browser, Path]) -> None:
    """On scales of their own, the pod's 10.31 Gb/s was drawn longer than the host's 13.80."""
    browser, _ = page
    widths = browser.evaluate(
        "[...document.querySelectorAll('path[aria-roledescription=bar]')].map(p => p.getBoundingClientRect().width)"
    )
    assert len(widths) == 2, widths
    assert widths[1] / widths[0] == pytest.approx(10.31 / 13.80, rel=0.01)


def test_counts_show_what_happened_and_the_subtitle_has_no_empty_field(page: tuple[Browser, Path]) -> None:
    browser, _ = page
    counts = browser.evaluate("document.querySelector('.counts').innerText")
    assert counts.lower().split() == ["pass", "1", "error", "1"], counts  # no "fail 0" beside them
    meta = browser.evaluate("document.querySelector('.meta').innerText")
    assert meta == "the cluster, 12.0 s", meta
    verdict = browser.evaluate("document.getElementById('verdict').innerText")
    assert verdict == "Not healthy: 1 problem, 1 error of 2 tests", verdict  # it said "0 failed and 1 errored"


def test_commands_are_code_not_backticks(page: tuple[Browser, Path]) -> None:
    browser, _ = page
    assert "`" not in browser.evaluate("document.body.innerText")
    codes = browser.evaluate("[...document.querySelectorAll('code')].map(c => c.innerText)")
    assert "kubectl -n kube-system get ds" in codes


def test_blank_matrix_cells_are_explained(page: tuple[Browser, Path]) -> None:
    browser, _ = page
    text = browser.evaluate("document.querySelector('#connectivity').innerText")
    assert "A blank cell is a pair that no test of this run probed" in text

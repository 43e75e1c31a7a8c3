"""What a new user tripped over at the validator's command line, each through the installed entry point: a metrics
port of 0, a dump on stdin, an empty kubeconfig, where --html wrote, install hints that name a package that is not
published, and `_created` series in the watch's metrics."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

from click.testing import CliRunner
from prometheus_client import generate_latest
from spider_validate.cli import common
from spider_validate.cluster import kube
from spider_validate.report import html
from spider_validate.watch.metrics import WatchMetrics

from tests.conftest import REPO
from tests.lab.fixtures import entry_point

AUDIT_FIXTURE = REPO / "tests" / "fixtures" / "audit" / "consistent.json"


def test_a_metrics_port_of_zero_is_refused_before_connecting() -> None:
    """Port 0 made the watch listen on a port the kernel chose, which nothing could scrape."""
    with mock.patch.object(common, "connect", side_effect=AssertionError("connected despite a bad input")):
        out = CliRunner().invoke(entry_point(), ["watch", "--image", "x", "--metrics-port", "0"])
    assert out.exit_code == 2 and "0 is not in the range 1<=x<=65535" in out.output, out.output


def test_audit_reads_the_dump_from_stdin() -> None:
    out = CliRunner().invoke(entry_point(), ["audit", "--from-file", "-"], input=AUDIT_FIXTURE.read_text())
    assert out.exit_code == 0, out.output
    assert "1 passed of 1 test" in out.output


def test_an_empty_kubeconfig_says_it_is_empty(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("")
    try:
        kube.read_kubeconfig(str(tmp_path / "config"))
    except kube.ConfigProblem as problem:
        assert str(problem).startswith(f"kubeconfig {tmp_path / 'config'} is empty"), problem
        assert "NoneType" not in str(problem)
    else:
        raise AssertionError("an empty kubeconfig was read")


def test_html_says_where_it_wrote(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        entry_point(), ["audit", "--from-file", str(AUDIT_FIXTURE), "--html", str(tmp_path / "r.html")]
    )
    assert out.exit_code == 0, out.output
    assert f"HTML report: {tmp_path / 'r.html'}" in out.output and (tmp_path / "r.html").is_file()


def test_install_hints_work_from_the_repository(tmp_path: Path) -> None:
    """`pip install 'spider-validate[html]'` named a distribution that is not on PyPI (anyone could register it)."""
    with mock.patch.object(html, "missing", return_value=["altair"]):
        out = CliRunner().invoke(entry_point(), ["audit", "--from-file", "-", "--html", str(tmp_path / "r.html")])
    assert out.exit_code == 2
    assert "pip install './validators[html]' (from the repository's root" in out.output, out.output
    hints = [
        f"{path.relative_to(REPO)}"
        for path in (REPO / "validators").rglob("*.py")
        if "install 'spider-validate[" in path.read_text()
    ]
    assert hints == []


def test_the_watch_metrics_carry_no_created_series() -> None:
    """A counter's `_created` series doubled every counter, and named one `..._probe_pods_created_created`."""
    metrics = WatchMetrics()
    metrics.probe_pods_created.inc()
    exposition = generate_latest(metrics.registry).decode()
    assert "_created " not in exposition and "_created{" not in exposition, exposition
    assert "spider_validate_watch_probe_pods_created_total 1.0" in exposition


def test_the_watch_counters_have_series_before_their_first_event() -> None:
    """A pair's failure counter and a step's error counter appeared only at the first failure: `rate()` and the
    alerts on them saw no 0 before it."""
    metrics = WatchMetrics()
    metrics.expect_steps(["pods", "ipam"])
    metrics.count_probe("node-a", "node-b", ok=True)
    exposition = generate_latest(metrics.registry).decode()
    for series in (
        'spider_validate_probes_total{destination_node="node-b",result="failure",source_node="node-a"} 0.0',
        'spider_validate_probes_total{destination_node="node-b",result="success",source_node="node-a"} 1.0',
        'spider_validate_watch_errors_total{step="pods"} 0.0',
        'spider_validate_watch_errors_total{step="ipam"} 0.0',
    ):
        assert series in exposition, exposition

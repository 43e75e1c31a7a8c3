"""`spider-validate watch` without a cluster: the forecast against PromQL's own least-squares slope (promtool), the
metric names under promtool's linter, and the CLI's refusals before anything is contacted."""

from __future__ import annotations

import math
import re
import socket
import subprocess
from pathlib import Path
from unittest import mock

import pytest
import spider_validate
import yaml
from click.testing import CliRunner
from prometheus_client import generate_latest
from spider_validate.cli import common, main
from spider_validate.watch.forecast import Trend, seconds_until_full
from spider_validate.watch.metrics import WatchMetrics

from tests.charts.test_chart_watch import PROMTOOL

USED = [0, 1, 1, 3, 4, 4, 6, 9, 9, 10, 12]  # used addresses, one sample a minute, noisy


def test_the_slope_is_promqls_deriv(tmp_path: Path) -> None:
    """deriv() is PromQL's least-squares slope (per second); the forecast is free / that slope."""
    samples = [(60.0 * i, float(u)) for i, u in enumerate(USED)]
    ours = 100 / seconds_until_full(samples, free=100)
    (tmp_path / "rules.yaml").write_text("groups: []\n")
    spec = {
        "rule_files": ["rules.yaml"],
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": "used", "values": " ".join(map(str, USED))}],
                "promql_expr_test": [
                    {
                        "expr": f"abs(deriv(used[11m]) - {ours!r}) < bool 1e-12",  # equal but for float rounding
                        "eval_time": "10m",
                        "exp_samples": [{"labels": "{}", "value": 1}],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(spec))
    proc = subprocess.run([PROMTOOL, "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("samples", "free", "expected"),
    [
        ([(0.0, 0.0), (10.0, 20.0)], 10, 5.0),  # 2 addresses a second: 10 free last 5 s
        ([(0.0, 5.0), (10.0, 5.0), (20.0, 5.0)], 10, math.inf),  # not filling
        ([(0.0, 8.0), (10.0, 4.0)], 10, math.inf),  # emptying
        ([(0.0, 8.0)], 10, math.inf),  # one sample: no trend yet
        ([(5.0, 8.0), (5.0, 9.0)], 10, math.inf),  # no time between them
        ([(0.0, 0.0), (10.0, 20.0)], 0, 0.0),  # already full
    ],
)
def test_forecast(samples: list[tuple[float, float]], free: float, expected: float) -> None:
    assert seconds_until_full(samples, free) == expected


def test_the_trend_keeps_only_its_window() -> None:
    trend = Trend(window=60)
    for t in range(0, 600, 10):
        trend.add(float(t), float(t))
    assert [t for t, _ in trend.samples] == [float(t) for t in range(530, 600, 10)]
    assert trend.forecast(free=10) == pytest.approx(10.0)


def test_metric_names_pass_promtools_linter() -> None:
    """promtool check metrics applies Prometheus's naming rules (units, _total, no reserved suffixes)."""
    m = WatchMetrics()
    m.info.info({"version": "x", "namespace": "n", "network": "a/b"})
    m.probe_success.labels("a", "b").set(1)
    m.probe_rtt.labels("a", "b").set(0.001)
    m.probes.labels("a", "b", "success").inc()
    for gauge in (m.pool_size, m.pool_used, m.pool_free, m.pool_forecast):
        gauge.labels("p").set(1)
    m.findings.labels("leak").set(0)
    m.errors.labels("ipam").inc()
    exposition = generate_latest(m.registry)
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=exposition, capture_output=True)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    names = {line.split()[2] for line in exposition.decode().splitlines() if line.startswith("# TYPE")}
    assert all(n.startswith("spider_validate_") for n in names)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--owner-pod", "just-a-name"], "expected NAME/UID"),
        (["--interval", "0"], "--interval"),
        (["--namespace", "Bad_Name"], "--namespace"),
        (["--metrics-port", "70000"], "--metrics-port"),
    ],
)
def test_bad_options_are_refused_before_connecting(args: list[str], message: str) -> None:
    with mock.patch.object(common, "connect", side_effect=AssertionError("connected")) as connect:
        result = CliRunner().invoke(main, ["watch", *args])
    assert result.exit_code == 2 and message in result.output, result.output
    connect.assert_not_called()


def test_a_busy_metrics_port_is_a_usage_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with mock.patch.object(common, "connect", return_value=object()):
            result = CliRunner().invoke(main, ["watch", "--metrics-port", str(port)])
    assert result.exit_code == 2 and f"cannot serve metrics on 127.0.0.1:{port}" in result.output, result.output


IMAGE_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "build-validator-image.sh"


def test_the_image_script_passes_shellcheck_and_agrees_with_the_chart() -> None:
    """The build itself takes minutes and Debian's mirror (run by hand, README); here: its shell and its contract
    with the chart's Deployment (the user it runs as, the metrics port, the command)."""
    proc = subprocess.run(["shellcheck", "--severity=style", str(IMAGE_SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    script = IMAGE_SCRIPT.read_text()
    chart_dir = Path(__file__).resolve().parents[3] / "charts" / "spiderpool-rdma"
    deployment = (chart_dir / "templates" / "watch-deployment.yaml").read_text()
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())["watch"]
    user = re.search(r"^USER_ID=(\d+)", script, re.MULTILINE)
    assert user and f"runAsUser: {user.group(1)}" in deployment
    assert f"--port {values['port']}" in script and "--cmd watch" in script
    version = re.search(r'^__version__ = "(.+)"', Path(spider_validate.__file__).read_text(), re.MULTILINE)
    assert version and values["image"] == {}  # no default: nothing is published, the user pushes this build
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert f"oci-archive:build/image/spider-validate-{version.group(1)}.oci.tar" in readme

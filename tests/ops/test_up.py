"""`spiderpool-rdma up`: phases that resume after an interrupt in any of them, and the chart phase's helm command
checked against the one the chart tests render with."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cdk import chart_values
from cdk.config import RdmaMode
from cdk.ec2_types import InstanceTable
from cdk.ipplan import load_plan
from ops import chart
from ops.cli import main
from ops.up import PHASES, Deployment, run_phases
from tests import chart as chart_tests
from tests.charts.test_chart import documented_timeouts
from tests.ops import helm


def deployment(tmp_path: Path, table: InstanceTable, data: dict[str, Any]) -> Deployment:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    config, _ = load_plan(path, table)
    return Deployment(path, config, tmp_path / "out", lambda line: None)


@pytest.mark.parametrize("interrupted", PHASES)
def test_up_interrupted_in_any_phase_continues_with_it(interrupted: str, tmp_path: Path, table: InstanceTable) -> None:
    d = deployment(tmp_path, table, {"name": "resume"})
    d.outdir.mkdir()
    ran: list[str] = []
    interrupts = [interrupted]

    def phase(name: str) -> Callable[[], None]:
        def step() -> None:
            ran.append(name)
            if name in interrupts:
                interrupts.remove(name)
                raise KeyboardInterrupt  # Ctrl-C in the middle of the phase, once

        return step

    phases = {name: phase(name) for name in PHASES}
    with pytest.raises(KeyboardInterrupt):
        run_phases(d, phases, PHASES[-1], lambda line: None)
    before = PHASES.index(interrupted)
    assert ran == list(PHASES[: before + 1])
    ran.clear()
    lines: list[str] = []
    run_phases(d, phases, PHASES[-1], lines.append)
    assert ran == list(PHASES[before:])  # the finished phases are not run again
    assert [line for line in lines if "skipped" in line] == [
        f"{p}: finished before (0 s), skipped" for p in PHASES[:before]
    ]
    ran.clear()
    run_phases(d, phases, PHASES[-1], lambda line: None)
    assert ran == []  # everything finished
    d.config_path.write_text(d.config_path.read_text() + "# edited\n")
    run_phases(d, phases, PHASES[-1], lambda line: None)
    assert ran == list(PHASES)  # another configuration: from the start


def test_the_chart_phase_installs_what_the_chart_tests_render(
    tmp_path: Path, table: InstanceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = helm.install(tmp_path, monkeypatch)
    d = deployment(tmp_path, table, chart_tests.VARIANTS["default-efa"])
    d.outdir.mkdir()
    config, plan = load_plan(d.config_path, table)
    (d.outdir / chart_values.FILE).write_text(chart_values.render(config, plan))
    kubeconfig = d.outdir / "kubeconfig"

    chart.install(kubeconfig, config.workers.rdma, d.outdir)

    *repos, build, install = (json.loads(line)["args"] for line in record.read_text().splitlines())
    # the repositories the chart's README adds, by the URLs its Chart.lock names
    lock = yaml.safe_load((chart_tests.CHART / "Chart.lock").read_text())["dependencies"]
    assert [r[3] for r in repos] == [d["repository"] for d in lock] and all(r[:2] == ["repo", "add"] for r in repos)
    assert build == ["dependency", "build", str(chart.CHART), "--kubeconfig", str(kubeconfig)]
    install = json.loads(record.read_text().splitlines()[-1])
    args = install["args"]
    # what the chart tests render (tests/chart.py: release "rdma", its namespace, -f the profile, -f the values
    # synthesis writes), as the chart's README installs it: waiting, within its documented timeout
    assert args[:4] == ["upgrade", "rdma", str(chart.CHART), "--install"]
    assert args[args.index("-n") + 1] == chart_tests.NAMESPACE and "--wait" in args
    readme_timeout = documented_timeouts((chart_tests.CHART / "README.md").read_text())[0]
    assert args[args.index("--timeout") + 1] == f"{readme_timeout // 60}m"
    (tmp_path / "rendered").mkdir()
    values = [yaml.safe_load(install["files"][a]) for p, a in itertools.pairwise(args) if p == "-f"]
    assert values == [
        chart_tests.profile_values("aws-efa"),
        chart_tests.generated_values("default-efa", table, tmp_path / "rendered"),
    ]
    assert args[-2:] == ["--kubeconfig", str(kubeconfig)]


def test_every_rdma_mode_has_the_profile_the_chart_names_for_it() -> None:
    """The chart's README names the profile of each AWS mode; a cluster without RDMA takes the chart's defaults."""
    readme = (chart_tests.CHART / "README.md").read_text()
    for mode, profile in chart.PROFILES.items():
        if profile:
            assert re.search(rf"-f charts/spiderpool-rdma/{profile} -f cdktf.out/helm-values.yaml", readme), mode
    assert set(chart.PROFILES) == set(RdmaMode)


def test_without_aws_credentials_status_and_down_say_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """boto3's NoCredentialsError ended them in a traceback."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    out = CliRunner().invoke(main, ["status", "--output", str(tmp_path)])
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit), out.exception
    assert out.output.splitlines()[-1].startswith("Error: AWS: Unable to locate credentials"), out.output

"""The chart tests render `cdktf.out/helm-values.yaml` from the plan (tests/chart.py's `generated_values`, no jsii
runtime); synthesis must write exactly that file for what they test to be what users install."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdk import chart_values
from cdk.chart_values import FILE as HELM_VALUES
from cdk.ec2_types import InstanceTable
from tests import chart
from tests.conftest import VARIANTS, Synthesized

pytestmark = pytest.mark.synth


@pytest.mark.parametrize("name", VARIANTS)
def test_synthesis_writes_the_values_the_chart_tests_render(
    name: str, synthesized: dict[str, Synthesized], table: InstanceTable, tmp_path: Path
) -> None:
    written = (synthesized[name].outdir / HELM_VALUES).read_text()
    assert written == chart_values.render(*chart.planned(name, table, tmp_path))

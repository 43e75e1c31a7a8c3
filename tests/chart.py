"""Render the umbrella chart with the real helm binary (through pyhelm3), offline.

Tests render a copy of the chart whose Chart.yaml lists no dependencies: the subcharts cannot be
downloaded here, our own templates are what is tested, and the values passed to the subcharts are
checked by the contract test against the upstream values files.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pyhelm3 import Client

from tests.conftest import REPO

CHART = REPO / "charts" / "spiderpool-rdma"
PROFILES = sorted(p.stem.removeprefix("values-") for p in CHART.glob("values-*.yaml"))
HELM = str(REPO / ".tools" / "bin" / "helm")
NAMESPACE = "kube-system"


def offline_copy(dest: Path) -> Path:
    target = dest / "spiderpool-rdma"
    shutil.copytree(CHART, target)
    chart_yaml = target / "Chart.yaml"
    meta = yaml.safe_load(chart_yaml.read_text())
    meta.pop("dependencies", None)
    chart_yaml.write_text(yaml.safe_dump(meta, sort_keys=False))
    return target


def profile_values(profile: str) -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / f"values-{profile}.yaml").read_text()))


def render(chart_dir: Path, *values: dict[str, Any], release: str = "rdma") -> list[dict[str, Any]]:
    """Every object helm renders (hooks and tests included), in helm's order."""

    async def run() -> list[dict[str, Any]]:
        client = Client(executable=HELM)
        chart = await client.get_chart(chart_dir)
        return [dict(r) for r in await client.template_resources(chart, release, *values, namespace=NAMESPACE)]

    return asyncio.run(run())


def applied_objects(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects the apply job creates, from the manifest ConfigMap, in apply order."""
    (cm,) = [o for o in rendered if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-network")]
    return [o for o in yaml.safe_load_all(cm["data"]["network.yaml"]) if o]


def all_objects(rendered: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from rendered
    yield from applied_objects(rendered)

"""The chart phase: the umbrella chart installed with the profile of the configuration's RDMA mode and the values
synthesized from it, as the chart's README installs it, through pyhelm3 (the real `helm` on PATH)."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyhelm3
import yaml
from pyhelm3.errors import ReleaseNotFoundError

from cdk.chart_values import FILE as HELM_VALUES
from cdk.config import RdmaMode
from ops.infra import ROOT

CHART = ROOT / "charts" / "spiderpool-rdma"
RELEASE = "rdma"
NAMESPACE = "kube-system"
#: Helm's default 5 minutes covers neither the first image pulls nor the hooks that wait for Spiderpool's webhook
#: (charts/spiderpool-rdma/README.md, Install).
TIMEOUT = "15m"
#: The chart's profile for each RDMA mode of the configuration; a cluster without RDMA needs none.
PROFILES = {RdmaMode.EFA: "values-aws-efa.yaml", RdmaMode.SOFTROCE: "values-aws-softroce.yaml", RdmaMode.NONE: None}


class HelmMissing(Exception):
    """No helm on PATH."""


def values_files(rdma: RdmaMode, outdir: Path) -> list[Path]:
    """The -f files in Helm's order (later ones win): the profile, then what synthesis wrote for this cluster."""
    profile = PROFILES[rdma]
    return [*([CHART / profile] if profile else []), outdir / HELM_VALUES]


def _command(kubeconfig: Path) -> pyhelm3.Command:
    helm = shutil.which("helm")
    if helm is None:
        raise HelmMissing("helm is not on PATH: install helm 3.8 or newer (README, Prerequisites)")
    return pyhelm3.Command(executable=helm, kubeconfig=kubeconfig)


def install(kubeconfig: Path, rdma: RdmaMode, outdir: Path) -> None:
    """The chart's repositories, `helm dependency build`, then `helm upgrade --install` (a resumed run upgrades
    what an interrupted one left)."""
    command = _command(kubeconfig)
    files = [arg for path in values_files(rdma, outdir) for arg in ("-f", str(path))]

    async def steps() -> None:
        # `helm dependency build` finds Chart.lock's charts only in repositories added by their URL
        for dependency in yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]:
            await command.repo_add(dependency["name"], dependency["repository"])
        await command.run(["dependency", "build", str(CHART)])
        await command.run(
            ["upgrade", RELEASE, str(CHART), "--install", "-n", NAMESPACE, "--wait", "--timeout", TIMEOUT, *files]
        )

    asyncio.run(steps())


@dataclass(frozen=True)
class Release:
    """The release as `helm status` reports it."""

    name: str
    revision: int
    status: str
    chart: str
    chart_version: str


def release(kubeconfig: Path) -> Release | None:
    """The chart's release (`helm status -o json`: its revision, status and chart), None when there is none."""
    command = _command(kubeconfig)
    try:
        shown = asyncio.run(command.status(RELEASE, namespace=NAMESPACE))
    except ReleaseNotFoundError:
        return None
    chart = shown["chart"]["metadata"]
    return Release(shown["name"], shown["version"], shown["info"]["status"], chart["name"], chart["version"])


def uninstall(kubeconfig: Path) -> bool:
    """The chart's README's uninstall (its delete job removes apps, networks and pools before Spiderpool goes);
    False when there is no release (never installed, or an interrupted `down` removed it)."""
    command = _command(kubeconfig)
    try:
        asyncio.run(command.uninstall(RELEASE, namespace=NAMESPACE, timeout=TIMEOUT, wait=True))
    except ReleaseNotFoundError:
        return False
    return True

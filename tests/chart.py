"""Render the umbrella chart with the real helm binary and its real subcharts, offline.

The subcharts are the upstream packages in ../shared/upstream/charts/, copied into a temporary copy's `charts/`
under the file names `helm dependency build` gives them (`<name>-<version>.tgz`, Helm's
`pkg/downloader/manager.go` downloads each dependency as its chart archive). Nothing is stripped: what Helm's
loader skips (`.helmignore`) or refuses (a missing dependency) fails the tests as it would fail `helm install`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cdk import chart_values, userdata
from cdk.config import DEFAULT_KUBERNETES_VERSION, ClusterConfig
from cdk.ec2_types import InstanceTable
from cdk.ipplan import IpPlan, load_plan
from tests.conftest import REPO, SHARED, VARIANTS
from tests.upstream.scheduling import Node

CHART = REPO / "charts" / "spiderpool-rdma"
PROFILES = sorted(p.stem.removeprefix("values-") for p in CHART.glob("values-*.yaml"))
HELM = str(REPO / ".tools" / "bin" / "helm")
NAMESPACE = "kube-system"
UPSTREAM_CHARTS = SHARED / "upstream" / "charts"
#: The Kubernetes a new cluster gets by default (cdk/config.py): what `helm template` renders for, and what the rendered
#: objects are validated against.
KUBE_MINOR = DEFAULT_KUBERNETES_VERSION
KUBE_VERSION = f"{KUBE_MINOR}.0"


def dependencies() -> list[dict[str, Any]]:
    return list(yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"])


def packaged_copy(dest: Path) -> Path:
    """A copy of the chart with its dependencies in charts/ exactly as `helm dependency build` leaves them."""
    target = dest / "spiderpool-rdma"
    shutil.copytree(CHART, target, ignore=shutil.ignore_patterns("charts"))
    (target / "charts").mkdir()
    for dep in dependencies():
        archive = f"{dep['name']}-{dep['version']}.tgz"
        shutil.copy2(UPSTREAM_CHARTS / archive, target / "charts" / archive)
    return target


def planned(variant: str | dict[str, Any], table: InstanceTable, tmp: Path) -> tuple[ClusterConfig, IpPlan]:
    """A configuration (a name of conftest.VARIANTS, or cluster.yaml's content) and its plan."""
    data = VARIANTS[variant] if isinstance(variant, str) else variant
    path = tmp / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_plan(path, table)


def generated_values(variant: str | dict[str, Any], table: InstanceTable, tmp: Path) -> dict[str, Any]:
    """cdktf.out/helm-values.yaml of a configuration, from the very function `make synth` writes it with."""
    return dict(yaml.safe_load(chart_values.render(*planned(variant, table, tmp))))


#: kubeadm taints control-plane nodes (kubeadm's `nodeRegistration.taints` default, kubeadm init --help).
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def cluster_nodes(config: ClusterConfig, plan: IpPlan) -> list[Node]:
    """The nodes as the kubelet registers them: the user data's --node-labels, hostname, kubeadm's taint."""
    nodes = []
    for node in plan.nodes:
        labels = dict(kv.split("=", 1) for kv in userdata.node_labels(config, node).split(","))
        labels["kubernetes.io/hostname"] = node.name
        taints = [CONTROL_PLANE_TAINT] if node.role == "control-plane" else []
        nodes.append(Node(node.name, labels, taints))
    return nodes


def profile_values(profile: str) -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / f"values-{profile}.yaml").read_text()))


@dataclass(frozen=True)
class Rendered:
    """One object as `helm template` printed it, with the template it came from (Helm's `# Source:` line)."""

    source: str
    obj: dict[str, Any]


_DOC = re.compile(r"^---\s*$", re.MULTILINE)
_SOURCE = re.compile(r"^# Source: (\S+)$", re.MULTILINE)


def helm_template(
    chart_dir: Path,
    *values: dict[str, Any],
    release: str = "rdma",
    upgrade: bool = False,
    tmp: Path | None = None,
    kube_version: str = KUBE_VERSION,
) -> list[Rendered]:
    """Every object helm renders (hooks and tests included), with its source template, for a cluster of
    `kube_version` (what Helm reads from the server's /version on install)."""
    workdir = tmp or chart_dir.parent
    args = [HELM, "template", release, str(chart_dir), "--namespace", NAMESPACE, "--kube-version", kube_version]
    if upgrade:
        args.append("--is-upgrade")
    for i, data in enumerate(values):
        path = workdir / f"values-{release}-{i}.yaml"
        path.write_text(yaml.safe_dump(data))
        args += ["-f", str(path)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    out = []
    for doc in _DOC.split(proc.stdout):
        obj = yaml.safe_load(doc)
        if obj:
            match = _SOURCE.search(doc)
            out.append(Rendered(match.group(1) if match else "", obj))
    return out


def render(chart_dir: Path, *values: dict[str, Any], release: str = "rdma") -> list[dict[str, Any]]:
    return [r.obj for r in helm_template(chart_dir, *values, release=release)]


def own(rendered: list[Rendered]) -> list[Rendered]:
    """The umbrella chart's own objects (not the subcharts')."""
    return [r for r in rendered if not r.source.startswith("spiderpool-rdma/charts/")]


def applied_objects(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects the apply job creates, from the manifest ConfigMap, in apply order."""
    (cm,) = [o for o in rendered if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-network")]
    return [o for o in yaml.safe_load_all(cm["data"]["network.yaml"]) if o]


def all_objects(rendered: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from rendered
    yield from applied_objects(rendered)


def dranet_device_class() -> dict[str, Any]:
    """The DeviceClass of the packaged aws-dranet chart, rendered by helm from the archive alone."""
    archive = UPSTREAM_CHARTS / "aws-dranet-1.0.0.tgz"
    proc = subprocess.run(
        [HELM, "template", "x", str(archive), "--show-only", "templates/deviceclass.yaml"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(yaml.safe_load(proc.stdout))

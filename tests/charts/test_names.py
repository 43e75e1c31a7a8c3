"""The chart writes and reads the project's labels as spider_validate.names spells them, as rendered.

The chart's templates cannot import Python: this test renders every profile with the real subcharts (generated
values, the watch on) and reads the rendered objects as their consumers do (the objects the apply job creates,
node selectors and affinities, the helm test's script), so a label key typed differently anywhere fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from spider_validate import names

from cdk.ec2_types import InstanceTable
from tests import chart

PREFIX = "spiderpool-rdma/"
#: Every label key the module holds (its *_LABEL names): the only keys of ours the chart may write or select on.
LABELS = {value for key, value in vars(names).items() if key.endswith("_LABEL")}
#: A key of ours inside a string (a script's selector or jq filter): not a path or image (".../spiderpool-rdma/x").
_IN_TEXT = re.compile(r"(?<![\w./-])spiderpool-rdma/[\w.-]+")
WATCH_ON = {
    "watch": {
        "enabled": True,
        "image": {"registry": "registry.example.com", "repository": "spider-validate", "tag": "0.2.0"},
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
    }
}


def project_keys(obj: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(where, key) for each key of ours: map keys (labels, selectors, nodeSelector, annotations), the `key` of
    label and node selector requirements, and keys in strings (URL-decoded: a query's labelSelector)."""
    if isinstance(obj, dict):
        if isinstance(obj.get("key"), str) and "operator" in obj and obj["key"].startswith(PREFIX):
            yield where, obj["key"]
        for key, value in obj.items():
            if isinstance(key, str) and key.startswith(PREFIX):
                yield where, key
            yield from project_keys(value, f"{where}.{key}")
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from project_keys(item, f"{where}[{i}]")
    elif isinstance(obj, str):
        yield from ((where, m.group(0)) for m in _IN_TEXT.finditer(unquote(obj)))


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chart.packaged_copy(tmp_path_factory.mktemp("chart"))


@pytest.fixture(scope="module")
def rendered(chart_dir: Path, table: InstanceTable, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """profile -> every object: what helm renders and what its apply job creates."""
    generated = chart.generated_values("default-efa", table, tmp_path_factory.mktemp("generated"))
    out = {}
    for profile in chart.PROFILES:
        objs = [r.obj for r in chart.helm_template(chart_dir, chart.profile_values(profile), generated, WATCH_ON)]
        out[profile] = list(chart.all_objects(objs))
    return out


def named(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


@pytest.mark.parametrize("profile", chart.PROFILES)
def test_every_key_of_ours_in_the_chart_is_a_name_of_the_module(rendered: dict[str, Any], profile: str) -> None:
    unknown = {(named(o), where, key) for o in rendered[profile] for where, key in project_keys(o) if key not in LABELS}
    assert unknown == set()


def test_the_checker_sees_a_key_in_each_place_a_chart_writes_one() -> None:
    obj = {
        "metadata": {"labels": {"spiderpool-rdma/a": "x"}},
        "affinity": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "spiderpool-rdma/b", "operator": "In"}]}]},
        "script": 'curl "...?labelSelector=spiderpool-rdma%2Fc"; jq .labels["spiderpool-rdma/d"]',
        "image": "ghcr.io/spiderpool-rdma/spider-validate:1",
    }
    assert {key for _, key in project_keys(obj)} == {f"spiderpool-rdma/{k}" for k in "abcd"}


@pytest.mark.parametrize("profile", chart.PROFILES)
def test_the_network_carries_the_attachment_label_discovery_reads(rendered: dict[str, Any], profile: str) -> None:
    """validators/spider_validate/engine/discovery.py reads it from the SpiderMultusConfig it picks."""
    attachments = [
        o["metadata"].get("labels", {}).get(names.ATTACHMENT_LABEL)
        for o in rendered[profile]
        if o["kind"] == "SpiderMultusConfig" and o["spec"]["cniType"] in {"macvlan", "ipvlan"}
    ]
    assert attachments and set(attachments) <= {"default", "secondary"}


def test_sample_app_pods_carry_the_app_label_the_apps_suite_lists(rendered: dict[str, Any]) -> None:
    """validators/spider_validate/suites/apps.py lists Pods by it; the helm test's script too (checked above)."""
    apps = [o for o in rendered["aws-efa"] if o["kind"] == "Deployment" and names.APP_LABEL in o["metadata"]["labels"]]
    assert len(apps) == 3  # sample_apps.count of the default configuration
    for app in apps:
        value = app["metadata"]["labels"][names.APP_LABEL]
        assert app["spec"]["template"]["metadata"]["labels"][names.APP_LABEL] == value
        assert app["spec"]["selector"]["matchLabels"][names.APP_LABEL] == value


def node_selection(obj: dict[str, Any]) -> dict[str, list[str]]:
    """label key -> values a DaemonSet's pods require of their node: nodeSelector and required node affinity."""
    spec = obj["spec"]["template"]["spec"]
    found = {key: [value] for key, value in (spec.get("nodeSelector") or {}).items()}
    required = spec.get("affinity", {}).get("nodeAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    for term in (required or {}).get("nodeSelectorTerms", []):
        for expr in term.get("matchExpressions", []):
            found.setdefault(expr["key"], []).extend(expr.get("values", []))
    return found


@pytest.mark.parametrize(("variant", "profile"), [("default-efa", "aws-efa"), ("softroce", "aws-softroce")])
def test_device_plugins_select_nodes_by_the_rdma_label_the_bootstrap_sets(
    rendered: dict[str, Any], table: InstanceTable, tmp_path: Path, variant: str, profile: str
) -> None:
    """The workers' RDMA_LABEL as their kubelet registers it (cdk/userdata.py): the profile's device plugin selects
    it."""
    nodes = chart.cluster_nodes(*chart.planned(variant, table, tmp_path))
    workers = [n for n in nodes if n.labels[names.ROLE_LABEL] == "worker"]
    (mode,) = {n.labels[names.RDMA_LABEL] for n in workers}
    selections = [node_selection(o) for o in rendered[profile] if o["kind"] == "DaemonSet"]
    assert any(mode in s.get(names.RDMA_LABEL, []) for s in selections), mode

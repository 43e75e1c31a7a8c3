"""The chart's sample apps: they live in a namespace of their own, which enforces Pod Security, never the
release's; run on the namespace double as rendered (their container's image, args and security context; the
double's network in place of the underlay), each answers with its pod's name on every path agnhost netexec routes,
so no /shell, /upload, /dial or /exit."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests import chart
from tests.lab.cluster import LabCluster
from tests.validator.suites.test_servers_lab import NETWORK, ROUTES, answers, client, namespace, running

__all__ = ["namespace"]  # the fixture of a namespace of the double the probes run in


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The chart's own objects (not its subcharts')."""
    chart_dir = chart.packaged_copy(tmp_path_factory.mktemp("chart"))
    return [r.obj for r in chart.own(chart.helm_template(chart_dir, chart.profile_values("kind")))]


def apps_namespace(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    """The Namespace object the chart renders for its apps (the namespace of their Deployments)."""
    (apps,) = {d["metadata"]["namespace"] for d in chart.applied_objects(rendered) if d["kind"] == "Deployment"}
    namespaces = [o for o in rendered if o["kind"] == "Namespace" and o["metadata"]["name"] == apps]
    assert namespaces, f"the apps run in {apps}, a namespace the chart does not create"
    return namespaces[0]


def test_the_apps_run_apart_from_the_release_under_pod_security(rendered: list[dict[str, Any]]) -> None:
    namespace = apps_namespace(rendered)
    labels = namespace["metadata"]["labels"]
    assert namespace["metadata"]["name"] != chart.NAMESPACE
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    ours = [*rendered, *chart.applied_objects(rendered)]
    placed = {
        (o["kind"], o["metadata"].get("namespace")) for o in ours if o["kind"] in {"Deployment", "Service", "Pod"}
    }
    assert placed == {(k, namespace["metadata"]["name"]) for k in ("Deployment", "Service", "Pod")}


def test_an_app_answers_its_name_on_every_path_and_nothing_else(
    lab: LabCluster, rendered: list[dict[str, Any]], namespace: str
) -> None:
    deployment = next(d for d in chart.applied_objects(rendered) if d["kind"] == "Deployment")
    template = copy.deepcopy(deployment["spec"]["template"])
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app-0-x", "namespace": namespace, "labels": template["metadata"]["labels"],
                     "annotations": NETWORK.pod_annotations()},
        "spec": {**template["spec"], "nodeName": "lab-node-0"},
    }  # fmt: skip
    pod["spec"].pop("affinity", None)  # the double's nodes are not the profile's
    ips = running(lab, namespace, [pod, client(namespace)])
    port = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert answers(lab, namespace, "client-0", ips["app-0-x"], port) == {p: ("200", "app-0-x") for p in ROUTES}

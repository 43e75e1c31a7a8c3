"""The lab's API store knows the kinds the validator knows (spider_validate.cluster.api.KINDS), and only those.

No network namespace: a LabCluster that is not started is its API store with nothing running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spider_validate.cluster.api import KINDS, SPIDERPOOL_GROUP, ApiError, Cluster
from spider_validate.cluster.kube import KubeCluster

from tests.lab.cluster import LabCluster
from tests.validator.cluster.test_kube_client import write_kubeconfig


def obj(kind: str, name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": KINDS.get(kind, ("v1",))[0], "kind": kind, "metadata": meta, "spec": {}}


@pytest.fixture
def api(tmp_path: Path) -> LabCluster:
    return LabCluster(tmp_path)


@pytest.mark.parametrize("kind", ["Secret", "ServiceAccount", "NetworkAttachmentDefinition"])
def test_a_kind_the_validator_does_not_know_fails_as_in_the_real_client(
    api: LabCluster, kind: str, tmp_path: Path
) -> None:
    """KubeCluster looks each kind up in KINDS before it sends anything (kube.py `_resource`, `_path`): KeyError."""

    def every_call_fails(cluster: Cluster) -> None:
        for call in (
            lambda: cluster.create(obj(kind, "x", "ns")),
            lambda: cluster.get(kind, "x", "ns"),
            lambda: cluster.list(kind),
            lambda: cluster.delete(kind, "x", "ns"),
        ):
            with pytest.raises(KeyError, match=kind):
                call()

    every_call_fails(KubeCluster(write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9", {})))  # no server
    every_call_fails(api)


def test_namespaced_kinds_are_per_namespace_and_cluster_kinds_are_not(api: LabCluster) -> None:
    namespaced = [k for k, (_, _, ns) in KINDS.items() if ns and k != "Pod"]  # a pod would wait for the kubelet
    for kind in namespaced:
        api.create(obj(kind, "same", "a"))
        api.create(obj(kind, "same", "b"))
        assert [o["metadata"]["namespace"] for o in api.list(kind) if o["metadata"]["name"] == "same"] == ["a", "b"]
    api.create(obj("Namespace", "one", "ignored"))
    assert api.get("Namespace", "one") is not None and api.get("Namespace", "one", "other") is not None
    with pytest.raises(ApiError) as err:
        api.create(obj("Namespace", "one", "elsewhere"))
    assert err.value.status == 409


def test_label_selectors_and_resource_versions(api: LabCluster) -> None:
    first = api.create(obj("ConfigMap", "a", "ns", app="x", tier="web"))
    api.create(obj("ConfigMap", "b", "ns", app="y"))
    assert [o["metadata"]["name"] for o in api.list("ConfigMap", "ns", "app=x")] == ["a"]
    assert [o["metadata"]["name"] for o in api.list("ConfigMap", "ns", "tier")] == ["a"]
    assert [o["metadata"]["name"] for o in api.list("ConfigMap", "ns", "app")] == ["a", "b"]
    assert api.list("ConfigMap", "other") == []
    later = api.create(obj("ConfigMap", "c", "ns"))
    assert int(later["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])


def test_the_spiderpool_crds_include_every_spiderpool_kind_the_validator_reads(api: LabCluster) -> None:
    plurals = {f"{plural}.{SPIDERPOOL_GROUP}" for version, plural, _ in KINDS.values() if SPIDERPOOL_GROUP in version}
    assert plurals and plurals <= api.crd_names()


def test_only_pods_are_watched_as_in_the_real_client(api: LabCluster, tmp_path: Path) -> None:
    real = KubeCluster(write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9", {}))  # no server
    for cluster in (real, api):
        with pytest.raises(AssertionError, match="only watches pods"):
            next(iter(cluster.watch("ConfigMap", "ns", "", 1)))

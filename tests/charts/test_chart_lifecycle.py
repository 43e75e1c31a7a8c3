"""Install, upgrade, uninstall and reinstall of the chart as Helm drives its hooks, for several release names.

Helm's hook order comes from helm's source (tests/upstream/helm_hooks.py), Spiderpool's jobs, webhooks and pool
finalizers from Spiderpool's (tests/upstream/spiderpool.py, spiderpool_ippool.py), run on the objects the real chart
and its real subcharts render (tests/upstream/cluster.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from spider_validate.cluster import addresses

from cdk.ec2_types import InstanceTable
from tests import chart
from tests.charts.test_chart_watch import IMAGE
from tests.upstream import helm_hooks, names
from tests.upstream.cluster import Cluster, CommandFailed, install, run_hooks, run_job, uninstall

#: release names sorting before and after Spiderpool's hooks, one of Helm's maximum length (53), and two Helm accepts
#: but a Service cannot carry (a digit first, a dot: DNS-1035)
RELEASES = [
    "rdma",
    "spiderpool-rdma",
    "a",
    "zzz",
    "spiderpool",
    "release-name-as-long-as-helm-allows-fifty-three-chars",
    "1rdma",
    "rdma.v1",
]
PROFILES = ["aws-efa", "aws-softroce", "baremetal-sriov", "kind"]
CASES = [(p, r) for p in PROFILES for r in RELEASES]
IDS = [f"{p}-{r}" for p, r in CASES]
INIT = "spiderpool-init"
CLEANUP = "spiderpool-controller-hook-pre-delete"


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chart.packaged_copy(tmp_path_factory.mktemp("chart"))


@pytest.fixture(scope="module")
def values(table: InstanceTable, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    generated = chart.generated_values("default-efa", table, tmp_path_factory.mktemp("generated"))
    return {p: [chart.profile_values(p), *([generated] if p.startswith("aws-") else [])] for p in PROFILES}


@pytest.fixture(scope="module")
def renders(chart_dir: Path, values: Any) -> dict[tuple[str, str, bool], list[chart.Rendered]]:
    return {
        (p, r, upgrade): chart.helm_template(chart_dir, *values[p], release=r, upgrade=upgrade)
        for p, r in CASES
        for upgrade in (False, True)
    }


#: a name Helm accepts whose cut to 48 characters ends in a run of dashes (fullname's trimSuffix took one only)
DASHES = "a" * 45 + "---bb"


@pytest.mark.parametrize("release", [*RELEASES, DASHES])
def test_every_object_is_one_the_api_server_takes_whatever_the_release_name(release: str, chart_dir: Path) -> None:
    """Everything the chart renders, the watch and the applied apps included: each name and label value as the API
    server checks it (a Service's name starts with a letter and has no dot)."""
    watch = {"watch": {"enabled": True, "image": IMAGE}}
    rendered = chart.render(chart_dir, chart.profile_values("aws-softroce"), watch, release=release)
    assert [error for obj in chart.all_objects(rendered) for error in names.invalid(obj)] == []


def ours(rendered: list[chart.Rendered], suffix: str) -> str:
    (name,) = [r.obj["metadata"]["name"] for r in chart.own(rendered) if r.obj["kind"] == "Job" and
               r.obj["metadata"]["name"].endswith(suffix)]  # fmt: skip
    return name


@pytest.mark.parametrize(("profile", "release"), CASES, ids=IDS)
def test_hooks_run_after_spiderpool_init_and_before_its_cleanup(profile: str, release: str, renders: Any) -> None:
    rendered = renders[(profile, release, False)]
    post_install = [h.name for h in helm_hooks.execution_order(rendered, "post-install")]
    assert post_install.index(ours(rendered, "-apply")) > post_install.index(INIT)
    pre_delete = [h.name for h in helm_hooks.execution_order(rendered, "pre-delete")]
    assert pre_delete.index(ours(rendered, "-delete")) < pre_delete.index(CLEANUP)
    upgraded = renders[(profile, release, True)]
    assert ours(upgraded, "-apply") in [h.name for h in helm_hooks.execution_order(upgraded, "post-upgrade")]


def test_the_hook_model_reproduces_the_reported_luck(renders: Any) -> None:
    """With equal weights Helm orders by name: `rdma` ran its apply before spiderpool-init, `spiderpool-rdma` after."""
    for release, apply_first in (("rdma", True), ("spiderpool-rdma", False)):
        rendered = [
            chart.Rendered(r.source, {**r.obj, "metadata": {**r.obj["metadata"], "annotations": {
                k: v for k, v in (r.obj["metadata"].get("annotations") or {}).items() if k != "helm.sh/hook-weight"}}})
            for r in renders[("aws-efa", release, False)]
        ]  # fmt: skip
        order = [h.name for h in helm_hooks.execution_order(rendered, "post-install")]
        assert (order.index(ours(rendered, "-apply")) < order.index(INIT)) is apply_first


def hold_addresses(cluster: Cluster) -> None:
    """Pods on the network: CoreDNS (or any pod) in every general pool, the sample apps' pods in theirs."""
    for kind, _, name in cluster.objects:
        if kind == "SpiderIPPool":
            pool = cluster.objects[(kind, "", name)]
            app = (pool["metadata"].get("labels") or {}).get("spiderpool-rdma/app")
            deployments = [k[2] for k in cluster.objects if k[0] == "Deployment" and k[2].endswith(f"-{app}")]
            first = addresses.expand(pool["spec"]["ips"])[0]
            cluster.allocations[name] = {first: f"{deployments[0]}-5d9f-x" if app and deployments else "coredns-7db6-x"}


def network_is_ready(cluster: Cluster, rendered: list[chart.Rendered]) -> None:
    applied = chart.applied_objects([r.obj for r in rendered])
    for obj in applied:
        live = cluster.objects[cluster.key(obj)]
        assert not live["metadata"].get("deletionTimestamp"), f"{obj['kind']} {obj['metadata']['name']} terminating"
        if obj["kind"] == "SpiderMultusConfig":
            assert live["spec"]["cniType"] == obj["spec"]["cniType"] and "customCNI" not in live["spec"]


@pytest.mark.parametrize(("profile", "release"), CASES, ids=IDS)
def test_install_upgrade_uninstall_reinstall(profile: str, release: str, renders: Any) -> None:
    rendered = renders[(profile, release, False)]
    cluster = Cluster()
    install(cluster, rendered)
    network_is_ready(cluster, rendered)
    hold_addresses(cluster)
    run_hooks(cluster, renders[(profile, release, True)], "post-upgrade")
    network_is_ready(cluster, rendered)
    uninstall(cluster, rendered)
    assert not [k for k in cluster.objects if k[0].startswith("Spider")], cluster.objects.keys()
    assert not [k for k in cluster.objects if k[0] in ("Deployment", "Service")]
    assert cluster.crd_groups == set(), "Spiderpool's cleanup deletes its CRDs: the README says so"
    install(cluster, rendered)
    network_is_ready(cluster, rendered)


def test_the_model_fails_an_apply_merged_into_the_placeholder(renders: Any) -> None:
    """Without removing spiderpool-init's placeholder, the apply is refused as reported (Spiderpool issue 2700)."""
    rendered = renders[("aws-efa", "spiderpool-rdma", False)]
    cluster = Cluster()
    cluster.crd_groups |= {"spiderpool.spidernet.io", "sriovnetwork.openshift.io"}
    for hook in helm_hooks.execution_order(rendered, "post-install"):
        job = next(r.obj for r in rendered if r.obj["metadata"]["name"] == hook.name and r.obj["kind"] == "Job")
        spec = job["spec"]["template"]["spec"]
        kept = {
            **spec,
            "initContainers": [c for c in spec.get("initContainers", []) if c["name"] != "remove-placeholder"],
        }
        configmaps = {
            r.obj["metadata"]["name"]: r.obj.get("data", {}) for r in rendered if r.obj["kind"] == "ConfigMap"
        }
        if hook.name == INIT:
            run_job(cluster, job, configmaps)
        else:
            with pytest.raises(CommandFailed, match=r"the cniType ipvlan only supports spec\.ipvlanConfig"):
                run_job(cluster, {**job, "spec": {**job["spec"], "template": {"spec": kept}}}, configmaps)


def pools(cluster: Cluster) -> set[str]:
    return {k[2] for k in cluster.objects if k[0] == "SpiderIPPool"}


def node_left(cluster: Cluster, node: str) -> None:
    """A worker drained and removed: its pods are gone, so Spiderpool released their addresses in its pools."""
    for key, pool in cluster.objects.items():
        if key[0] == "SpiderIPPool" and pool["spec"].get("nodeName") == [node]:
            cluster.allocations.pop(key[2], None)
    cluster.reconcile()


@pytest.fixture(scope="module")
def by_workers(table: InstanceTable, tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """The generated values of a cluster of 2 and of 3 workers."""
    return {
        n: chart.generated_values({"workers": {"count": n}}, table, tmp_path_factory.mktemp(f"w{n}")) for n in (2, 3)
    }


@pytest.mark.parametrize("release", ["rdma", "spiderpool-rdma"])
def test_upgrade_with_a_changed_worker_count(
    release: str, chart_dir: Path, by_workers: dict[int, dict[str, Any]]
) -> None:
    """More workers: their pools and apps' pools are added, the pools in use stay as they are (Spiderpool refuses
    to remove an allocated address or to overlap pools). Fewer workers: the removed worker's pools are deleted
    (before: they stayed, and nothing ever removed them)."""
    profile = chart.profile_values("aws-efa")
    two, three = by_workers[2], by_workers[3]
    cluster = Cluster()
    install(cluster, chart.helm_template(chart_dir, profile, two, release=release))
    hold_addresses(cluster)
    before = {k: v["spec"] for k, v in cluster.objects.items() if k[0] == "SpiderIPPool"}
    upgraded = chart.helm_template(chart_dir, profile, three, release=release, upgrade=True)
    run_hooks(cluster, upgraded, "post-upgrade")
    network_is_ready(cluster, upgraded)
    after = {k: v["spec"] for k, v in cluster.objects.items() if k[0] == "SpiderIPPool"}
    assert {k[2] for k in after} - {k[2] for k in before} == {p["name"] for p in three["network"]["pools"]} - {
        p["name"] for p in two["network"]["pools"]
    }
    assert all(after[k] == spec for k, spec in before.items())
    hold_addresses(cluster)
    node_left(cluster, "worker-2")
    fewer = chart.helm_template(chart_dir, profile, two, release=release, upgrade=True)
    run_hooks(cluster, fewer, "post-upgrade")
    network_is_ready(cluster, fewer)
    assert pools(cluster) == {p["name"] for p in two["network"]["pools"]}


def applied(cluster: Cluster) -> set[tuple[str, str, str]]:
    """The objects of the cluster but spiderpool-init's default SpiderCoordinator, which no release applies."""
    return {k for k in cluster.objects if k[0] != "SpiderCoordinator"}


@pytest.mark.parametrize("release", ["rdma", "spiderpool-rdma"])
def test_rollback_restores_the_applied_pools_and_apps_and_removes_what_it_does_not_have(
    release: str, chart_dir: Path, by_workers: dict[int, dict[str, Any]]
) -> None:
    """`helm rollback` runs the post-rollback hooks of the revision it returns to, with that revision's manifest
    (helm pkg/action/rollback.go, performRollback): its apply restores what it had and prunes what it had not. Before,
    the apply job had no post-rollback hook: a rollback changed none of the applied objects."""
    profile = chart.profile_values("aws-efa")
    three_apps = chart.helm_template(chart_dir, profile, by_workers[3], release=release)
    kept = [p for p in by_workers[3]["network"]["pools"] if p.get("app") != "app-2"]
    two_apps = {**by_workers[3], "network": {"pools": kept}, "sampleApps": {"count": 2}}
    cluster = Cluster()
    install(cluster, three_apps)
    hold_addresses(cluster)
    upgraded = chart.helm_template(chart_dir, profile, two_apps, release=release, upgrade=True)
    run_hooks(cluster, upgraded, "post-upgrade")
    assert not [k for k in cluster.objects if k[0] == "Deployment" and k[2].endswith("-app-2")]
    run_hooks(cluster, three_apps, "post-rollback")  # helm rollback RELEASE 1
    network_is_ready(cluster, three_apps)
    assert applied(cluster) == {cluster.key(o) for o in chart.applied_objects([r.obj for r in three_apps])}
    run_hooks(cluster, upgraded, "post-rollback")  # helm rollback RELEASE 2
    network_is_ready(cluster, upgraded)
    assert applied(cluster) == {cluster.key(o) for o in chart.applied_objects([r.obj for r in upgraded])}


def test_the_pool_webhook_model_refuses_removing_an_address_in_use() -> None:
    """What an upgrade may not do to a pool: take out an address a pod holds, or share one with another pool."""
    cluster = Cluster(crd_groups={"spiderpool.spidernet.io"})
    spec = {"subnet": "10.0.0.0/24", "ips": ["10.0.0.1-10.0.0.4"]}
    cluster.apply({"kind": "SpiderIPPool", "metadata": {"name": "p"}, "spec": spec})
    cluster.allocations["p"] = {"10.0.0.4": "ns/pod"}
    with pytest.raises(
        CommandFailed, match=re.escape("remove an IP address 10.0.0.4 that is being used by Pod ns/pod")
    ):
        cluster.apply(
            {"kind": "SpiderIPPool", "metadata": {"name": "p"}, "spec": spec | {"ips": ["10.0.0.1-10.0.0.3"]}}
        )
    with pytest.raises(CommandFailed, match=r"overlap with IPPool p in IP ranges \[10.0.0.1-10.0.0.4\]"):
        cluster.apply({"kind": "SpiderIPPool", "metadata": {"name": "q"}, "spec": spec | {"ips": ["10.0.0.4"]}})


@pytest.mark.parametrize(("profile", "release"), CASES, ids=IDS)
def test_names_fit_kubernetes_limits(profile: str, release: str, renders: Any) -> None:
    """Job and Service names are DNS labels (63 characters; a Job's name is also its pods' job-name label)."""
    rendered = renders[(profile, release, False)]
    objs = [r.obj for r in chart.own(rendered)]
    for obj in objs + chart.applied_objects(objs):
        name = obj["metadata"]["name"]
        assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), (obj["kind"], name)

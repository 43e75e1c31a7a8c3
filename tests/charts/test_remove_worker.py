"""Removing a worker, as README "Remove or replace workers" orders it: drain (its pods go, Spiderpool releases their
addresses), then `helm upgrade` with the values of one worker fewer, whose apply job prunes what the release no longer
renders (charts/spiderpool-rdma/templates/network-apply.yaml). Spiderpool's rules from tests/upstream/spiderpool.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import chart

# the fixtures of the chart's lifecycle tests: the packaged chart, the generated values of 2 and of 3 workers
from tests.charts.test_chart_lifecycle import by_workers, chart_dir, hold_addresses, node_left, pools  # noqa: F401
from tests.upstream.cluster import Cluster, install, run_hooks


def removed_worker(chart_path: Path, values: dict[int, dict[str, Any]], drained: bool) -> tuple[Cluster, set[str]]:
    """A cluster of 3 workers with pods on every pool, worker-2 removed (drained or not), upgraded to 2 workers."""
    profile = chart.profile_values("aws-efa")
    cluster = Cluster()
    install(cluster, chart.helm_template(chart_path, profile, values[3], release="rdma"))
    hold_addresses(cluster)
    if drained:
        node_left(cluster, "worker-2")
    before = {name: dict(held) for name, held in cluster.allocations.items()}
    run_hooks(
        cluster, chart.helm_template(chart_path, profile, values[2], release="rdma", upgrade=True), "post-upgrade"
    )
    unchanged = {name for name, held in before.items() if cluster.allocations.get(name) == held}
    return cluster, unchanged


def test_the_upgrade_removes_exactly_the_drained_workers_pools_and_no_other_pods_address(
    chart_dir: Path,  # noqa: F811
    by_workers: dict[int, dict[str, Any]],  # noqa: F811
) -> None:
    cluster, unchanged = removed_worker(chart_dir, by_workers, drained=True)
    three = {p["name"] for p in by_workers[3]["network"]["pools"]}
    two = {p["name"] for p in by_workers[2]["network"]["pools"]}
    assert pools(cluster) == two
    assert three - two and all(name.startswith("worker-2-") for name in three - two)
    assert unchanged >= two  # every remaining pool still holds its pods' addresses


def test_a_worker_removed_without_a_drain_keeps_its_pool_until_its_pods_go(
    chart_dir: Path,  # noqa: F811
    by_workers: dict[int, dict[str, Any]],  # noqa: F811
) -> None:
    """Spiderpool keeps a pool while an address of it is allocated (its finalizer): the prune marks it deleted, and
    nothing of another worker changes."""
    cluster, unchanged = removed_worker(chart_dir, by_workers, drained=False)
    two = {p["name"] for p in by_workers[2]["network"]["pools"]}
    left = pools(cluster) - two
    assert left and all(name.startswith("worker-2-") for name in left)
    assert all(cluster.objects[("SpiderIPPool", "", name)]["metadata"].get("deletionTimestamp") for name in left)
    assert unchanged >= two

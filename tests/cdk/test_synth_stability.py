"""A re-synth of an unchanged configuration changes nothing; a worker-count change leaves the other nodes alone.

Why it matters: the AWS provider applies a change of `user_data_base64` by stopping and starting the instance
(terraform-provider-aws internal/service/ec2/ec2_instance.go, resourceInstanceUpdate: "user_data" changes
call stopInstance / ModifyInstanceAttribute / startInstance), so every byte of drift restarts a node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdk import userdata
from cdk.config import ClusterConfig
from cdk.ipplan import make_plan
from tests.conftest import synthesize


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.synth
def test_synthesizing_twice_gives_identical_bytes(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump({"control_plane": {"count": 3}}))
    first, second = tmp_path / "a", tmp_path / "b"
    assert synthesize(first, config) == 0
    assert synthesize(second, config) == 0
    a, b = files_of(first), files_of(second)
    assert sorted(a) == sorted(b)
    assert [name for name in a if a[name] != b[name]] == []


def with_workers(count: int, **workers: Any) -> ClusterConfig:
    return ClusterConfig.model_validate({"control_plane": {"count": 3}, "workers": {"count": count, **workers}})


@pytest.mark.parametrize(("before", "after"), [(2, 3), (2, 1), (4, 12)])
def test_changing_the_worker_count_leaves_other_nodes_user_data_and_pools_alone(before: int, after: int) -> None:
    old, new = with_workers(before), with_workers(after)
    old_plan, new_plan = make_plan(old), make_plan(new)
    assert old_plan.pod_block == new_plan.pod_block
    kept = [n for n in old_plan.nodes if n.role == "control-plane" or n.index < after]
    new_nodes = {n.name: n for n in new_plan.nodes}
    for node in kept:
        assert new_nodes[node.name] == node
        assert userdata.user_data_base64(old, old_plan, node) == userdata.user_data_base64(
            new, new_plan, new_nodes[node.name]
        ), node.name
    kept_pools = {p.name: p for p in old_plan.pools if p.node_name in new_nodes}
    assert {p.name: p for p in new_plan.pools if p.name in kept_pools} == kept_pools


def test_instances_ignore_user_data_drift(synthesized: dict[str, Any]) -> None:
    for inst in synthesized["default-efa"].resources("aws_instance").values():
        assert set(inst["lifecycle"]["ignore_changes"]) == {"ami", "user_data_base64"}


@pytest.mark.synth
def test_adding_a_worker_only_adds_resources(tmp_path: Path) -> None:
    """Terraform's plan after `workers.count` 2 -> 3: every resource of the smaller stack unchanged, byte for byte."""
    stacks = []
    for count in (2, 3):
        config = tmp_path / f"cluster-{count}.yaml"
        config.write_text(yaml.safe_dump({"control_plane": {"count": 3}, "workers": {"count": count}}))
        assert synthesize(tmp_path / str(count), config) == 0
        stacks.append(json.loads((tmp_path / str(count) / "stacks" / "spiderpool-rdma" / "cdk.tf.json").read_text()))
    small, large = stacks
    for rtype, resources in small["resource"].items():
        for name, body in resources.items():
            assert large["resource"][rtype].get(name) == body, f"{rtype}.{name} changes"
    added = {(t, n) for t, rs in large["resource"].items() for n in rs} - {
        (t, n) for t, rs in small["resource"].items() for n in rs
    }
    assert {t for t, _ in added} == {"aws_network_interface", "aws_instance"}

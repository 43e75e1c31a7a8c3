"""The IP plan: prefixes inside the reserved block, no overlap between nodes, pools equal to prefixes."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from spider_validate.cluster import addresses

from cdk.config import ClusterConfig, ConfigError, Workers, load_config
from cdk.ec2_types import InstanceTable
from cdk.ipplan import address_ranges, load_plan, make_plan

CONFIGS = {
    "default": ClusterConfig(),
    "many-workers": ClusterConfig(workers=Workers(count=12, ipv4_prefixes=5)),
    "one-prefix": ClusterConfig(workers=Workers(count=1, ipv4_prefixes=1)),
    "ha": ClusterConfig.model_validate(
        {
            "control_plane": {"count": 3},
            "workers": {"count": 64, "ipv4_prefixes": 7},
            "node_subnet_cidr": "10.42.0.0/17",
            "public_subnet_cidr": "10.42.128.0/24",
        }
    ),
}


def expand(ranges: list[str]) -> set[IPv4Address]:
    return {IPv4Address(ip) for ip in addresses.expand(ranges)}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_prefixes_are_aligned_inside_the_reserved_block_and_disjoint(config: ClusterConfig) -> None:
    plan = make_plan(config)
    assert plan.pod_block.subnet_of(plan.node_subnet)
    # AWS reserves the subnet's first four and last address: the block must hold none of them.
    assert int(plan.pod_block.network_address) >= int(plan.node_subnet.network_address) + 4
    assert plan.pod_block.broadcast_address < plan.node_subnet.broadcast_address
    all_prefixes = [p for n in plan.nodes for p in n.prefixes]
    assert len(all_prefixes) == (
        config.workers.count * config.workers.ipv4_prefixes
        + config.control_plane.count * config.control_plane.ipv4_prefixes
    )
    for p in all_prefixes:
        assert p.prefixlen == 28 and p.subnet_of(plan.pod_block)
    for a, b in itertools.combinations(all_prefixes, 2):
        assert not a.overlaps(b)


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_node_addresses_are_unique_and_outside_the_pod_block(config: ClusterConfig) -> None:
    plan = make_plan(config)
    ips = [n.private_ip for n in plan.nodes]
    assert len(set(ips)) == len(ips) == config.control_plane.count + config.workers.count
    for ip in ips:
        assert ip in plan.node_block and ip not in plan.pod_block
        assert int(ip) - int(plan.node_subnet.network_address) >= 4
    assert plan.node_block.subnet_of(plan.node_subnet) and not plan.node_block.overlaps(plan.pod_block)
    # Neither block holds an address AWS reserves: the subnet's first four and its last.
    for block in (plan.node_block, plan.pod_block):
        assert int(block.network_address) >= int(plan.node_subnet.network_address) + 4
        assert block.broadcast_address < plan.node_subnet.broadcast_address


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_every_nodes_pools_cover_exactly_its_prefixes(config: ClusterConfig) -> None:
    """Control planes too: CoreDNS tolerates their taint and ipvlan is every pod's network (issue 10.4)."""
    plan = make_plan(config)
    assert {p.node_name for p in plan.pools} == {n.name for n in plan.nodes}
    for node in plan.nodes:
        pools = [p for p in plan.pools if p.node_name == node.name]
        assert node.prefixes and all(p.prefixlen == 28 for p in node.prefixes)
        covered = [expand(p.ranges) for p in pools]
        for a, b in itertools.combinations(covered, 2):
            assert not a & b
        prefix_ips = {ip for prefix in node.prefixes for ip in prefix}
        assert set().union(*covered) == prefix_ips
        (general,) = [p for p in pools if p.app is None]
        assert general.name == f"{node.name}-general"
        apps = {p.app for p in pools if p.app}
        assert apps == (set(plan.app_names) if node.role == "worker" else set())
        for p in pools:
            if p.app:
                assert len(expand(p.ranges)) == config.sample_apps.ips_per_node


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_pods_gateway_is_the_vpc_router(config: ClusterConfig) -> None:
    """AWS reserves the subnet's base + 1 for the VPC router (VPC user guide, subnet-sizing.html): with ipvlan
    the pods' next hop is that router, as the host's."""
    plan = make_plan(config)
    router = config.node_subnet_cidr.network_address + 1
    assert {p.gateway for p in plan.pools} == {router}
    assert {p.subnet for p in plan.pools} == {config.node_subnet_cidr}


def test_prefixes_of_a_node_do_not_move_when_other_nodes_come_or_go() -> None:
    small = make_plan(ClusterConfig.model_validate({"workers": {"count": 1}}))
    large = make_plan(ClusterConfig.model_validate({"control_plane": {"count": 3}, "workers": {"count": 20}}))
    assert small.pod_block == large.pod_block
    for node in small.nodes:
        assert node in large.nodes


def test_pool_names_are_unique_and_valid_kubernetes_names() -> None:
    plan = make_plan(CONFIGS["ha"])
    names = [p.name for p in plan.pools]
    assert len(set(names)) == len(names)
    assert all(len(n) <= 63 and n.replace("-", "").isalnum() and n == n.lower() for n in names)


def test_address_ranges_compress_runs() -> None:
    ips = [IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"), IPv4Address("10.0.0.3"), IPv4Address("10.0.0.7")]
    assert address_ranges(ips) == ["10.0.0.1-10.0.0.3", "10.0.0.7"]
    assert expand(address_ranges(ips)) == set(ips)


def test_load_plan_reports_a_subnet_too_small_as_a_configuration_problem(
    write_config: Callable[[dict[str, Any]], Path], table: InstanceTable
) -> None:
    path = write_config({"node_subnet_cidr": "10.42.0.0/27", "workers": {"count": 4}})
    assert load_config(path, table).workers.count == 4  # the configuration alone is valid: the plan does not fit
    with pytest.raises(ConfigError) as err:
        load_plan(path, table)
    assert err.value.source == str(path)
    assert err.value.problems == [
        "node_subnet_cidr: 10.42.0.0/27 is too small for 4 workers x 2 /28 prefixes and 1 control planes x 1: "
        "the pod block (the subnet's third quarter) holds 0; use a /22 or larger"
    ]


def test_the_plan_is_asked_only_of_an_otherwise_valid_configuration(
    write_config: Callable[[dict[str, Any]], Path], table: InstanceTable
) -> None:
    """The blocks of an invalid configuration mean nothing: its own problems come, without the plan's."""
    path = write_config({"node_subnet_cidr": "10.42.0.0/27", "workers": {"count": 4}, "tags": {"aws:team": "x"}})
    with pytest.raises(ConfigError) as err:
        load_plan(path, table)
    assert err.value.problems == ["tags: key 'aws:team' starts with 'aws:', which AWS reserves for its own tags"]


def test_load_plan_plans_the_loaded_configuration(
    write_config: Callable[[dict[str, Any]], Path], table: InstanceTable
) -> None:
    path = write_config({"control_plane": {"count": 3}, "workers": {"count": 5}})
    config, plan = load_plan(path, table)
    assert config == load_config(path, table) and plan == make_plan(config)

"""The IP plan: node addresses, the reserved pod block, ENI prefixes per node, pools per node and app.

Pure functions of the configuration (stdlib ipaddress only), so the whole plan is testable without
synthesizing. On AWS a pod address only works on the node whose ENI holds its /28 prefix, so every
pool is per node, and the pools of one node together cover exactly that node's prefixes. `load_plan` is the
one place that reads a cluster.yaml and plans it.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Literal

from cdk.config import PREFIX_SIZE, ClusterConfig, ConfigError, load_config
from cdk.ec2_types import InstanceTable

Role = Literal["control-plane", "worker"]

FIRST_NODE_OFFSET = 10  # node addresses start at the node block + 10
MAX_CONTROL_PLANES = 3  # control planes take the first addresses, workers the ones after all of them
UNDERLAY_INTERFACE = "ens5"  # the primary ENI's name on Nitro instances running Ubuntu


@dataclass(frozen=True)
class Pool:
    """One SpiderIPPool: a node's addresses for the general pool or for one sample app."""

    name: str
    node_name: str
    subnet: IPv4Network
    gateway: IPv4Address
    addresses: tuple[IPv4Address, ...]
    app: str | None = None  # None for the node's general (default) pool

    @property
    def ranges(self) -> list[str]:
        return address_ranges(self.addresses)


@dataclass(frozen=True)
class Node:
    name: str
    role: Role
    index: int
    private_ip: IPv4Address
    prefixes: tuple[IPv4Network, ...] = ()


@dataclass(frozen=True)
class IpPlan:
    vpc: IPv4Network
    node_subnet: IPv4Network
    public_subnet: IPv4Network
    pod_block: IPv4Network  # reserved in the node subnet for ENI prefixes only
    node_block: IPv4Network  # reserved in the node subnet for the nodes' fixed addresses
    gateway: IPv4Address
    control_planes: tuple[Node, ...]
    workers: tuple[Node, ...]
    pools: tuple[Pool, ...]
    app_names: tuple[str, ...]

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.control_planes + self.workers


def address_ranges(addresses: tuple[IPv4Address, ...] | list[IPv4Address]) -> list[str]:
    """Compress sorted addresses into Spiderpool `ips` entries: single IPs or `a-b` ranges."""
    out: list[str] = []
    run: list[IPv4Address] = []
    for ip in sorted(addresses):
        if run and int(ip) != int(run[-1]) + 1:
            out.append(_range(run))
            run = []
        run.append(ip)
    if run:
        out.append(_range(run))
    return out


def _range(run: list[IPv4Address]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def _quarter(config: ClusterConfig, index: int) -> IPv4Network | None:
    quarter = config.node_subnet_cidr.prefixlen + 2
    if quarter > 28:
        return None
    return list(config.node_subnet_cidr.subnets(new_prefix=quarter))[index]


def pod_block(config: ClusterConfig) -> IPv4Network | None:
    """The third quarter of the node subnet: its place and size do not depend on how many nodes there are.

    A fixed block keeps every node's prefixes, and the block itself (in every node's user data), where they are
    when nodes are added or removed. The first and last quarters hold AWS's reserved addresses (the first four,
    the last) and whatever AWS assigns by itself, such as the load balancer's addresses.
    """
    return _quarter(config, 2)


def node_block(config: ClusterConfig) -> IPv4Network | None:
    """The second quarter of the node subnet: the nodes' fixed addresses, reserved so AWS gives them to nothing else
    (a load balancer created at the same time, or later, would otherwise take any free address)."""
    return _quarter(config, 1)


def prefixes_needed(config: ClusterConfig) -> int:
    return (
        config.workers.count * config.workers.ipv4_prefixes
        + config.control_plane.count * config.control_plane.ipv4_prefixes
    )


def plan_problems(config: ClusterConfig) -> list[str]:
    """Why the plan cannot be made from this configuration (empty when it can)."""
    block = pod_block(config)
    capacity = 0 if block is None else block.num_addresses // PREFIX_SIZE
    needed = prefixes_needed(config)
    if needed > capacity:
        quarter = 32 - max(needed * PREFIX_SIZE - 1, 1).bit_length()
        return [
            f"node_subnet_cidr: {config.node_subnet_cidr} is too small for {config.workers.count} workers x "
            f"{config.workers.ipv4_prefixes} /28 prefixes and {config.control_plane.count} control planes x "
            f"{config.control_plane.ipv4_prefixes}: the pod block (the subnet's third quarter) holds {capacity}; "
            f"use a /{quarter - 2} or larger"
        ]
    nodes = node_block(config)
    assert nodes is not None
    if FIRST_NODE_OFFSET + _node_count(config) > nodes.num_addresses:
        return [
            f"node_subnet_cidr: {config.node_subnet_cidr} has no room for {_node_count(config)} node addresses "
            f"in its second quarter {nodes} (from +{FIRST_NODE_OFFSET}); use a larger subnet"
        ]
    return []


def _node_count(config: ClusterConfig) -> int:
    return MAX_CONTROL_PLANES + config.workers.count


def node_name(role: Role, index: int) -> str:
    return f"{role}-{index}"


def node_prefixes(config: ClusterConfig, role: Role, index: int) -> tuple[IPv4Network, ...]:
    """A node's /28 prefixes: workers from the start of the pod block, control planes from its end.

    Each node's slice depends only on its role, index and its role's prefix count, so adding or removing
    workers or control planes never moves another node's prefixes.
    """
    block = pod_block(config)
    assert block is not None, "validated by plan_problems"
    all_prefixes = list(block.subnets(new_prefix=28))
    if role == "worker":
        per = config.workers.ipv4_prefixes
        return tuple(all_prefixes[index * per : (index + 1) * per])
    per = config.control_plane.ipv4_prefixes
    end = len(all_prefixes) - index * per
    return tuple(all_prefixes[end - per : end])


def app_names(config: ClusterConfig) -> tuple[str, ...]:
    return tuple(f"app-{i}" for i in range(config.sample_apps.count))


def node_pools(config: ClusterConfig, node: Node, gateway: IPv4Address) -> list[Pool]:
    """On workers a pool per sample app (the node's first addresses), then the general default pool (the rest).

    Control planes get only the general pool: CoreDNS and other pods that tolerate their taint need addresses.
    """
    addresses = [ip for prefix in node.prefixes for ip in prefix]
    per_app = config.sample_apps.ips_per_node
    pools = []
    for i, app in enumerate(app_names(config) if node.role == "worker" else ()):
        chunk = tuple(addresses[i * per_app : (i + 1) * per_app])
        pools.append(Pool(f"{node.name}-{app}", node.name, config.node_subnet_cidr, gateway, chunk, app))
    rest = tuple(addresses[len(pools) * per_app :])
    pools.append(Pool(f"{node.name}-general", node.name, config.node_subnet_cidr, gateway, rest))
    return pools


def make_plan(config: ClusterConfig) -> IpPlan:
    """The whole IP plan of a valid configuration (`load_plan` checks both)."""
    assert not plan_problems(config), plan_problems(config)
    block = pod_block(config)
    assert block is not None
    nodes = node_block(config)
    assert nodes is not None
    base = nodes.network_address + FIRST_NODE_OFFSET
    control_planes = tuple(
        Node(node_name("control-plane", i), "control-plane", i, base + i, node_prefixes(config, "control-plane", i))
        for i in range(config.control_plane.count)
    )
    first_worker = base + MAX_CONTROL_PLANES  # workers keep their addresses when control planes come or go
    workers = tuple(
        Node(node_name("worker", i), "worker", i, first_worker + i, node_prefixes(config, "worker", i))
        for i in range(config.workers.count)
    )
    gateway = config.node_subnet_cidr.network_address + 1  # the VPC router
    pools = tuple(pool for node in control_planes + workers for pool in node_pools(config, node, gateway))
    return IpPlan(
        vpc=config.vpc_cidr,
        node_subnet=config.node_subnet_cidr,
        public_subnet=config.public_subnet_cidr,
        pod_block=block,
        node_block=nodes,
        gateway=gateway,
        control_planes=control_planes,
        workers=workers,
        pools=pools,
        app_names=app_names(config),
    )


def load_plan(path: Path, table: InstanceTable) -> tuple[ClusterConfig, IpPlan]:
    """Load a cluster.yaml and plan it; raise ConfigError listing every problem, as `config.load_config` does.

    What does not fit in the node subnet is asked only of a configuration without other problems (the blocks
    of an invalid subnet mean nothing), so its message comes alone.
    """
    config = load_config(path, table)
    problems = plan_problems(config)
    if problems:
        raise ConfigError(str(path), problems)
    return config, make_plan(config)

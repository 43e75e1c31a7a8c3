"""The IP plan: node addresses, the reserved pod block, ENI prefixes per worker, pools per node and app.

Pure functions of the configuration (stdlib ipaddress only), so the whole plan is testable without
synthesizing. On AWS a pod address only works on the node whose ENI holds its /28 prefix, so every
pool is per node, and the pools of one node together cover exactly that node's prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdk.config import ClusterConfig

PREFIX_SIZE = 16  # addresses in one /28 ENI prefix

FIRST_NODE_OFFSET = 10  # node addresses start at subnet + 10, past AWS's reserved first four
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
    role: str  # control-plane | worker
    index: int
    private_ip: IPv4Address
    prefixes: tuple[IPv4Network, ...] = ()


@dataclass(frozen=True)
class IpPlan:
    vpc: IPv4Network
    node_subnet: IPv4Network
    public_subnet: IPv4Network
    pod_block: IPv4Network  # reserved in the node subnet for ENI prefixes only
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


def pod_block_prefixlen(config: ClusterConfig) -> int:
    """The smallest block that holds every worker's /28 prefixes."""
    needed = config.workers.count * config.workers.ipv4_prefixes * PREFIX_SIZE
    prefixlen = 32
    while (1 << (32 - prefixlen)) < needed:
        prefixlen -= 1
    return min(prefixlen, 28)


def pod_block(config: ClusterConfig) -> IPv4Network:
    """The second-to-last aligned block of the node subnet: clear of AWS's reserved first and last addresses."""
    blocks = list(config.node_subnet_cidr.subnets(new_prefix=pod_block_prefixlen(config)))
    return blocks[-2]


def plan_problems(config: ClusterConfig) -> list[str]:
    """Why the plan cannot be made from this configuration (empty when it can)."""
    new_prefix = pod_block_prefixlen(config)
    if config.node_subnet_cidr.prefixlen > new_prefix - 2:  # room for nodes below the block
        return [
            f"node_subnet_cidr: {config.node_subnet_cidr} is too small for {config.workers.count} workers x "
            f"{config.workers.ipv4_prefixes} /28 prefixes (a /{new_prefix} block plus room for the nodes); "
            f"use a /{new_prefix - 2} or larger"
        ]
    block = pod_block(config)
    last_node = config.node_subnet_cidr.network_address + FIRST_NODE_OFFSET + _node_count(config)
    if last_node >= block.network_address:
        return [
            f"node_subnet_cidr: {config.node_subnet_cidr} has no room for {_node_count(config)} node addresses "
            f"below the reserved pod block {block}; use a larger subnet"
        ]
    return []


def _node_count(config: ClusterConfig) -> int:
    return config.control_plane.count + config.workers.count


def node_name(role: str, index: int) -> str:
    return f"{role}-{index}"


def worker_prefixes(config: ClusterConfig, index: int) -> tuple[IPv4Network, ...]:
    """Worker `index`'s /28 prefixes: consecutive slices of the reserved pod block."""
    per = config.workers.ipv4_prefixes
    all_prefixes = list(pod_block(config).subnets(new_prefix=28))
    return tuple(all_prefixes[index * per : (index + 1) * per])


def app_names(config: ClusterConfig) -> tuple[str, ...]:
    return tuple(f"app-{i}" for i in range(config.sample_apps.count))


def worker_pools(config: ClusterConfig, worker: Node, gateway: IPv4Address) -> list[Pool]:
    """A pool per sample app (the first addresses of the node), then the general pool (the rest)."""
    addresses = [ip for prefix in worker.prefixes for ip in prefix]
    per_app = config.sample_apps.ips_per_node
    pools = []
    for i, app in enumerate(app_names(config)):
        chunk = tuple(addresses[i * per_app : (i + 1) * per_app])
        pools.append(Pool(f"{worker.name}-{app}", worker.name, config.node_subnet_cidr, gateway, chunk, app))
    rest = tuple(addresses[len(pools) * per_app :])
    pools.append(Pool(f"{worker.name}-general", worker.name, config.node_subnet_cidr, gateway, rest))
    return pools


def make_plan(config: ClusterConfig) -> IpPlan:
    """The whole IP plan; the configuration must already be valid (see config.validate)."""
    assert not plan_problems(config), plan_problems(config)
    base = config.node_subnet_cidr.network_address + FIRST_NODE_OFFSET
    control_planes = tuple(
        Node(node_name("control-plane", i), "control-plane", i, base + i) for i in range(config.control_plane.count)
    )
    first_worker = base + config.control_plane.count
    workers = tuple(
        Node(node_name("worker", i), "worker", i, first_worker + i, worker_prefixes(config, i))
        for i in range(config.workers.count)
    )
    gateway = config.node_subnet_cidr.network_address + 1  # the VPC router
    pools = tuple(pool for w in workers for pool in worker_pools(config, w, gateway))
    return IpPlan(
        vpc=config.vpc_cidr,
        node_subnet=config.node_subnet_cidr,
        public_subnet=config.public_subnet_cidr,
        pod_block=pod_block(config),
        gateway=gateway,
        control_planes=control_planes,
        workers=workers,
        pools=pools,
        app_names=app_names(config),
    )

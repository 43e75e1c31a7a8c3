"""The IMDS guard for real: a pod (a macvlan slave, made by the real CNI macvlan plugin) of a node's parent interface
asks an instance metadata service that exists only in a namespace beyond that parent; real nft loads the rule file
the bootstrap installed, as the unit it enabled runs it at boot. The pod's request is dropped, the node's answered.

This kernel has no ipvlan, which the cluster's pods use: both send through the parent's transmit path, macvlan's
`macvlan_queue_xmit` (skb->dev = lowerdev; dev_queue_xmit_accel) as ipvlan's `ipvlan_xmit_mode_l2` (skb->dev =
phy_dev; dev_queue_xmit), and __dev_queue_xmit runs the parent's netdev egress hook first (net/core/dev.c). Where they
differ: ipvlan slaves share the parent's MAC (EC2 accepts nothing else), and ipvlan's L3 mode routes in the node's
namespace (ipvlan_process_v4_outbound: ip_local_out) before the same dev_queue_xmit, so that hook sees it too.

Every namespace, link and process here carries this run's prefix (tests/lab/netns.py) and is removed afterwards;
169.254.169.254 exists only inside the test's "vpc" namespace, which holds no route to anywhere else.
"""

from __future__ import annotations

import configparser
import json
import secrets
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cdk.config import ClusterConfig
from cdk.ipplan import make_plan
from tests.bootstrap.sandbox import Keys, Sandbox, make_sandbox
from tests.lab import netns

IMDS = "169.254.169.254"
IMDS6 = "fd00:ec2::254"  # the IPv6 endpoint of IMDS on Nitro instances
CONFIG = ClusterConfig()
NODE = "control-plane-0"  # bootstraps alone; its pods (CoreDNS) are ipvlan slaves with prefix addresses as well
TABLE = "spiderpool_rdma_imds"
POD6 = "fd00:42::3"  # a pod's IPv6 address, as if the subnet had IPv6


@dataclass
class Network:
    """A node's namespace with its ENI (`ens5`), a pod on it, and the VPC beyond it where IMDS answers."""

    node: str
    pod: str
    vpc: str
    node_ip: str
    pod_ip: str

    def answered(self, ns: str, host: str = IMDS, seconds: int = 15) -> bool:
        """Whether an IMDS request gets the answer within `seconds` (generous: a busy machine answers late, and an
        answered request returns at once); a dropped one gets none."""
        url = f"http://[{host}]/latest/meta-data/" if ":" in host else f"http://{host}/latest/meta-data/"
        proc = netns.sh("curl", "-sS", "--max-time", str(seconds), url, ns=ns, check=False, timeout=seconds + 15)
        return proc.returncode == 0 and proc.stdout == "iam/\n"

    def refused(self, ns: str, host: str = IMDS) -> bool:
        """No answer within 3 s, and the guard's counters counted the request: dropped by the guard, not lost."""
        before = self.dropped()
        return not self.answered(ns, host, seconds=3) and self.dropped() > before

    def dropped(self) -> int:
        """Packets the guard's rules dropped so far (0 without the table)."""
        listing = netns.sh("nft", "-j", "list", "table", "netdev", TABLE, ns=self.node, check=False)
        if listing.returncode != 0:
            return 0
        rules = [item["rule"] for item in json.loads(listing.stdout)["nftables"] if "rule" in item]
        return sum(e["counter"]["packets"] for r in rules for e in r["expr"] if "counter" in e)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    netns.sweep_dead()
    prefix = f"{netns.PREFIX}{secrets.token_hex(2)}"
    owner = netns.Owner(prefix)
    plan = make_plan(CONFIG)
    node = next(n for n in plan.nodes if n.name == NODE)
    net = Network(f"{prefix}-node", f"{prefix}-pod", f"{prefix}-vpc", str(node.private_ip), str(node.prefixes[0][3]))
    try:
        for ns in (net.node, net.pod, net.vpc):
            netns.add_netns(ns)
        # The ENI: one end in the node's namespace named as the bootstrap names it, the other end is the VPC.
        netns.sh("ip", "link", "add", f"{prefix}e", "type", "veth", "peer", "name", f"{prefix}v")
        netns.sh("ip", "link", "set", f"{prefix}e", "netns", net.node)
        netns.sh("ip", "link", "set", f"{prefix}v", "netns", net.vpc)
        netns.sh("ip", "link", "set", f"{prefix}e", "name", "ens5", ns=net.node)
        netns.sh("ip", "link", "set", f"{prefix}v", "name", "eth0", ns=net.vpc)
        subnet = plan.node_subnet.prefixlen
        netns.sh("ip", "addr", "add", f"{net.node_ip}/{subnet}", "dev", "ens5", ns=net.node)
        netns.sh("ip", "link", "set", "ens5", "up", ns=net.node)
        netns.sh("ip", "route", "add", f"{IMDS}/32", "dev", "ens5", ns=net.node)
        netns.sh("ip", "addr", "add", f"{IMDS}/32", "dev", "eth0", ns=net.vpc)
        netns.sh("ip", "link", "set", "eth0", "up", ns=net.vpc)
        netns.sh("ip", "route", "add", str(plan.node_subnet), "dev", "eth0", ns=net.vpc)
        netns.sh("ip", "addr", "add", f"{IMDS6}/64", "dev", "eth0", "nodad", ns=net.vpc)
        netns.sh("ip", "route", "add", f"{POD6}/128", "dev", "eth0", ns=net.vpc)
        # The pod: an address of the node's first ENI prefix, on a slave of ens5 made by the CNI plugin.
        netns.cni(
            "ADD",
            "macvlan",
            net.node,
            net.pod,
            "imds-guard",
            "eth0",
            {
                "cniVersion": "1.0.0",
                "name": "pods",
                "type": "macvlan",
                "master": "ens5",
                "mode": "bridge",
                "ipam": {"type": "static", "addresses": [{"address": f"{net.pod_ip}/{subnet}"}]},
            },
        )
        netns.sh("ip", "route", "add", f"{IMDS}/32", "dev", "eth0", ns=net.pod)
        netns.sh("ip", "addr", "add", f"{POD6}/64", "dev", "eth0", "nodad", ns=net.pod)
        netns.sh("ip", "route", "add", f"{IMDS6}/128", "dev", "eth0", ns=net.pod)
        (tmp_path / "www/latest/meta-data").mkdir(parents=True)
        (tmp_path / "www/latest/meta-data/index.html").write_text("iam/\n")
        for address in (IMDS, IMDS6):
            server = ["python3", "-m", "http.server", "80", "--bind", address, "--directory", str(tmp_path / "www")]
            netns.spawn(net.vpc, server, tmp_path / "imds.log")
        assert listening(net.vpc, [f"{IMDS}:80", f"[{IMDS6}]:80"]), (tmp_path / "imds.log").read_text()
        assert net.answered(net.pod) and net.answered(net.pod, IMDS6), "the test's IMDS must answer a pod at first"
        yield net
    finally:
        netns.sweep(prefix)
        owner.release()
        assert netns.lab_namespaces(prefix) == []


def listening(ns: str, addresses: list[str], seconds: float = 30) -> bool:
    """Whether TCP servers in the namespace listen on every one of `addresses` within the deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sockets = netns.sh("ss", "-ltnH", ns=ns, check=False).stdout
        if all(f" {address} " in sockets for address in addresses):
            return True
        time.sleep(0.05)
    return False


def boot(sb: Sandbox, node_ns: str) -> list[str]:
    """What systemd starts before the kubelet at boot: the units the kubelet requires, as `systemctl enable` linked
    them in the sandbox's root, each ExecStart run in the node's namespace (its files read from the sandbox)."""
    started = []
    for link in sorted((sb.root / "etc/systemd/system/kubelet.service.requires").glob("*.service")):
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.read_string((sb.root / "etc/systemd/system" / link.name).read_text())
        args = shlex.split(unit["Service"]["ExecStart"])
        args = [str(sb.root) + a if a.startswith("/etc/") else a for a in args]
        netns.sh(*args, ns=node_ns)
        started.append(link.name)
    return started


def test_a_pod_gets_no_answer_from_imds_and_the_node_does_after_every_boot(
    tmp_path: Path, keys: Keys, network: Network
) -> None:
    """The bootstrap enables the guard; at each boot (an empty ruleset: the kernel keeps nothing) the unit the kubelet
    requires loads it before any pod can run. Loaded again on a running node, it replaces itself."""
    sb = make_sandbox(tmp_path / NODE, CONFIG, NODE, keys)
    proc = sb.run()
    assert proc.returncode == 0, proc.stderr
    for _ in ("first boot", "reboot"):
        netns.sh("nft", "flush", "ruleset", ns=network.node)
        assert network.answered(network.pod)  # nothing loaded yet: the pod reaches the node role's credentials
        started = boot(sb, network.node)
        assert network.refused(network.pod) and network.refused(network.pod, IMDS6)
        assert network.answered(network.node)
        assert started == ["spiderpool-rdma-imds-guard.service"]
    assert "systemctl enable --now spiderpool-rdma-imds-guard.service" in sb.calls()  # loaded before any pod, too
    assert boot(sb, network.node) == ["spiderpool-rdma-imds-guard.service"]  # a second load on a running node
    assert network.refused(network.pod) and network.answered(network.node)

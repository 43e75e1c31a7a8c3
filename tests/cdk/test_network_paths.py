"""The connections the cluster needs, checked with AWS's security group rule (tests/sg_model.py) on the stack."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from tests.conftest import VARIANTS, Synthesized
from tests.sg_model import Endpoint, group_of, tcp_allowed

pytestmark = pytest.mark.synth
API = 6443


def node_endpoints(s: Synthesized) -> dict[str, Endpoint]:
    enis = s.resources("aws_network_interface")
    out = {}
    for node in s.plan.nodes:
        (eni,) = [e for e in enis.values() if e["tags"]["Name"] == f"{s.config.name}-{node.name}"]
        out[node.name] = Endpoint(node.name, node.private_ip, frozenset(map(group_of, eni["security_groups"])))
    return out


def nlb_endpoint(s: Synthesized) -> Endpoint:
    """The NLB's interface: an address AWS picks in the node subnet, outside the reserved blocks."""
    (nlb,) = s.resources("aws_lb").values()
    groups = nlb.get("security_groups")
    ip = s.plan.node_subnet.broadcast_address - 2
    assert ip not in s.plan.node_block and ip not in s.plan.pod_block
    return Endpoint("nlb", ip, None if groups is None else frozenset(map(group_of, groups)))


def test_every_node_reaches_the_api_load_balancer_and_it_reaches_every_control_plane(
    synthesized: dict[str, Synthesized],
) -> None:
    ha = synthesized["ha"]
    nodes, nlb = node_endpoints(ha), nlb_endpoint(ha)
    blocked = [n for n in nodes.values() if not tcp_allowed(ha.stack, n, nlb, API)]
    assert blocked == [], f"no rule lets {[n.name for n in blocked]} open {API} on the NLB"
    for cp in ha.plan.control_planes:  # forwarded connections and the HTTPS health check on the same port
        assert tcp_allowed(ha.stack, nlb, nodes[cp.name], API), cp.name
    # Targets of type ip see the NLB's address only while client IP preservation is off (ELB user guide,
    # network/edit-target-group-attributes.html "Client IP preservation"); it also lets a control plane reach
    # itself through the NLB (no hairpin with preservation on).
    (targets,) = ha.resources("aws_lb_target_group").values()
    assert targets["target_type"] == "ip" and targets["preserve_client_ip"] == "false"


def test_the_api_load_balancer_is_closed_to_everything_else(synthesized: dict[str, Synthesized]) -> None:
    ha = synthesized["ha"]
    nlb = nlb_endpoint(ha)
    assert nlb.groups is not None, "an NLB without a security group accepts every client in the VPC's routes"
    outsider = Endpoint("internet", IPv4Address("198.51.100.7"), frozenset())
    assert not tcp_allowed(ha.stack, outsider, nlb, API)
    worker = node_endpoints(ha)[ha.plan.workers[0].name]
    assert not tcp_allowed(ha.stack, nlb, worker, 10250)


@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "ha"])
def test_every_node_reaches_the_single_control_plane(name: str, synthesized: dict[str, Synthesized]) -> None:
    s = synthesized[name]
    nodes = node_endpoints(s)
    cp = nodes[s.plan.control_planes[0].name]
    assert all(tcp_allowed(s.stack, n, cp, API) for n in nodes.values())


def rule_ports(stack: dict[str, Any]) -> set[int]:
    """Every port at which some rule's port range starts or ends, and its neighbours: whether a rule lets a port in
    only changes there, so checking these checks every port from 1 to 65535."""
    ports = {1, 65535}
    for kind in ("ingress", "egress"):
        for rule in stack["resource"].get(f"aws_vpc_security_group_{kind}_rule", {}).values():
            if "from_port" in rule:
                ports |= {rule["from_port"] - 1, rule["from_port"], rule["to_port"], rule["to_port"] + 1}
    return {p for p in ports if 1 <= p <= 65535}


def test_the_admin_network_reaches_the_api_port_and_nothing_else(synthesized: dict[str, Synthesized]) -> None:
    """admin_cidr (a VPN or peered network outside the VPC, no security group of ours at its end): the API port on
    the load balancer's group and on the nodes' (the control planes), no other port on any of them, and no address
    beside that network; a configuration without admin_cidr lets it nowhere."""
    ha = synthesized["ha"]
    admin_cidr = ha.config.admin_cidr
    assert admin_cidr is not None and not admin_cidr.overlaps(ha.config.vpc_cidr)
    admin = Endpoint("admin", admin_cidr.network_address + 7)
    beside = Endpoint("beside", admin_cidr.broadcast_address + 7)
    targets = [nlb_endpoint(ha), *node_endpoints(ha).values()]
    api_ends = {"nlb", *(cp.name for cp in ha.plan.control_planes)}
    for target in targets:
        reached = {port for port in rule_ports(ha.stack) if tcp_allowed(ha.stack, admin, target, port)}
        assert reached == ({API} if target.name in api_ends else reached & {API}), target.name
        assert not tcp_allowed(ha.stack, beside, target, API), target.name
    plain = synthesized["softroce"]
    assert plain.config.admin_cidr is None
    assert not tcp_allowed(plain.stack, admin, node_endpoints(plain)[plain.plan.control_planes[0].name], API)

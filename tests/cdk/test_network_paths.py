"""The connections the cluster needs, checked with AWS's security group rule (tests/sg_model.py) on the stack."""

from __future__ import annotations

from ipaddress import IPv4Address

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

"""The lab's Spiderpool chooses a pod's candidate pools as Spiderpool does (tests/upstream/spiderpool.py
`pool_candidates`, pkg/ipam/pool_selections.go). No network namespace: the install is API objects only."""

from __future__ import annotations

import json

import pytest
from spider_validate.spiderpool import IPPOOL, IPPOOLS

from tests.lab.ipam import Ipam
from tests.lab.kubelet import LabPod
from tests.lab.store import Store


@pytest.fixture
def ipam() -> Ipam:
    ipam = Ipam(Store())
    ipam.install(nodes=2)  # lab-general, the network's pool
    for name, node in (("a", None), ("b", None), ("c", None), ("a-node-1", "lab-node-1")):
        ipam.add_pool(name, ["198.18.0.200"], node=node)
    return ipam


def pod(annotations: dict[str, object]) -> LabPod:
    meta = {"name": "p", "namespace": "ns", "annotations": {k: json.dumps(v) for k, v in annotations.items()}}
    return LabPod({"metadata": meta})


def test_the_ippools_entry_of_eth0_comes_before_ippool(ipam: Ipam) -> None:
    entries = [{"interface": "net1", "ipv4": ["c"]}, {"interface": "eth0", "ipv4": ["a"]}]
    assert ipam.candidate_pools(pod({IPPOOLS: entries, IPPOOL: {"ipv4": ["b"]}}), "lab-node-0") == ["a"]
    assert ipam.candidate_pools(pod({IPPOOLS: entries[:1]}), "lab-node-0") == []  # no entry for eth0
    assert ipam.candidate_pools(pod({IPPOOL: {"ipv4": ["b", "c"]}}), "lab-node-0") == ["b", "c"]


def test_without_annotations_the_networks_pools_on_the_pods_node(ipam: Ipam) -> None:
    assert ipam.candidate_pools(pod({}), "lab-node-0") == ["lab-general"]
    asks_for_both = pod({IPPOOL: {"ipv4": ["a-node-1", "a"]}})
    assert ipam.candidate_pools(asks_for_both, "lab-node-0") == ["a"]
    assert ipam.candidate_pools(asks_for_both, "lab-node-1") == ["a-node-1", "a"]

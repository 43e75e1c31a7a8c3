"""The lab's Spiderpool chooses a pod's candidate pools as Spiderpool does (tests/upstream/spiderpool.py
`pool_candidates`, pkg/ipam/pool_selections.go) and admits pools as its webhook does (tests/upstream/
spiderpool_ippool.py). No network namespace: the install is API objects only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from spider_validate.cluster.api import ApiError
from spider_validate.cluster.spiderpool import IPPOOL, IPPOOLS

from tests.lab.cluster import LabCluster
from tests.lab.ipam import Ipam
from tests.lab.kubelet import LabPod
from tests.lab.store import Store


@pytest.fixture
def ipam() -> Ipam:
    ipam = Ipam(Store())
    ipam.install(nodes=2)  # lab-general, the network's pool
    for i, (name, node) in enumerate((("a", None), ("b", None), ("c", None), ("a-node-1", "lab-node-1"))):
        ipam.add_pool(name, [f"198.18.0.{200 + i}"], node=node)  # apart: Spiderpool refuses pools sharing one
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


def spider_ippool(name: str, **spec: Any) -> dict[str, Any]:
    """A SpiderIPPool as the validator creates its own: on the lab's subnet."""
    return {
        "apiVersion": "spiderpool.spidernet.io/v2beta1",
        "kind": "SpiderIPPool",
        "metadata": {"name": name},
        "spec": {"ipVersion": 4, "subnet": "198.18.0.0/24", **spec},
    }


def test_a_pool_created_through_the_api_passes_spiderpools_webhook(tmp_path: Path) -> None:
    """The double admits a SpiderIPPool as Spiderpool's webhook does: mutated, or refused with the API server's
    answer (the pool overlapping lab-general's 198.18.0.100-149, the gateway among the addresses, a stray range)."""
    lab = LabCluster(tmp_path)
    lab.ipam.install(nodes=2)
    created = lab.create(spider_ippool("sv-own", ips=["198.18.0.150", "198.18.0.151"]))
    assert created["metadata"]["finalizers"] == ["spiderpool.spidernet.io"]
    assert created["metadata"]["labels"]["ipam.spidernet.io/ippool-cidr"] == "198-18-0-0-24"
    assert created["spec"]["ips"] == ["198.18.0.150-198.18.0.151"]  # merged
    assert created["status"]["totalIPCount"] == 2
    refused: dict[str, dict[str, Any]] = {
        "overlap with IPPool lab-general in IP ranges [198.18.0.100-198.18.0.149]": {"ips": ["198.18.0.149"]},
        "conflicts with 'spec.gateway' 198.18.0.160": {"ips": ["198.18.0.160"], "gateway": "198.18.0.160"},
        "not match base subnet: 198.18.1.1": {"ips": ["198.18.1.1"]},
    }
    for message, spec in refused.items():
        with pytest.raises(ApiError) as exc:
            lab.create(spider_ippool("sv-broken", **spec))
        assert exc.value.status == 422 and message in str(exc.value), exc.value
        assert 'admission webhook "spiderippool.spiderpool.spidernet.io" denied the request' in str(exc.value)
    assert lab.get("SpiderIPPool", "sv-broken") is None

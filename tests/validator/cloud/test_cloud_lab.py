"""The cloud side on the lab double and moto together: the double's nodes and pods (real namespaces, Spiderpool's
allocation) against EC2 as moto holds it for those nodes, through `audit --cloud aws` and a watch's cloud step.

EC2 gets what the stack would give the double's two nodes: a subnet holding their addresses, one interface each with
its node's InternalIP and one /28 prefix; Kubernetes gets a pool per node pinned to it and covering its prefix, as
the chart makes them, and a pod on each node drawing from its node's pool.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from spider_validate.cloud import ec2 as cloud_ec2
from spider_validate.engine import manifests
from spider_validate.engine.params import Parameters
from spider_validate.watch.loop import Watcher, WatchOptions

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left, invoke
from tests.terraform.emulator import MotoServer
from tests.validator.cloud import aws_cluster

NS = "cloud-lab"
PREFIXES = {"lab-node-0": "198.18.0.64/28", "lab-node-1": "198.18.0.80/28"}  # clear of lab-general (.100-.149)
POOLS = {"lab-node-0": "198.18.0.64-198.18.0.79", "lab-node-1": "198.18.0.80-198.18.0.95"}


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[MotoServer]:
    """An account of its own for each test."""
    server = MotoServer.start(tmp_path / "moto", [])
    yield server
    server.stop()


def wait(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def both(lab: LabCluster, moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The double with a pool and a running pod per node, and EC2 in moto for its nodes; node -> interface ID."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_EC2": moto.url,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    ec2 = aws_cluster.ec2_client(moto.url)
    nodes = {node: (lab.node_ip[node], [prefix]) for node, prefix in PREFIXES.items()}
    enis = aws_cluster.deploy_nodes(ec2, "198.18.0.0/16", "198.18.0.0/24", nodes, []).enis
    lab.create(manifests.namespace(NS, "cloud"))
    net = manifests.Network("kube-system", "macvlan-eth0", "default")
    try:
        for node, ips in POOLS.items():
            lab.add_pool(f"aws-{node}", [ips], node=node)
            pod = manifests.pod(
                f"web-{node}", NS, "cloud", "client", node, "img", net, Parameters(), pools=(f"aws-{node}",)
            )
            lab.create(pod)
        wait(lambda: all(p["status"].get("phase") == "Running" for p in lab.list("Pod", NS)))
        yield enis
    finally:
        lab.delete("Namespace", NS)
        wait(lambda: not lab.list("Pod", NS))
        for node in POOLS:
            lab.delete("SpiderIPPool", f"aws-{node}")
        assert_nothing_left(lab, run_prefix=NS)


def cloud_actions(output: str) -> list[tuple[str, str]]:
    test = next(t for t in json.loads(output)["tests"] if t["name"] == "ipam-cloud")
    return [(a["scenario"], a["status"]) for a in test["actions"]]


def test_audit_on_the_double_against_moto(lab: LabCluster, both: dict[str, str], moto: MotoServer) -> None:
    """Healthy, then the two faults the double and EC2 can each make: a pod the double schedules on a node whose
    interface lacks its address's prefix (lab-general has no nodeName), and a prefix detached from an interface."""
    args = ["audit", "--cloud", "aws", "--region", aws_cluster.REGION, "-o", "json"]
    out = invoke(lab, args)
    assert out.exit_code == 0 and cloud_actions(out.stdout) == [("cloud", "pass")], out.output
    net = manifests.Network("kube-system", "macvlan-eth0", "default")
    stray = manifests.pod(
        "stray", NS, "cloud", "client", "lab-node-1", "img", net, Parameters(), pools=("lab-general",)
    )
    lab.create(stray)
    wait(lambda: (lab.get("Pod", "stray", NS) or {}).get("status", {}).get("phase") == "Running")
    out = invoke(lab, args)
    assert out.exit_code == 1 and cloud_actions(out.stdout) == [("pod-not-routed", "fail")], out.output
    assert f"pod {NS}/stray runs on node lab-node-1" in out.output and "routes" in out.output
    lab.delete("Pod", "stray", NS)
    wait(lambda: lab.get("Pod", "stray", NS) is None)
    ec2 = aws_cluster.ec2_client(moto.url)
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=both["lab-node-1"], Ipv4Prefixes=[PREFIXES["lab-node-1"]])
    out = invoke(lab, args)
    assert out.exit_code == 1 and cloud_actions(out.stdout) == [("prefix-missing", "fail")], out.output
    assert "SpiderIPPool/aws-lab-node-1 is pinned to node lab-node-1" in out.output


def samples(watcher: Watcher) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(watcher.metrics.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }


def test_the_watch_runs_the_cloud_side_within_its_budget(
    lab: LabCluster, both: dict[str, str], moto: MotoServer
) -> None:
    client = cloud_ec2.connect(aws_cluster.REGION, None, explicit_credentials=True).client
    budget = {"calls": 10}
    watcher = Watcher(lab, Parameters(), WatchOptions(NS, cloud=lambda: cloud_ec2.Boto3Ec2(client, budget["calls"])))
    watcher._ipam()
    watcher._cloud()
    s = samples(watcher)
    assert s[("spider_validate_cloud_calls", frozenset())] == 4
    assert not [k for k in s if k[0] == "spider_validate_cloud_findings"]
    aws_cluster.ec2_client(moto.url).assign_private_ip_addresses(
        NetworkInterfaceId=both["lab-node-0"], Ipv4Prefixes=["198.18.0.160/28"]
    )
    watcher._ipam()
    watcher._cloud()
    s = samples(watcher)
    assert s[("spider_validate_cloud_findings", frozenset({("rule", "unused-prefix")}))] == 1
    budget["calls"] = 3
    watcher._ipam()
    with pytest.raises(cloud_ec2.BudgetExhausted):
        watcher._cloud()
    assert samples(watcher)[("spider_validate_cloud_calls", frozenset())] == 3

"""The servers spider-validate runs answer with their pod's name on every path, and offer nothing else: no shell, no
upload, no dial, no exit. On the double, whose stand-in serves agnhost's routes for the arguments it is given
(tests/lab/server.py): `agnhost netexec` answered /shell, which runs `sh -c` in the real image."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from spider_validate.cluster.spiderpool import underlay_ip
from spider_validate.engine import manifests
from spider_validate.engine.params import Parameters

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left

NS = "spider-validate-servers"
NETWORK = manifests.Network("kube-system", "macvlan-eth0", "default")  # the double's underlay
# agnhost netexec's routes (netexec.go, addRoutes) with the requests that make each act; the exits come last
ROUTES = [
    "/shell?cmd=id",
    "/upload",
    "/dial?host=127.0.0.1&port=8080&request=hostname",
    "/echo?msg=hello&code=201",
    "/clientip",
    "/redirect?location=/elsewhere",
    "/",
    "/healthz",
    "/hostname",
    "/exit?code=3",
    "/shutdown",
]


def running(lab: LabCluster, namespace: str, objs: list[dict[str, Any]]) -> dict[str, str]:
    """Create the pods and wait until each runs with its underlay address: name -> address."""
    for obj in objs:
        lab.create(obj)
    deadline, ips = time.monotonic() + 60, dict[str, str]()
    while len(ips) < len(objs):
        assert time.monotonic() < deadline, f"pods not running: {[o['metadata']['name'] for o in objs]}"
        for obj in objs:
            pod = lab.get("Pod", obj["metadata"]["name"], namespace) or {}
            if pod.get("status", {}).get("phase") == "Running":
                ips[obj["metadata"]["name"]] = underlay_ip(pod, "eth0")
        time.sleep(0.1)
    return ips


def answers(lab: LabCluster, namespace: str, client: str, ip: str, port: int) -> dict[str, tuple[str, str]]:
    """path -> (HTTP status, body) of a GET from `client`, one path after the other."""
    out = {}
    for path in ROUTES:
        command = ["curl", "-sS", "--max-time", "5", "-w", "\n%{http_code}", f"http://{ip}:{port}{path}"]
        result = lab.exec(namespace, client, command, timeout=15)
        body, _, status = result.stdout.rpartition("\n")
        out[path] = (status, body if result.exit_code == 0 else f"curl exit {result.exit_code}: {result.stderr}")
    return out


@pytest.fixture
def namespace(lab: LabCluster) -> Iterator[str]:
    lab.create(manifests.namespace(NS, "servers"))
    yield NS
    lab.delete("Namespace", NS)
    assert_nothing_left(lab, run_prefix=NS)


def client(namespace: str) -> dict[str, Any]:
    params = Parameters()
    return manifests.pod(
        "client-0", namespace, "servers", "client", "lab-node-1", params.image("client"), NETWORK, params
    )


def test_the_runs_servers_answer_their_name_on_every_path_and_nothing_else(lab: LabCluster, namespace: str) -> None:
    params = Parameters(apps=1)
    objs = manifests.run_objects("servers", namespace, ["lab-node-0", "lab-node-1"], NETWORK, params, "baseline")
    servers = [o for o in objs if o["kind"] == "Pod" and o["metadata"]["name"] in {"server-0", "app-0-0"}]
    ips = running(lab, namespace, [*servers, client(namespace)])
    for server in servers:
        name = server["metadata"]["name"]
        assert answers(lab, namespace, "client-0", ips[name], params.http_port) == {p: ("200", name) for p in ROUTES}

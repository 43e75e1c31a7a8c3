"""`spider-validate audit` on dumps in `kubectl get -o json` shape (from the double: consistent and broken),
and live on the double."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from spider_validate import audit, cli, manifests
from spider_validate.params import Parameters

from tests.crds import validate_custom
from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left

NS = "audit-fixture"
Dump = dict[str, Any]


@pytest.fixture(scope="module")
def dump(lab_session: LabCluster) -> Iterator[Dump]:
    """Three running pods on the double, dumped like kubectl does; the pods go afterwards."""
    lab = lab_session
    net = manifests.Network("kube-system", "macvlan-eth0", "default")
    for i in range(3):
        lab.create(manifests.pod(f"web-{i}", NS, "audit", "client", lab.node_names[i % 2], "img", net, Parameters()))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(p["status"]["phase"] != "Running" for p in lab.list("Pod", NS)):
        time.sleep(0.05)
    items = [*lab.list("SpiderIPPool"), *lab.list("SpiderEndpoint"), *lab.list("Pod")]
    yield {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
    for pod in lab.list("Pod", NS):
        lab.delete("Pod", pod["metadata"]["name"], NS)
    assert_nothing_left(lab, NS)


def find(d: Dump, kind: str, name: str) -> dict[str, Any]:
    return next(o for o in d["items"] if o["kind"] == kind and o["metadata"]["name"] == name)


def records(pool: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(pool["status"]["allocatedIPs"]))


def write(tmp_path: Path, d: Dump) -> Path:
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(d))
    return path


def run_audit(path: Path) -> list[audit.Finding]:
    return audit.audit(audit.load_dump(path))


def test_the_dump_has_kubectls_shape(dump: Dump) -> None:
    kinds = {o["kind"] for o in dump["items"]}
    assert kinds == {"SpiderIPPool", "SpiderEndpoint", "Pod"}
    for obj in dump["items"]:
        if obj["kind"] != "Pod":
            validate_custom(obj)  # status included: allocatedIPs a JSON string, counts integers


def test_consistent_dump_has_no_findings(dump: Dump, tmp_path: Path) -> None:
    assert run_audit(write(tmp_path, dump)) == []
    out = CliRunner().invoke(cli.main, ["audit", "--from-file", str(write(tmp_path, dump)), "-o", "json"])
    assert out.exit_code == 0
    assert json.loads(out.output)["tests"][0]["actions"][0]["detail"].endswith("3 endpoints, 3 pods consistent")


def _pod_ip(d: Dump, pod: str) -> str:
    return str(
        json.loads(find(d, "Pod", pod)["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"])[0]["ips"][0]
    )


def remove_pod(d: Dump) -> None:
    d["items"].remove(find(d, "Pod", "web-0"))


def recreate_pod(d: Dump) -> None:  # upstream 4982: same name, new UID, old IP still held
    find(d, "Pod", "web-0")["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"


def give_ip_twice(d: Dump) -> None:  # upstream 1187: web-1 gets web-0's address from an overlapping pool
    pool = find(d, "SpiderIPPool", "lab-general")
    ip0, ip1 = _pod_ip(d, "web-0"), _pod_ip(d, "web-1")
    recs = records(pool)
    web1 = recs.pop(ip1)
    pool["status"]["allocatedIPs"], pool["status"]["allocatedIPCount"] = json.dumps(recs), len(recs)
    other = copy.deepcopy(pool)
    other["metadata"]["name"] = "lab-overlap"
    other["status"]["allocatedIPs"], other["status"]["allocatedIPCount"] = json.dumps({ip0: web1}), 1
    d["items"].append(other)
    pod = find(d, "Pod", "web-1")
    status = json.loads(pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"])
    status[0]["ips"] = [ip0]
    pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] = json.dumps(status)
    endpoint = find(d, "SpiderEndpoint", "web-1")
    endpoint["status"]["current"]["ips"][0].update(ipv4=f"{ip0}/24", ipv4Pool="lab-overlap")


def drop_endpoint(d: Dump) -> None:  # upstream 2517: pool records without an endpoint after an agent restart
    d["items"].remove(find(d, "SpiderEndpoint", "web-2"))


def orphan_endpoint(d: Dump) -> None:
    ep = copy.deepcopy(find(d, "SpiderEndpoint", "web-2"))
    ep["metadata"]["name"] = "ghost"
    ep["status"]["current"]["ips"][0]["ipv4"] = "198.18.0.140/24"
    d["items"].append(ep)


def hide_from_network_status(d: Dump) -> None:
    find(d, "Pod", "web-1")["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] = "[]"


def miscount(d: Dump) -> None:
    find(d, "SpiderIPPool", "lab-general")["status"]["allocatedIPCount"] += 1


def overfill(d: Dump) -> None:
    find(d, "SpiderIPPool", "lab-general")["status"]["totalIPCount"] = 2


def exclude_allocated(d: Dump) -> None:
    find(d, "SpiderIPPool", "lab-general")["spec"]["excludeIPs"] = [_pod_ip(d, "web-2")]


BREAKAGES: list[tuple[Callable[[Dump], None], str, str]] = [
    (remove_pod, "leak", "which is gone"),
    (recreate_pod, "leak", "was recreated with another UID"),
    (give_ip_twice, "duplicate", "is held by 2 pods"),
    (drop_endpoint, "endpoint-missing", "has no SpiderEndpoint"),
    (orphan_endpoint, "orphan-endpoint", "SpiderEndpoint/audit-fixture/ghost records 198.18.0.140"),
    (hide_from_network_status, "not-in-network-status", "appears 0 times in audit-fixture/web-1's network-status"),
    (miscount, "count-mismatch", "says allocatedIPCount 4 but holds 3 records"),
    (overfill, "over-capacity", "holds 3 records but only 2 addresses"),
    (exclude_allocated, "out-of-range", "outside its ips (or in excludeIPs)"),
]


@pytest.mark.parametrize(
    ("breakage", "problem", "message"), BREAKAGES, ids=[b[1] + "-" + b[0].__name__ for b in BREAKAGES]
)
def test_each_inconsistency_is_found_with_names_and_a_fix(
    dump: Dump, tmp_path: Path, breakage: Callable[[Dump], None], problem: str, message: str
) -> None:
    broken = copy.deepcopy(dump)
    breakage(broken)
    findings = run_audit(write(tmp_path, broken))
    assert problem in {f.problem for f in findings}, findings
    finding = next(f for f in findings if f.problem == problem)
    assert message in finding.message and finding.fix and finding.objects
    out = CliRunner().invoke(cli.main, ["audit", "--from-file", str(write(tmp_path, broken)), "-o", "json"])
    assert out.exit_code == 1
    report = json.loads(out.output)
    assert any(a["data"]["problem"] == problem for a in report["tests"][0]["actions"])


def test_audit_of_selected_pools_only(dump: Dump, tmp_path: Path) -> None:
    broken = copy.deepcopy(dump)
    miscount(broken)
    assert audit.audit(audit.load_dump(write(tmp_path, broken)), {"some-other-pool"}) == []


def test_unreadable_dump_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "List", "items": [{"kind": "Service", "metadata": {"name": "x"}}]}')
    out = CliRunner().invoke(cli.main, ["audit", "--from-file", str(bad)])
    assert out.exit_code == 2 and "unexpected kinds ['Service']" in out.output


def test_live_audit_through_the_cluster_interface(lab: LabCluster, dump: Dump) -> None:
    original = cli._connect
    cli._connect = lambda kubeconfig, context: lab
    try:
        out = CliRunner().invoke(cli.main, ["audit"])
    finally:
        cli._connect = original
    assert out.exit_code == 0, out.output

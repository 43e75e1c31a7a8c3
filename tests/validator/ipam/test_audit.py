"""`spider-validate audit` on dumps in `kubectl get -o json` shape (the double's consistent dump, frozen in
tests/fixtures/audit/consistent.json by `python -m tests.lab.freeze_dump`, and breakages of it), and live on the
double; one test on the double checks that it still dumps the frozen shape."""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from spider_validate import cli
from spider_validate.ipam import audit

from tests.crds import validate_custom
from tests.lab import freeze_dump
from tests.lab.cluster import LabCluster
from tests.lab.fixtures import entry_point, invoke

Dump = dict[str, Any]
NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"  # as Multus writes it


@pytest.fixture
def dump() -> Dump:
    """Three running pods of the double (two nodes), their endpoints and pool, as kubectl dumps them."""
    return dict(json.loads(freeze_dump.FIXTURE.read_text()))


@pytest.fixture(scope="module")
def live_dump(lab_session: LabCluster) -> Iterator[Dump]:
    """The same three pods running on the double now; they go afterwards."""
    with freeze_dump.running_pods(lab_session) as live:
        yield live


def shape(value: Any) -> Any:
    """What a dump's consumers read: keys and types, recursively; JSON held in strings (annotations,
    allocatedIPs) parsed too, and a mapping by address (allocatedIPs) as the list of its records. Names,
    addresses, UIDs and versions may differ."""
    if isinstance(value, dict) and value and all(_is_address(k) for k in value):
        return sorted((shape(v) for v in value.values()), key=repr)
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, str) and value[:1] in "{[":
        with contextlib.suppress(json.JSONDecodeError):
            return shape(json.loads(value))
    return type(value).__name__


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def by_name(d: Dump) -> dict[tuple[str, str, str], Any]:
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in d["items"]}


def test_the_double_still_dumps_the_frozen_shape(live_dump: Dump, dump: Dump, tmp_path: Path) -> None:
    """The fixture cannot drift from the double: the same objects with the same fields, consistent. When this
    fails after a deliberate change of the double or the validator's pods, run `python -m tests.lab.freeze_dump`."""
    live, frozen = by_name(live_dump), by_name(dump)
    assert live.keys() == frozen.keys()
    for key, obj in frozen.items():
        assert shape(live[key]) == shape(obj), key
    assert run_audit(write(tmp_path, live_dump)) == []


def test_the_fixture_is_printed_as_kubectl_prints(dump: Dump) -> None:
    assert freeze_dump.FIXTURE.read_text() == freeze_dump.kubectl_json(dump)


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
    return str(json.loads(find(d, "Pod", pod)["metadata"]["annotations"][NETWORK_STATUS])[0]["ips"][0])


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
    status = json.loads(pod["metadata"]["annotations"][NETWORK_STATUS])
    status[0]["ips"] = [ip0]
    pod["metadata"]["annotations"][NETWORK_STATUS] = json.dumps(status)
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
    find(d, "Pod", "web-1")["metadata"]["annotations"][NETWORK_STATUS] = "[]"


def miscount(d: Dump) -> None:
    find(d, "SpiderIPPool", "lab-general")["status"]["allocatedIPCount"] += 1


def overfill(d: Dump) -> None:
    find(d, "SpiderIPPool", "lab-general")["status"]["totalIPCount"] = 2


def exclude_allocated(d: Dump) -> None:
    find(d, "SpiderIPPool", "lab-general")["spec"]["excludeIPs"] = [_pod_ip(d, "web-2")]


def garble_records(d: Dump) -> None:  # a pool whose status Spiderpool could not write whole
    find(d, "SpiderIPPool", "lab-general")["status"]["allocatedIPs"] = '{"198.18.0.100": {"pod": '


def endpoint_of_another_pod(d: Dump) -> None:  # the endpoint records an older pod's UID
    find(d, "SpiderEndpoint", "web-1")["status"]["current"]["uid"] = "00000000-0000-0000-0000-0000000000aa"


def configure_ip_twice(d: Dump) -> None:  # web-1 runs with web-0's address, though only web-0 holds it in a pool
    ip0 = _pod_ip(d, "web-0")
    pod = find(d, "Pod", "web-1")
    status = json.loads(pod["metadata"]["annotations"][NETWORK_STATUS])
    status[0]["ips"] = [*status[0]["ips"], ip0]
    pod["metadata"]["annotations"][NETWORK_STATUS] = json.dumps(status)


def end_pod(d: Dump) -> None:  # a finished pod keeps its address: a leak (upstream 4982's cousin)
    find(d, "Pod", "web-2")["status"]["phase"] = "Succeeded"


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
    (garble_records, "unreadable", "has an allocatedIPs that is not a JSON object of address records"),
    (endpoint_of_another_pod, "endpoint-mismatch", "SpiderEndpoint/audit-fixture/web-1 does not record"),
    (configure_ip_twice, "duplicate", "is configured in 2 running pods: audit-fixture/web-0, audit-fixture/web-1"),
    (end_pod, "leak", "which has ended (Succeeded)"),
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


RULE_LISTS = ("POOL_RULES", "RECORD_RULES", "CLUSTER_RULES")


@pytest.mark.parametrize(
    ("rules", "rule"),
    [(name, rule) for name in RULE_LISTS for rule in getattr(audit, name)],
    ids=[rule.__name__ for name in RULE_LISTS for rule in getattr(audit, name)],
)
def test_every_audit_rule_has_a_broken_dump_only_it_finds(
    dump: Dump, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rules: str, rule: Callable[..., Any]
) -> None:
    """An audit rule is one function in one of audit's lists and one breakage above: without the rule, some
    breakage goes unnoticed (or is reported differently)."""
    snapshots = []
    for breakage, _, _ in BREAKAGES:
        broken = copy.deepcopy(dump)
        breakage(broken)
        snapshots.append(audit.load_dump(write(tmp_path, broken)))
    full = [audit.audit(s) for s in snapshots]
    monkeypatch.setattr(audit, rules, [r for r in getattr(audit, rules) if r is not rule])
    assert [audit.audit(s) for s in snapshots] != full, f"no breakage in BREAKAGES needs {rule.__name__}"


def test_audit_of_selected_pools_only(dump: Dump, tmp_path: Path) -> None:
    broken = copy.deepcopy(dump)
    miscount(broken)
    other = copy.deepcopy(find(broken, "SpiderIPPool", "lab-general"))
    other["metadata"]["name"] = "other"
    other["spec"]["ips"], other["status"] = ["198.18.0.200-198.18.0.209"], {"allocatedIPCount": 0, "totalIPCount": 10}
    broken["items"].append(other)
    assert audit.audit(audit.load_dump(write(tmp_path, broken)), {"other"}) == []
    assert {f.problem for f in audit.audit(audit.load_dump(write(tmp_path, broken)))} == {"count-mismatch"}


def set_path(d: Dump, *, kind: str, name: str, path: str, value: Any) -> Dump:
    obj = find(d, kind, name)
    *parents, last = path.split(".")
    for key in parents:
        obj = obj[key]
    obj[last] = value
    return d


def lone_pod(d: Dump) -> Any:
    return find(d, "Pod", "web-0")


EP = "SpiderEndpoint"
# (name, object kind and name, dotted path, value set there, message): each names the object and the field.
MALFORMED: list[tuple[str, str, str, str, Any, str]] = [
    ("null-pool-status", "SpiderIPPool", "lab-general", "status", None, "SpiderIPPool/lab-general: status is null"),
    ("null-pod-status", "Pod", "web-1", "status", None, "Pod/audit-fixture/web-1: status is null"),
    ("null-endpoint-status", EP, "web-1", "status", None, "SpiderEndpoint/audit-fixture/web-1: status is null"),
    (
        "string-count",
        "SpiderIPPool",
        "lab-general",
        "status.allocatedIPCount",
        "3",
        'allocatedIPCount is "3", expected',
    ),
    ("negative-total", "SpiderIPPool", "lab-general", "status.totalIPCount", -1, "status.totalIPCount is -1"),
    ("bad-pool-ip", "SpiderIPPool", "lab-general", "spec.ips", ["198.18.0.300"], "spec.ips: '198.18.0.300' is not an"),
    ("reversed-range", "SpiderIPPool", "lab-general", "spec.ips", ["10.0.0.9-10.0.0.1"], "in the wrong order"),
    ("bad-pod-ip", "Pod", "web-1", "metadata.annotations", {NETWORK_STATUS: '[{"ips": ["x.y"]}]'}, "ips: 'x.y'"),
    ("bad-endpoint-ip", EP, "web-1", "status.current.ips", [{"ipv4": "999.1.1.1/24"}], "current.ips ipv4: '999"),
]
UNREADABLE: list[tuple[str, Callable[[Dump], Any], str]] = [
    ("empty-object", lambda d: {}, "expected a List of objects, the output of `kubectl get spiderippools"),
    ("empty-list", lambda d: [], "nothing to audit: no SpiderIPPool (0 pods, 0 endpoints)"),
    ("lone-pod", lone_pod, "nothing to audit: no SpiderIPPool (1 pods, 0 endpoints)"),
    ("a-service", lambda d: {"kind": "List", "items": [{"kind": "Service", "metadata": {"name": "x"}}]}, "['Service']"),
    ("not-objects", lambda d: {"items": [1, 2]}, "item 0 is not a Kubernetes object"),
    *[(n, partial(set_path, kind=k, name=o, path=f, value=v), m) for n, k, o, f, v, m in MALFORMED],
]


@pytest.mark.parametrize(("name", "breakage", "message"), UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_unreadable_or_empty_input_is_exit_2_naming_the_object(
    dump: Dump, tmp_path: Path, name: str, breakage: Callable[[Dump], Any], message: str
) -> None:
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(breakage(copy.deepcopy(dump))))
    junit = tmp_path / "j.xml"
    out = CliRunner().invoke(entry_point(), ["audit", "--from-file", str(path), "--junit-file", str(junit)])
    assert out.exit_code == 2, out.output
    assert f"cannot audit {path}: " in out.output and message in out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
    assert not junit.exists()


def test_binary_input_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    out = CliRunner().invoke(entry_point(), ["audit", "--from-file", str(path)])
    assert out.exit_code == 2 and "not JSON" in out.output


def test_a_mistyped_pool_is_exit_2_listing_the_pools(dump: Dump, tmp_path: Path) -> None:
    out = CliRunner().invoke(
        entry_point(), ["audit", "--from-file", str(write(tmp_path, dump)), "--pool", "lab-genral"]
    )
    assert out.exit_code == 2 and "no pool named lab-genral; the pools are lab-general" in out.output


@pytest.mark.parametrize(
    "ips",
    [["10.0.0.0-10.255.255.255"], ["fd00::1-fd00::ffff:ffff:ffff:ffff"], ["0.0.0.0-255.255.255.255"]],
    ids=["a-slash-8", "ipv6-slash-64", "all-of-ipv4"],
)
def test_huge_pools_are_audited_by_their_bounds_at_once(dump: Dump, tmp_path: Path, ips: list[str]) -> None:
    """Upstream pools may span a /8 or an IPv6 /64: the audit reasons about the ranges, never lists them."""
    big = copy.deepcopy(dump)
    pool = copy.deepcopy(find(big, "SpiderIPPool", "lab-general"))
    pool["metadata"]["name"] = "huge"
    pool["spec"]["ips"], pool["status"] = ips, {"allocatedIPs": "{}", "allocatedIPCount": 0, "totalIPCount": 2**24}
    big["items"].append(pool)
    start = time.monotonic()
    assert audit.audit(audit.load_dump(write(tmp_path, big))) == []
    assert time.monotonic() - start < 1.0


def test_live_audit_through_the_cluster_interface(lab: LabCluster, live_dump: Dump) -> None:
    out = invoke(lab, ["audit"])
    assert out.exit_code == 0, out.output

"""A replaced control-plane-0 in HA: the live control planes remove its dead etcd member, then it joins them as a
control plane (never a second cluster, never a live member removed, never a removal without a quorum), resumable
across reboots. Run on the bootstrap sandbox against the stand-ins of etcdctl (tests/bootstrap/etcd_stub.py) and of
kubeadm's member addition (etcd_stub.add_member: kubeadm reuses a member of the same peer URL, which etcd forbids)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from spider_validate import names

from cdk.constructs import iam, secrets
from tests.bootstrap import etcd_stub
from tests.bootstrap.sandbox import LIB, Keys, Sandbox
from tests.bootstrap.test_bootstrap_names import ssm_calls
from tests.bootstrap.test_bootstrap_sandbox import HA, joined_ha_cluster, sandbox

pytestmark = pytest.mark.slow  # the bootstrap sandbox
ANSWER = f"{LIB}/replace-member.sh"  # what spiderpool-rdma-member-replacement.timer runs on every control plane
ALL = ["control-plane-0", "control-plane-1", "control-plane-2"]
DEADLINE = 600.0  # seconds of real time for a replacement's whole bootstrap, on a loaded machine (load 100)


def member(cluster: Path, name: str) -> dict[str, object]:
    return next(m for m in etcd_stub.members(cluster) if m["name"] == name)


def gone(cp0: Sandbox, name: str) -> None:
    """The instance of `name` is terminated: API server and etcd member down, its kubelet no longer posts status."""
    etcd_stub.node_gone(cp0.cluster.path, name)
    cp0.cluster.set_node(name, ready="Unknown")


def replacement_runs(new: Sandbox, answerer: Sandbox, until: Callable[[], bool] | None = None) -> int:
    """The replacement boots while the answering control plane's timer fires (here: as fast as it can): its run's exit
    code, or -9 when `until` held first and it was killed then (a power loss)."""
    process = new.start()
    deadline = time.monotonic() + DEADLINE
    try:
        while process.poll() is None:
            assert time.monotonic() < deadline, new.log()
            if until and until():
                Sandbox.stop(process)
                return -9
            answered = answerer.run(ANSWER)
            assert answered.returncode == 0, answered.stderr
        return process.returncode
    finally:
        Sandbox.stop(process)


def replacement(tmp_path: Path, keys: Keys, cp0: Sandbox) -> Sandbox:
    """The new control-plane-0. It waits for the live control planes' answer as long as for a join parameter (an hour
    on a node); here long enough for the answering timer, which the test runs, on a loaded machine."""
    new = sandbox(tmp_path / "replacement", keys, HA, "control-plane-0", cp0)
    new.set_env("SPR_JOIN_TIMEOUT", str(int(DEADLINE)))
    return new


def removals(node: Sandbox) -> list[str]:
    return [c for c in node.calls() if "etcdctl" in c and " member remove " in c]


def request(cp0: Sandbox) -> str:
    path = cp0.cluster.ssm(names.ETCD_MEMBER_REPLACEMENT)
    return path.read_text().strip() if path.exists() else names.PLACEHOLDER


def test_a_replaced_control_plane_0_joins_the_live_ones_once_its_dead_member_left_etcd(
    tmp_path: Path, keys: Keys
) -> None:
    cp0, cp1, _ = joined_ha_cluster(tmp_path, keys)
    old = member(cp0.cluster.path, "control-plane-0")
    gone(cp0, "control-plane-0")
    new = replacement(tmp_path, keys, cp0)
    assert replacement_runs(new, cp1) == 0, new.log()
    assert new.status() == "ready"
    calls = new.calls()
    assert not any(c.startswith("kubeadm init") for c in calls)
    assert any(c.startswith("kubeadm join --config") for c in calls)
    # the old member left first: kubeadm would otherwise have started the new etcd as it, without its data
    assert removals(cp1) == [removal for removal in removals(cp1) if removal.endswith(f"member remove {old['ID']:x}")]
    assert len(removals(cp1)) == 1
    now = etcd_stub.members(cp0.cluster.path)
    assert sorted(m["name"] for m in now) == ALL
    assert member(cp0.cluster.path, "control-plane-0")["ID"] != old["ID"]
    assert not any(m["emptyDataUnderOldId"] for m in now)
    assert cp0.cluster.nodes()["control-plane-0"]["control_plane"] is True
    # it joined with the control-plane credentials the live ones published for it, which are withdrawn again
    assert not cp0.cluster.secret_exists()
    assert cp0.cluster.ssm(names.JOIN_CONTROL_PLANE).read_text() == names.PLACEHOLDER
    assert request(cp0) == names.PLACEHOLDER  # nothing is left asking
    cp1.reset_calls()
    assert cp1.run(ANSWER).returncode == 0 and not removals(cp1)  # the next timer finds nothing to do
    assert "[member-replacement] the dead etcd member control-plane-0" in new.log()
    # what they wrote is a parameter the stack creates, with its tier and key, which the control-plane role may write
    created = {names.ssm_parameter(HA.name, n): tier for n, (_, tier) in secrets.PARAMETERS.items()}
    granted = {names.ssm_parameter(HA.name, n) for n in iam.PARAMETER_ACCESS["control-plane"]["write"]}
    key = names.kms_alias(HA.name)
    puts = {(p["--name"], p["--tier"], p["--key-id"]) for node in (new, cp1) for p in ssm_calls(node, "put-parameter")}
    assert (names.ssm_parameter(HA.name, names.ETCD_MEMBER_REPLACEMENT), "Standard", key) in puts
    assert all(created[name] == tier and name in granted and used == key for name, tier, used in puts)


@pytest.mark.parametrize("alive", ["etcd", "kubelet"])
def test_a_live_member_is_never_removed(tmp_path: Path, keys: Keys, alive: str) -> None:
    """The old instance still runs: its etcd answers (health), or its kubelet still posts status. The replacement
    stops, saying why; the member stays."""
    cp0, cp1, _ = joined_ha_cluster(tmp_path, keys)
    old = member(cp0.cluster.path, "control-plane-0")
    etcd_stub.stop_api(cp0.cluster.path, "control-plane-0")  # its API server no longer answers behind the endpoint
    if alive == "kubelet":
        etcd_stub.node_gone(cp0.cluster.path, "control-plane-0")
    else:
        cp0.cluster.set_node("control-plane-0", ready="Unknown")
    new = replacement(tmp_path, keys, cp0)
    assert replacement_runs(new, cp1) == 1
    assert not removals(cp1)
    assert member(cp0.cluster.path, "control-plane-0")["ID"] == old["ID"]
    assert not any(c.startswith(("kubeadm join", "kubeadm init")) for c in new.calls())
    reason = "answers etcd's health check" if alive == "etcd" else "its kubelet still posts the node's status"
    assert reason in new.log() and "not removing a live member" in new.log()
    assert new.status().startswith("failed step=member-replacement")


def test_a_removal_without_a_quorum_is_refused_with_how_to_restore(tmp_path: Path, keys: Keys) -> None:
    """control-plane-0 is gone and control-plane-2's etcd is down too: one of three members runs, etcd has no quorum,
    and removing a member is refused; the replacement says how to restore from a backup."""
    cp0, cp1, _ = joined_ha_cluster(tmp_path, keys)
    old = member(cp0.cluster.path, "control-plane-0")
    gone(cp0, "control-plane-0")
    members = etcd_stub.members(cp0.cluster.path)
    for m in members:
        m["up"] = m["up"] and m["name"] != "control-plane-2"
    etcd_stub.save_members(cp0.cluster.path, members)
    new = replacement(tmp_path, keys, cp0)
    assert replacement_runs(new, cp1) == 1
    assert not removals(cp1)
    assert member(cp0.cluster.path, "control-plane-0")["ID"] == old["ID"]
    log = new.log()
    assert "etcd has no quorum" in log
    assert "spiderpool-rdma restore --cluster spiderpool-rdma --region us-east-1" in log


def test_a_replacement_rebooted_while_it_waits_asks_once_and_resumes(tmp_path: Path, keys: Keys) -> None:
    """Killed after its request (before any answer), then killed halfway through its join: each boot resumes where the
    last stopped; the dead member is removed once, and a timer after the join removes nothing."""
    cp0, cp1, _ = joined_ha_cluster(tmp_path, keys)
    gone(cp0, "control-plane-0")
    new = replacement(tmp_path, keys, cp0)
    process = new.start()
    deadline = time.monotonic() + DEADLINE
    while not request(cp0).startswith("request "):
        assert process.poll() is None and time.monotonic() < deadline, new.log()
        time.sleep(0.05)
    Sandbox.stop(process)  # the power goes while it waits
    asked = request(cp0)
    assert cp1.run(ANSWER).returncode == 0  # the timer answers while it is down
    assert len(removals(cp1)) == 1
    killed = new.run(STUB_JOIN_KILLED_AFTER="kubelet-start")  # then it dies halfway through its join
    assert killed.returncode == -9
    assert request(cp0).startswith("removed control-plane-0 ") and asked.split()[3] == request(cp0).split()[2]
    assert replacement_runs(new, cp1) == 0, new.log()
    assert len(removals(cp1)) == 1
    assert not any(m["emptyDataUnderOldId"] for m in etcd_stub.members(cp0.cluster.path))
    assert sorted(etcd_stub.member_names(cp0.cluster.path)) == ALL
    assert new.status() == "ready"


# --- the stand-in's own rules, from etcd's code ----------------------------------------------------------------------


def etcdctl(cluster: Path, root: Path, *command: str) -> int:
    etcd = "/etc/kubernetes/pki/etcd"
    args = ["--namespace", "k8s.io", "run", "--rm", "--net-host"]
    args += ["--mount", f"type=bind,src={etcd},dst={etcd},options=rbind:ro", etcd_stub.etcd_image(36), "t"]
    tls = [f"--cacert={etcd}/ca.crt", f"--cert={etcd}/healthcheck-client.crt", f"--key={etcd}/healthcheck-client.key"]
    return etcd_stub.ctr([*args, "/usr/local/bin/etcdctl", *tls, *command], root, cluster)


def test_etcdctl_member_commands_answer_as_etcd_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """member list -w json (printJSON: decimal IDs, omitempty fields), member remove (hex ID; not found; etcd's
    strict reconfiguration check), endpoint health (exit 1, `Error: unhealthy cluster`)."""
    cluster, root = tmp_path / "cluster", tmp_path / "root"
    cluster.mkdir()
    etcd_stub.init_control_plane(root, cluster, "control-plane-0", 36, "10.0.0.10")
    for name, ip in (("control-plane-1", "10.0.0.11"), ("control-plane-2", "10.0.0.12")):
        etcd_stub.add_member(cluster, name, ip)
    local = ["--endpoints=https://127.0.0.1:2379"]
    assert etcdctl(cluster, root, *local, "--write-out=json", "member", "list") == 0
    listed = capsys.readouterr().out
    assert listed.count("\n") == 1 and '"ID":' in listed and '"isLearner"' not in listed
    assert [m["name"] for m in json.loads(listed)["members"]] == ALL
    assert etcdctl(cluster, root, *local, "member", "remove", "xyz") == 128
    assert "expecting ID in Hex" in capsys.readouterr().err
    assert etcdctl(cluster, root, *local, "member", "remove", "1") == 1
    assert capsys.readouterr().err == "Error: etcdserver: member not found\n"
    two = member(cluster, "control-plane-2")
    # a running member, with another down: removing it would leave one connected member of three
    etcd_stub.node_gone(cluster, "control-plane-1")
    assert etcdctl(cluster, root, *local, "member", "remove", f"{two['ID']:x}") == 1
    assert capsys.readouterr().err == "Error: etcdserver: unhealthy cluster\n"
    urls = ",".join(f"https://10.0.0.{n}:2379" for n in (10, 11, 12))
    assert etcdctl(cluster, root, f"--endpoints={urls}", "--write-out=json", "endpoint", "health") == 1
    out, err = capsys.readouterr()
    health = {h["endpoint"]: h["health"] for h in json.loads(out)}
    assert health == {"https://10.0.0.10:2379": True, "https://10.0.0.11:2379": False, "https://10.0.0.12:2379": True}
    assert err == "Error: unhealthy cluster\n"
    one = member(cluster, "control-plane-1")
    assert etcdctl(cluster, root, *local, "member", "remove", f"{one['ID']:x}") == 0  # a downed member: safe
    assert capsys.readouterr().out == f"Member {one['ID']:16x} removed from cluster {etcd_stub.CLUSTER_ID:16x}\n"
    etcd_stub.node_gone(cluster, "control-plane-2")  # one of two: no quorum, nothing commits
    assert etcdctl(cluster, root, *local, "--write-out=json", "member", "list") == 1
    assert capsys.readouterr().err == "Error: context deadline exceeded\n"


#: etcd v3.6.5 server/etcdserver/api/membership/cluster_test.go, TestIsReadyToRemoveVotingMember, as data: the members
#: (ID, started: its name is set, learner), the ID removed, whether etcd is ready to remove it.
UPSTREAM_READY_TO_REMOVE = [
    ([(1, True, False)], 1, False),
    ([(1, False, False), (2, False, False), (3, False, False)], 1, False),
    ([(1, True, False), (2, False, False)], 2, True),
    ([(1, True, False), (2, True, False), (3, False, False)], 2, False),
    ([(1, True, False), (2, True, False), (3, True, False)], 3, True),
    ([(1, True, False), (2, True, False), (3, True, False), (4, False, False)], 3, True),
    ([(1, True, False), (2, True, False), (3, True, False), (4, False, False)], 4, True),
    ([(1, True, False), (2, True, True)], 1, False),
    ([(1, True, False), (2, False, False), (3, True, True)], 1, False),
    ([(1, True, False), (2, False, False), (3, True, True)], 2, True),
    ([(1, True, False), (2, False, False), (3, False, True)], 2, True),
]


@pytest.mark.parametrize(("members", "remove", "ready"), UPSTREAM_READY_TO_REMOVE)
def test_the_stand_ins_removal_check_passes_etcds_own_cases(
    members: list[tuple[int, bool, bool]], remove: int, ready: bool
) -> None:
    current = [{"ID": i, "name": str(i) if started else "", "isLearner": learner} for i, started, learner in members]
    assert etcd_stub.ready_to_remove_voting_member(current, remove) is ready

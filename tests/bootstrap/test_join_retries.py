"""Joins and bootstraps that survive ordinary outages: a join that failed once (an API not ready yet) is tried again
with the same value before the node waits for a newer one; a node killed halfway through its join is not taken for
joined; one attempt may last as long as kubeadm's own waits; the bootstrap unit outlives a 10-minute mirror outage."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from cdk import userdata
from cdk.config import ClusterConfig
from cdk.ipplan import make_plan
from tests.bootstrap import etcd_stub
from tests.bootstrap.clock import advance, now, seconds, unit_settings, use_virtual_clock
from tests.bootstrap.sandbox import Keys, Sandbox, make_sandbox

WORKERS = ClusterConfig.model_validate({"workers": {"instance_type": "m7i.xlarge", "rdma": "softroce"}})
HA = ClusterConfig.model_validate({"control_plane": {"count": 3}})
UNIT = "etc/systemd/system/spiderpool-rdma-bootstrap.service"

#: kubeadm's waits during one `kubeadm join`, one after another, at kubeadm.k8s.io/v1beta4's default timeouts
#: (cmd/kubeadm/app/constants/constants.go: DiscoveryTimeout 5 min, KubeletHealthCheckTimeout 4 min,
#: TLSBootstrapTimeout 5 min, EtcdAPICallTimeout 2 min, KubernetesAPICallTimeout 1 min,
#: ControlPlaneComponentHealthCheckTimeout 4 min). Every node: discovery (retried every 5 s until its timeout), then in
#: kubelet-start the kubelet's health and then its TLS bootstrap (phases/join/kubelet.go, runKubeletWaitBootstrapPhase).
#: A control plane then adds its etcd member as a learner and promotes it (each polled up to EtcdAPICall:
#: util/etcd/etcd.go), waits for the member (etcdHealthyCheckRetries 8 x etcdHealthyCheckInterval 5 s:
#: phases/etcd/local.go, CreateStackedEtcdStaticPodManifestFile), labels itself (mark-control-plane, a Kubernetes API
#: call) and waits for its components' health (wait-control-plane).
KUBEADM_JOIN_WAITS = {
    "worker": {"discovery": 300, "kubelet health": 240, "TLS bootstrap": 300},
    "control plane": {
        "discovery": 300,
        "kubelet health": 240,
        "TLS bootstrap": 300,
        "etcd member added": 120,
        "etcd member promoted": 120,
        "etcd member healthy": 8 * 5,
        "control-plane label": 60,
        "control-plane components healthy": 240,
    },
}


def first_control_plane(tmp_path: Path, keys: Keys, config: ClusterConfig) -> Sandbox:
    cp = make_sandbox(tmp_path / "control-plane-0", config, "control-plane-0", keys)
    proc = cp.run()
    assert proc.returncode == 0, proc.stderr
    return cp


def rendered_env(config: ClusterConfig, node: str) -> dict[str, str]:
    """The node.env the node gets (the sandbox shortens its join deadline)."""
    plan = make_plan(config)
    text = userdata.node_files(config, plan, next(n for n in plan.nodes if n.name == node))[
        "/etc/spiderpool-rdma/node.env"
    ]
    return dict(re.findall(r"^(SPR_\w+)=(\S*)$", text, re.M))


def joins(node: Sandbox) -> list[str]:
    """The `kubeadm join` calls the node made, in order."""
    return [c for c in node.calls() if c.startswith("kubeadm join")]


def test_a_failed_join_is_tried_again_with_the_same_value_after_a_growing_delay(tmp_path: Path, keys: Keys) -> None:
    """The API was not ready yet (a load balancer's health checks, a control plane restarting): nothing newer is
    published, and the same join command works a minute later."""
    cp = first_control_plane(tmp_path, keys, WORKERS)
    worker = make_sandbox(tmp_path / "worker-0", WORKERS, "worker-0", keys, cp.cluster.path)
    use_virtual_clock(worker)
    worker.set_env("SPR_JOIN_TIMEOUT", rendered_env(WORKERS, "worker-0")["SPR_JOIN_TIMEOUT"])
    published = cp.cluster.ssm("join-worker").read_text()
    proc = worker.run(STUB_FAIL="^kubeadm join", STUB_FAIL_TIMES="2")
    assert proc.returncode == 0, proc.stderr + worker.log()
    calls = worker.calls()
    attempts = [i for i, c in enumerate(calls) if c.startswith("kubeadm join")]
    assert len(attempts) == 3
    between = [calls[a:b] for a, b in itertools.pairwise(attempts)]
    assert [[c for c in gap if c.startswith(("kubeadm reset", "sleep"))] for gap in between] == [
        ["kubeadm reset --force", "sleep 30"],
        ["kubeadm reset --force", "sleep 60"],
    ]
    assert cp.cluster.ssm("join-worker").read_text() == published  # nothing newer was needed
    token = re.search(r"--token (\S+)", published)[1]  # type: ignore[index]
    assert f'token: "{token}"' in (worker.root / "etc/spiderpool-rdma/kubeadm-join.yaml").read_text()
    assert cp.cluster.nodes()["worker-0"]["control_plane"] is False and worker.status() == "ready"


@pytest.mark.parametrize(
    ("node", "phase"),
    [("control-plane-1", "kubelet-start"), ("control-plane-1", "control-plane-prepare"), ("worker-0", "kubelet-start")],
)
def test_a_node_killed_halfway_through_its_join_joins_once_it_runs_again(
    tmp_path: Path, keys: Keys, node: str, phase: str
) -> None:
    """A control plane's kubelet.conf exists before its etcd member is added: a control plane killed there is reset
    and joins again (its etcd member and control-plane label exist afterwards). A worker whose kubelet finished its
    TLS bootstrap has joined: its next run does not join twice. Whatever an attempt left is reset first, since kubeadm's
    preflight refuses it."""
    cp = first_control_plane(tmp_path, keys, HA)
    joining = make_sandbox(tmp_path / node, HA, node, keys, cp.cluster.path)
    killed = joining.run(STUB_JOIN_KILLED_AFTER=phase)
    assert killed.returncode == -9, killed.stderr
    assert (joining.root / "etc/kubernetes/kubelet.conf").exists() == (phase == "kubelet-start")
    assert etcd_stub.member_names(cp.cluster.path) == ["control-plane-0"]
    joining.reset_calls()
    proc = joining.run()
    assert proc.returncode == 0, proc.stderr + joining.log()
    control_plane = node.startswith("control-plane")
    calls = joining.calls()
    if control_plane:
        assert calls.index("kubeadm reset --force") < calls.index(joins(joining)[0])
        assert etcd_stub.member_names(cp.cluster.path) == ["control-plane-0", node]
    else:
        assert joins(joining) == [] and "kubeadm reset --force" not in calls
    assert cp.cluster.nodes()[node]["control_plane"] is control_plane
    assert joining.status() == "ready"


@pytest.mark.parametrize(("node", "kind"), [("worker-0", "worker"), ("control-plane-1", "control plane")])
def test_one_join_attempt_may_last_as_long_as_kubeadms_own_waits(
    tmp_path: Path, keys: Keys, node: str, kind: str
) -> None:
    """The bound of one attempt is no shorter than kubeadm's own waits added up, and the unit's start timeout leaves
    room for a last attempt begun at the join deadline."""
    env = rendered_env(HA, node)
    attempt = int(env["SPR_JOIN_ATTEMPT_SECONDS"])
    worst = sum(KUBEADM_JOIN_WAITS[kind].values())
    assert attempt >= worst, f"one join may take {worst}s ({KUBEADM_JOIN_WAITS[kind]}), an attempt is given {attempt}s"
    sb = make_sandbox(tmp_path / node, HA, node, keys)
    timeout = seconds(unit_settings(sb.root / UNIT, "Service")["TimeoutStartSec"])
    assert timeout >= int(env["SPR_JOIN_TIMEOUT"]) + attempt


def test_a_join_attempt_that_hangs_is_ended_and_tried_again(tmp_path: Path, keys: Keys) -> None:
    cp = first_control_plane(tmp_path, keys, WORKERS)
    worker = make_sandbox(tmp_path / "worker-0", WORKERS, "worker-0", keys, cp.cluster.path)
    use_virtual_clock(worker)
    worker.set_env("SPR_JOIN_TIMEOUT", rendered_env(WORKERS, "worker-0")["SPR_JOIN_TIMEOUT"])
    worker.set_env("SPR_JOIN_ATTEMPT_SECONDS", "2")
    proc = worker.run(STUB_JOIN_HANG_ONCE="1")  # the stub's first join sleeps 100 s
    assert proc.returncode == 0, proc.stderr + worker.log()
    assert len(joins(worker)) == 2 and worker.status() == "ready"


def test_the_bootstrap_unit_outlives_a_10_minute_outage_of_the_package_mirrors(tmp_path: Path, keys: Keys) -> None:
    """systemd restarts the failed unit (Restart=on-failure, after RestartSec=) while its start limit allows: at most
    StartLimitBurst= starts in a window of StartLimitIntervalSec= that opens at a start more than the interval after the
    window's first (src/basic/ratelimit.c, ratelimit_below, as in systemd 252 to 255; unit_test_start_limit checks it at
    every start). Every run resumes at its failed step; the mirrors answer again after 10 minutes."""
    node = make_sandbox(tmp_path / "control-plane-0", WORKERS, "control-plane-0", keys)
    use_virtual_clock(node)
    limits, service = unit_settings(node.root / UNIT, "Unit"), unit_settings(node.root / UNIT, "Service")
    interval, burst = seconds(limits["StartLimitIntervalSec"]), int(limits["StartLimitBurst"])
    assert service["Restart"] == "on-failure"
    window, starts = -1.0, 0
    runs: list[tuple[float, int]] = []
    while True:
        started = now(node)
        window, starts = (started, 1) if window < 0 or started - window > interval else (window, starts + 1)
        assert starts <= burst, f"systemd refuses start {starts} at {started:.0f}s (runs {runs}): the unit stays failed"
        proc = node.run(STUB_MIRRORS_DOWN_UNTIL="600")
        runs.append((started, proc.returncode))
        if proc.returncode == 0:
            break
        advance(node, seconds(service["RestartSec"]))
    print(f"\n{len(runs)} runs: {runs}")
    assert len(runs) > 2 and node.status() == "ready"

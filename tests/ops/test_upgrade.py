"""`spiderpool-rdma upgrade` end to end on the bootstrap sandbox: the real orchestration (ops/upgrade.py) and the real
node steps (bootstrap/upgrade-node.sh, run as SSM Run Command runs them) against stand-ins of apt, kubeadm, kubectl and
the kubelet that enforce what the real ones do (tests/bootstrap/upgrade_stub.py: kubeadm's version policy, apt's
pins and holds, drain)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from cdk.config import ClusterConfig
from ops.ssm import OperationError, Result
from ops.upgrade import StepFailed, Upgrade
from tests.bootstrap import upgrade_stub
from tests.bootstrap.sandbox import Keys, Sandbox, make_sandbox

pytestmark = pytest.mark.slow  # the bootstrap sandbox
CONFIG = ClusterConfig.model_validate(
    {"name": "upgrades", "workers": {"count": 2, "instance_type": "m7i.xlarge", "rdma": "none"}}
)
HA = ClusterConfig.model_validate(
    {
        "name": "upgrades-ha",
        "control_plane": {"count": 3},
        "workers": {"count": 1, "instance_type": "m7i.xlarge", "rdma": "none"},
    }
)
REPO = Path(__file__).resolve().parents[2]


class SandboxNodes:
    """ops.ssm.Nodes on the sandboxes: the script written where SSM puts it and run as root with the node's library."""

    def __init__(self, sandboxes: dict[str, Sandbox]) -> None:
        self.sandboxes = sandboxes
        self.steps: list[tuple[str, tuple[str, ...]]] = []
        self.env: dict[str, dict[str, str]] = {}

    def names(self) -> list[str]:
        return sorted(self.sandboxes)

    def run(self, node: str, script: str, args: Sequence[str], timeout: float) -> Result:
        sb = self.sandboxes[node]
        target = sb.root / "var/lib/amazon/ssm" / script
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "bootstrap" / script, target)
        target.chmod(0o700)
        self.steps.append((node, tuple(args)))
        proc = sb.run(str(target.relative_to(sb.root)), args, **self.env.get(node, {}))
        return Result(proc.returncode, proc.stdout, proc.stderr)


def cluster(tmp_path: Path, keys: Keys, config: ClusterConfig) -> SandboxNodes:
    from cdk.ipplan import make_plan

    sandboxes: dict[str, Sandbox] = {}
    shared = None
    for node in make_plan(config).nodes:
        sb = make_sandbox(tmp_path / node.name, config, node.name, keys, shared)
        shared = sb.cluster.path
        proc = sb.run()
        assert proc.returncode == 0, proc.stderr + sb.log()
        sandboxes[node.name] = sb
    return SandboxNodes(sandboxes)


def kubelets(nodes: SandboxNodes) -> dict[str, str]:
    return {name: str(node["kubelet"]) for name, node in nodes.sandboxes["control-plane-0"].cluster.nodes().items()}


def test_an_upgrade_goes_control_planes_first_records_the_version_then_workers_one_by_one(
    tmp_path: Path, keys: Keys
) -> None:
    nodes = cluster(tmp_path, keys, CONFIG)
    cp0 = nodes.sandboxes["control-plane-0"]
    assert set(kubelets(nodes).values()) == {"v1.36.4"}
    release = Upgrade(nodes, lambda _: None).run("1.37")
    assert release == f"v1.37.{upgrade_stub.NEWEST_PATCH}"
    node_steps = [(node, args[0]) for node, args in nodes.steps]
    expected = [("control-plane-0", "versions"), ("control-plane-0", "newest")]
    for node, upgrade in (("control-plane-0", "apply"), ("worker-0", None), ("worker-1", None)):
        if node == "worker-0":
            expected.append(("control-plane-0", "record"))
        expected += [
            (node, "kubeadm"),
            (node, upgrade or "node"),
            ("control-plane-0", "drain"),
            (node, "kubelet"),
            ("control-plane-0", "uncordon"),
        ]
    assert node_steps == expected
    # kubeadm's documented order on the first control plane
    calls = cp0.calls()
    order = [
        "apt-mark unhold kubeadm",
        "apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends kubeadm=1.37.4-*",
        "apt-mark hold kubeadm",
        f"kubeadm upgrade plan {release}",
        f"kubeadm upgrade apply {release} --yes",
        "apt-mark unhold kubelet kubectl",
        "systemctl restart kubelet",
    ]
    positions = [next(i for i, c in enumerate(calls) if c.startswith(p)) for p in order]
    assert positions == sorted(positions), calls
    assert upgrade_stub.cluster_version(cp0.cluster.path) == release
    assert set(kubelets(nodes).values()) == {release}
    assert not any(n.get("unschedulable") for n in cp0.cluster.nodes().values())
    assert cp0.cluster.ssm("kubernetes-version").read_text().strip() == release
    # the etcd backup now runs from the upgraded etcd image (kubeadm rewrote the static pod)
    assert "registry.k8s.io/etcd:3.6.5-0" in (cp0.root / "etc/kubernetes/manifests/etcd.yaml").read_text()


def test_a_node_created_after_the_upgrade_installs_the_new_release_never_a_newer_one(
    tmp_path: Path, keys: Keys
) -> None:
    nodes = cluster(tmp_path, keys, CONFIG)
    release = Upgrade(nodes, lambda _: None).run("1.37")
    cp0 = nodes.sandboxes["control-plane-0"]
    new = make_sandbox(tmp_path / "replacement", CONFIG, "worker-1", keys, cp0.cluster.path)
    proc = new.run(STUB_KUBEADM_VERSION="v1.37.9")  # a newer patch than the cluster's, offered by the repository
    assert proc.returncode == 0, proc.stderr + new.log()
    assert upgrade_stub.installed(new.root, "kubelet") == release
    assert "/core:/stable:/v1.37/deb/" in (new.root / "etc/apt/sources.list.d/kubernetes.list").read_text()


def test_a_failed_step_stops_the_upgrade_and_running_it_again_resumes_there(tmp_path: Path, keys: Keys) -> None:
    nodes = cluster(tmp_path, keys, CONFIG)
    nodes.env["worker-1"] = {"STUB_FAIL": "^systemctl restart kubelet", "STUB_FAIL_TIMES": "1"}
    with pytest.raises(StepFailed, match=r"kubelet v1\.37\.4 failed on worker-1"):
        Upgrade(nodes, lambda _: None).run("1.37")
    assert kubelets(nodes)["worker-1"] == "v1.36.4" and kubelets(nodes)["worker-0"] == "v1.37.4"
    nodes.steps.clear()
    Upgrade(nodes, lambda _: None).run("1.37")
    touched = {node for node, args in nodes.steps if args[0] in ("kubeadm", "apply", "node", "kubelet")}
    assert touched == {"worker-1"}  # the control plane and worker-0 were done
    assert not any(args[0] == "newest" for _, args in nodes.steps)  # the cluster's own release: no newer patch
    assert set(kubelets(nodes).values()) == {"v1.37.4"}


@pytest.mark.parametrize(("to", "message"), [("1.38", "upgrade to 1.37 first"), ("1.35", "a downgrade")])
def test_an_upgrade_never_skips_a_minor_nor_goes_back(tmp_path: Path, keys: Keys, to: str, message: str) -> None:
    nodes = cluster(tmp_path, keys, CONFIG)
    with pytest.raises(OperationError, match=message):
        Upgrade(nodes, lambda _: None).run(to)
    assert nodes.steps == [("control-plane-0", ("versions",))]
    assert set(kubelets(nodes).values()) == {"v1.36.4"}


def test_kubeadm_itself_refuses_a_skipped_minor(tmp_path: Path, keys: Keys) -> None:
    """The stand-in's policy, from kubeadm's EnforceVersionPolicies: even run by hand, apply refuses 1.36 -> 1.38."""
    nodes = cluster(tmp_path, keys, CONFIG)
    cp0 = nodes.sandboxes["control-plane-0"]
    ok = nodes.run("control-plane-0", "upgrade-node.sh", ["apply", "v1.38.1"], 60)
    assert ok.code != 0 and "kubeadm can upgrade only 1 minor version at a time" in ok.errors
    assert upgrade_stub.cluster_version(cp0.cluster.path) == "v1.36.4"


def test_an_ha_upgrade_applies_on_control_plane_0_and_upgrades_the_others_with_upgrade_node(
    tmp_path: Path, keys: Keys
) -> None:
    nodes = cluster(tmp_path, keys, HA)
    release = Upgrade(nodes, lambda _: None).run("1.37")
    applies = [node for node, args in nodes.steps if args[0] == "apply"]
    upgraded = [node for node, args in nodes.steps if args[0] == "node"]
    assert applies == ["control-plane-0"] and upgraded == ["control-plane-1", "control-plane-2", "worker-0"]
    record = nodes.steps.index(("control-plane-0", ("record", release)))
    assert all(i > record for i, (node, _) in enumerate(nodes.steps) if node.startswith("worker-"))
    assert set(kubelets(nodes).values()) == {release}

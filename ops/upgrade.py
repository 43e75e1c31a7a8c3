"""A Kubernetes minor upgrade of a running cluster, node by node, in kubeadm's order (kubernetes website,
docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade.md) and within the version skew policy (docs/setup/release/
version-skew-policy.md: the kubelet never newer than the API server; one minor at a time).

The control planes first: kubeadm's package, `kubeadm upgrade apply` on control-plane-0 (`upgrade node` on the others),
drain, the kubelet's package and a restart, uncordon. Then the cluster's recorded version (the SSM parameter every new
node installs) moves to the new release: no node created from then on is older than the others or newer than the API
server. Then the workers one at a time: kubeadm, `upgrade node`, drain, kubelet, uncordon. Every step on a node is
bootstrap/upgrade-node.sh, which skips what is done: an upgrade stopped anywhere resumes when run again with the same
target, at the release the cluster already moved to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from spider_validate.names import FIRST_CONTROL_PLANE

from ops.ssm import Nodes, OperationError, Result

SCRIPT = "upgrade-node.sh"
APPLY_TIMEOUT = 1800  # image pulls and each control-plane component's restart (kubeadm: 5 min per component)
STEP_TIMEOUT = 1200  # a package install, a drain (15 min at most: upgrade-node.sh), a kubelet restart
_RELEASE = re.compile(r"^v1\.(\d+)\.(\d+)$")


@dataclass(frozen=True)
class ClusterState:
    """What the first control plane reports: kubeadm-config's version and each node's kubelet."""

    version: str
    kubelets: dict[str, str]

    @classmethod
    def parse(cls, output: str) -> ClusterState:
        version, kubelets = "", {}
        for line in output.splitlines():
            name, _, value = line.partition(" ")
            if name == "cluster":
                version = value.strip()
            elif name:
                kubelets[name] = value.strip()
        if not _RELEASE.match(version):
            raise OperationError(f"{FIRST_CONTROL_PLANE} reports no cluster version: {output.strip()!r}")
        return cls(version, kubelets)


def minor(version: str) -> int:
    match = _RELEASE.match(version)
    assert match, version
    return int(match[1])


def target_release(state: ClusterState, to: str, newest: Callable[[str], str]) -> str:
    """The exact release to upgrade to: the newest of minor `to` when the cluster is one minor below it, the cluster's
    own release when an earlier run already applied it (a resume). Refuses a skipped minor and a downgrade."""
    match = re.fullmatch(r"1\.(\d+)", to)
    if not match:
        raise OperationError(f"--to {to!r}: give a minor such as 1.37")
    wanted, current = int(match[1]), minor(state.version)
    if wanted == current:
        return state.version
    if wanted < current:
        raise OperationError(f"the cluster runs {state.version}: a downgrade to {to} is not supported")
    if wanted > current + 1:
        raise OperationError(
            f"the cluster runs {state.version}: upgrades go one minor at a time (kubeadm and the version skew policy); "
            f"upgrade to 1.{current + 1} first"
        )
    release = newest(to)
    if not _RELEASE.match(release) or minor(release) != wanted:
        raise OperationError(f"the package repository of {to} offers no release: {release!r}")
    return release


class Upgrade:
    """One run of the upgrade; `say` reports each step as it starts."""

    def __init__(self, nodes: Nodes, say: Callable[[str], None]) -> None:
        self.nodes, self.say = nodes, say

    def _step(self, node: str, *args: str, timeout: float = STEP_TIMEOUT) -> str:
        self.say(f"{node}: {' '.join(args)}")
        result: Result = self.nodes.run(node, SCRIPT, list(args), timeout)
        if result.code:
            raise StepFailed(node, args, result)
        return result.output

    def state(self) -> ClusterState:
        return ClusterState.parse(self._step(FIRST_CONTROL_PLANE, "versions"))

    def run(self, to: str) -> str:
        names = self.nodes.names()
        if FIRST_CONTROL_PLANE not in names:
            raise OperationError(f"{FIRST_CONTROL_PLANE} is not running: the upgrade starts there")
        state = self.state()
        release = target_release(state, to, lambda m: self._step(FIRST_CONTROL_PLANE, "newest", m).strip())
        control_planes = sorted(n for n in names if n.startswith("control-plane-"))
        workers = sorted((n for n in names if n.startswith("worker-")), key=lambda n: int(n.rsplit("-", 1)[1]))
        self.say(f"upgrading from {state.version} to {release}")
        for node in control_planes:
            if state.kubelets.get(node) != release:
                first = node == FIRST_CONTROL_PLANE
                self._node(node, "apply" if first else "node", release, APPLY_TIMEOUT if first else STEP_TIMEOUT)
        self._step(FIRST_CONTROL_PLANE, "record", release)
        for node in workers:
            if state.kubelets.get(node) != release:
                self._node(node, "node", release, STEP_TIMEOUT)
        return release

    def _node(self, node: str, upgrade: str, release: str, timeout: float) -> None:
        """kubeadm's order for one node; drain and uncordon run where admin.conf is."""
        self._step(node, "kubeadm", release)
        self._step(node, upgrade, release, timeout=timeout)
        self._step(FIRST_CONTROL_PLANE, "drain", node)
        self._step(node, "kubelet", release)
        self._step(FIRST_CONTROL_PLANE, "uncordon", node)


class StepFailed(OperationError):
    """A step that failed on a node: the node's own output says why; run the upgrade again once it is fixed."""

    def __init__(self, node: str, args: tuple[str, ...], result: Result) -> None:
        super().__init__(
            f"{' '.join(args)} failed on {node} (exit {result.code}); fix it and run the same upgrade again, which "
            f"resumes there:\n{(result.output + result.errors).rstrip()}"
        )

"""The stand-ins of what a Kubernetes upgrade calls: apt's versions and holds, the kubelet's version, `kubeadm upgrade`
with kubeadm's version policy, and kubectl's drain, uncordon and the reads of the upgrade. Imported by stub.py; each
rule cites the upstream code or documentation it ports.

The cluster keeps its version (kubeadm-config's ClusterConfiguration.kubernetesVersion) in `cluster-version` and each
Node's kubeletVersion and unschedulable flag in nodes.json (stub.Cluster); a node keeps its installed package versions
and apt's holds under var/lib/dpkg.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

#: pkgs.k8s.io's revision of every release (1.36.4-1.1), and the newest patch its repositories hold in this sandbox.
REVISION = "1.1"
NEWEST_PATCH = 4
KUBERNETES_PACKAGES = ("kubeadm", "kubelet", "kubectl")
#: kubeadm's version skew policy (cmd/kubeadm/app/phases/upgrade/policy.go): one minor up or down per upgrade, and
#: kubelets at most this many minors behind the new version.
MAX_MINOR_SKEW, MAX_KUBELET_SKEW = 1, 1


def _fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


def minor(version: str) -> int:
    return int(version.lstrip("v").split(".")[1])


def patch(version: str) -> int:
    return int(version.lstrip("v").split(".")[2].split("-")[0])


def dpkg(root: Path, package: str) -> Path:
    return root / f"var/lib/dpkg/{package}.version"


def installed(root: Path, package: str) -> str:
    path = dpkg(root, package)
    return path.read_text().strip() if path.exists() else ""


def _holds(root: Path) -> set[str]:
    path = root / "var/lib/dpkg/holds"
    return set(path.read_text().split()) if path.exists() else set()


def apt_mark(args: list[str], root: Path) -> int:
    """`apt-mark hold|unhold PACKAGE...`."""
    holds = _holds(root)
    holds = holds | set(args[1:]) if args[0] == "hold" else holds - set(args[1:])
    path = root / "var/lib/dpkg/holds"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sorted(holds)) + "\n")
    return 0


def repository_minor(root: Path) -> int | None:
    path = root / "etc/apt/sources.list.d/kubernetes.list"
    match = re.search(r"/core:/stable:/v1\.(\d+)/deb/", path.read_text()) if path.exists() else None
    return int(match[1]) if match else None


def resolve(root: Path, package: str, pin: str, newest: str) -> tuple[str | None, str]:
    """The version `apt-get install PACKAGE[=PIN]` installs from the configured repository, or apt's error: a pin must
    be a version that repository holds (`E: Version '...' for '...' was not found`), and a held package keeps its
    version (`E: Held packages were changed and -y was used without --allow-change-held-packages.`)."""
    repo = repository_minor(root)
    if pin:
        version = "v" + pin.split("-")[0]
        if repo is None or minor(version) != repo or patch(version) > NEWEST_PATCH:
            return None, f"E: Version '{pin}' for '{package}' was not found"
    else:  # the repository's newest: what STUB_KUBEADM_VERSION says it offers (it may be wrong, to test that case)
        version = newest
    current = installed(root, package)
    if package in _holds(root) and current and current != version:
        return None, "E: Held packages were changed and -y was used without --allow-change-held-packages."
    return version, ""


def madison(root: Path, package: str) -> int:
    """`apt-cache madison PACKAGE`: the configured repository's versions, newest first (apt-cache(8))."""
    repo = repository_minor(root)
    if repo is None:
        return _fail(f"N: Unable to locate package {package}", 0)
    url = f"https://pkgs.k8s.io/core:/stable:/v1.{repo}/deb"
    for p in range(NEWEST_PATCH, -1, -1):
        print(f"   {package} | 1.{repo}.{p}-{REVISION} | {url}  Packages")
    return 0


def node_name(root: Path) -> str:
    env = (root / "etc/spiderpool-rdma/node.env").read_text()
    match = re.search(r"^SPR_NODE_NAME='?([^'\n]+)'?$", env, re.M)
    assert match, env
    return match[1]


# --- the cluster's view --------------------------------------------------------------------------------------------


def _nodes(cluster: Path) -> dict[str, dict[str, Any]]:
    path = cluster / "nodes.json"
    nodes: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    return nodes


def _set_node(cluster: Path, name: str, **fields: Any) -> None:
    nodes = _nodes(cluster)
    nodes[name] = {**nodes.get(name, {}), **fields}
    (cluster / "nodes.json").write_text(json.dumps(nodes))


def kubelet_started(root: Path, cluster: Path) -> None:
    """The kubelet (re)started: its Node reports the installed kubelet's version (status.nodeInfo.kubeletVersion)."""
    if installed(root, "kubelet"):
        _set_node(cluster, node_name(root), kubelet=installed(root, "kubelet"))


def initialized(root: Path, cluster: Path) -> None:
    """kubeadm init: the cluster runs the installed kubeadm's version."""
    (cluster / "cluster-version").write_text(installed(root, "kubeadm") + "\n")


def cluster_version(cluster: Path) -> str:
    return (cluster / "cluster-version").read_text().strip()


def kubectl(args: list[str], root: Path, cluster: Path) -> int | None:
    """What the upgrade asks the API (None: not an upgrade call, stub.py answers it):
    `-n kube-system get configmap kubeadm-config -o jsonpath={.data.ClusterConfiguration}`,
    `get nodes -o jsonpath=...` (name and kubeletVersion per line), `drain NODE ...`, `uncordon NODE`."""
    if not (root / "etc/kubernetes/admin.conf").exists():
        return None
    if "configmap" in args and "kubeadm-config" in args:
        config = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
        print(f"{config}kubernetesVersion: {cluster_version(cluster)}")
        return 0
    if "nodes" in args and any("jsonpath=" in a for a in args):
        for name, node in sorted(_nodes(cluster).items()):
            print(f"{name} {node.get('kubelet', '')}")
        return 0
    for verb in ("drain", "uncordon"):
        if verb in args:
            name = args[args.index(verb) + 1]
            if name not in _nodes(cluster):
                return _fail(f'Error from server (NotFound): nodes "{name}" not found')
            if verb == "drain" and "--ignore-daemonsets" not in args:
                # kubectl drain refuses DaemonSet-managed pods without it (staging/src/k8s.io/kubectl/pkg/drain)
                return _fail(f"error: cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {name}")
            _set_node(cluster, name, unschedulable=verb == "drain")
            print(f"node/{name} {'drained' if verb == 'drain' else 'uncordoned'}")
            return 0
    return None


# --- kubeadm upgrade -------------------------------------------------------------------------------------------------


def policy_errors(new: str, cluster_now: str, kubeadm: str, kubelets: list[str]) -> tuple[list[str], list[str]]:
    """kubeadm's EnforceVersionPolicies (cmd/kubeadm/app/phases/upgrade/policy.go): (mandatory, skippable)."""
    mandatory, skippable = [], []
    if minor(new) > minor(cluster_now) + MAX_MINOR_SKEW:
        mandatory.append(
            f'Specified version to upgrade to "{new}" is too high; kubeadm can upgrade only 1 minor version at a time'
        )
    if minor(new) < minor(cluster_now) - MAX_MINOR_SKEW:
        low = f'Specified version to downgrade to "{new}" is too low'
        mandatory.append(f"{low}; kubeadm can downgrade only 1 minor version at a time")
    if (minor(kubeadm), patch(kubeadm)) < (minor(new), patch(new)):
        if minor(new) > minor(kubeadm):
            mandatory.append(
                f'Specified version to upgrade to "{new}" is at least one minor release higher than the kubeadm minor '
                f"release ({minor(new)} > {minor(kubeadm)}). Such an upgrade is not supported"
            )
        else:
            skippable.append(f'Specified version to upgrade to "{new}" is higher than the kubeadm version "{kubeadm}"')
    if minor(kubeadm) > minor(new):
        skippable.append(
            f"Kubeadm version {kubeadm} can only be used to upgrade to Kubernetes version 1.{minor(kubeadm)}"
        )
    old = sorted({k for k in kubelets if k and minor(new) > minor(k) + MAX_KUBELET_SKEW})
    if old:
        skippable.append(f"There are kubelets in this cluster that are too old that have these versions {old}")
    return mandatory, skippable


def upgrade(args: list[str], root: Path, cluster: Path, etcd_image: Any) -> int:
    """`kubeadm upgrade plan [VERSION]`, `kubeadm upgrade apply VERSION [--yes]`, `kubeadm upgrade node`."""
    kubeadm = installed(root, "kubeadm")
    sub = args[1]
    control_plane = (root / "etc/kubernetes/manifests/etcd.yaml").exists()
    if sub in ("plan", "apply"):
        if not (root / "etc/kubernetes/admin.conf").exists():
            return _fail('couldn\'t create a Kubernetes client from file "/etc/kubernetes/admin.conf"')
        positional = [a for a in args[2:] if not a.startswith("-")]
        new = positional[0] if positional else kubeadm
        if not re.fullmatch(r"v\d+\.\d+\.\d+", new):
            return _fail(f'couldn\'t parse version "{new}" as a semantic version')
        kubelets = [n.get("kubelet", "") for n in _nodes(cluster).values()]
        mandatory, skippable = policy_errors(new, cluster_version(cluster), kubeadm, kubelets)
        if mandatory:
            return _fail(
                "the version argument is invalid due to these fatal errors:\n\n\t- " + "\n\t- ".join(mandatory)
            )
        if skippable and "--force" not in args:
            return _fail(
                "the version argument is invalid due to these errors:\n\n\t- "
                + "\n\t- ".join(skippable)
                + "\nCan be bypassed if you pass the --force flag"
            )
        if sub == "plan":
            print(f"[upgrade/versions] Cluster version: {cluster_version(cluster)}")
            print(f"[upgrade/versions] kubeadm version: {kubeadm}")
            return 0
        if not {"--yes", "-y", "--force", "-f"} & set(args):
            # cmdutil.InteractivelyConfirmAction reads stdin; a unit's or SSM's stdin is empty
            print("[upgrade] Are you sure you want to proceed? [y/N]: ")
            return _fail("won't proceed; the user didn't answer (Y|n) in order to continue")
        (cluster / "cluster-version").write_text(new + "\n")
        _static_pods(root, new, etcd_image)
        print(f'[upgrade/successful] SUCCESS! Your cluster was upgraded to "{new}". Enjoy!')
        return 0
    if sub == "node":
        now = cluster_version(cluster)
        if control_plane:
            if minor(kubeadm) != minor(now):
                return _fail(
                    f"[upgrade] kubeadm {kubeadm} cannot write the static Pods of the control plane version {now}"
                )
            _static_pods(root, now, etcd_image)
        (root / "var/lib/kubelet").mkdir(parents=True, exist_ok=True)
        (root / "var/lib/kubelet/config.yaml").write_text(f"# kubelet-config of {now}\n")
        print("[upgrade] The configuration for this node was successfully updated!")
        return 0
    return _fail(f'unknown command "{sub}" for "kubeadm upgrade"')


def _static_pods(root: Path, version: str, etcd_image: Any) -> None:
    manifest = root / "etc/kubernetes/manifests/etcd.yaml"
    text = manifest.read_text()
    manifest.write_text(re.sub(r"image: \S+", f"image: {etcd_image(minor(version))}", text))
    (root / "etc/kubernetes/manifests/kube-apiserver.yaml").write_text(
        f"image: registry.k8s.io/kube-apiserver:{version}\n"
    )

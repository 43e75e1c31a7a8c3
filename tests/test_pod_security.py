"""Every pod the validator creates is admitted by Pod Security Admission at the level its namespace enforces, and
that level is the least the selected tests need (tests/upstream/pod_security.py holds PSA's baseline rule).

The cluster enforces baseline wherever a namespace says nothing (bootstrap/admission-configuration.yaml), and the
run labels its namespace itself: a pod that level refuses never starts, whatever the lab lets through.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from spider_validate import cli
from spider_validate.suites import all_tests

from tests.upstream import ping, pod_security

TESTS = {t.id: t for t in all_tests()}


def manifests(*args: str) -> list[dict[str, Any]]:
    out = CliRunner().invoke(cli.main, ["manifests", "--nodes", "a,b", "--apps", "1", *args])
    assert out.exit_code == 0, out.output
    return list(yaml.safe_load_all(out.output))


def pods(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods, and the pods a StatefulSet would make (its template)."""
    found = [o for o in objs if o["kind"] == "Pod"]
    found += [
        {"metadata": o["spec"]["template"]["metadata"], "spec": o["spec"]["template"]["spec"]}
        for o in objs
        if o["kind"] == "StatefulSet"
    ]
    return found


@pytest.mark.parametrize("test_id", [None, *(t for t in TESTS if TESTS[t].objects)])
def test_every_pod_is_admitted_at_the_namespaces_level(test_id: str | None) -> None:
    objs = manifests(*(["--test", f"^{test_id}$"] if test_id else []))
    ns = objs[0]
    assert ns["kind"] == "Namespace"
    for pod in pods(objs):
        assert pod_security.admitted(ns, pod) == [], pod["metadata"]["name"]


@pytest.mark.parametrize("test_id", [t for t in TESTS if TESTS[t].objects])
def test_a_test_asks_for_privileged_only_when_baseline_refuses_its_pods(test_id: str) -> None:
    """The declared level is the least that admits the test's pods: never privileged for nothing."""
    objs = manifests("--test", f"^{test_id}$")
    own = [
        p for p in pods(objs) if p["metadata"]["labels"].get("spider-validate/role") not in {"server", "client", "app"}
    ]
    assert own, "the test declares objects but none came out"
    refused = [v for p in own for v in pod_security.baseline_violations(p["spec"])]
    level = objs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    assert level == TESTS[test_id].pod_security
    assert (level == "privileged") == bool(refused), refused


def test_the_run_namespace_is_baseline_without_a_test_that_needs_more() -> None:
    objs = manifests("--test", "connectivity|apps|ipam")
    assert objs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_ping_works_in_every_pod_without_net_raw_on_containerd_1_7() -> None:
    """Clients ping as root with every capability dropped: the pod's ping_group_range must hold gid 0."""
    for pod in pods(manifests("--test", "ipam|rdma")):
        container = pod["spec"]["containers"][0]
        assert "NET_RAW" not in (container["securityContext"]["capabilities"].get("add") or [])
        assert ping.ping_works(pod["spec"], container, ping.KERNEL_DEFAULT_RANGE), pod["metadata"]["name"]


def test_the_model_refuses_what_psa_refuses() -> None:
    """The model itself can fail: NET_RAW, IPC_LOCK, hostNetwork and an unsafe sysctl are each refused."""
    base: dict[str, Any] = {"containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["CHOWN"]}}}]}
    assert pod_security.baseline_violations(base) == []
    for cap in ("NET_RAW", "IPC_LOCK"):
        spec = {"containers": [{"name": "c", "securityContext": {"capabilities": {"add": [cap]}}}]}
        assert pod_security.baseline_violations(spec) == [f"non-default capabilities: container c adds {cap}"]
    assert pod_security.baseline_violations({"hostNetwork": True}) == ["host namespaces: hostNetwork"]
    unsafe = {"securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}}
    assert pod_security.baseline_violations(unsafe) == ["forbidden sysctls: net.core.somaxconn"]
    privileged = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
    assert pod_security.admitted(privileged, {"spec": {"hostNetwork": True}}) == []

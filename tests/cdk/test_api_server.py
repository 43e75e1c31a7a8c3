"""The API server of every control plane: its audit log (policy, path, rotation) and the encryption of Secrets at rest,
as kubeadm's configuration and the files the control planes get set them up, judged with the API server's own rules
(tests/upstream/audit_policy.py, tests/upstream/encryption_config.py)."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from cdk import userdata
from cdk.config import ClusterConfig
from cdk.ipplan import make_plan
from tests.upstream import audit_policy
from tests.upstream import encryption_config as encryption
from tests.upstream.audit_policy import Request

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
HA = ClusterConfig.model_validate({"control_plane": {"count": 3}})
CHECKER = json.loads((FIXTURES / "audit-policy-checker-test.json").read_text())
VALIDATION = json.loads((FIXTURES / "audit-policy-validation-test.json").read_text())
ENCRYPTION = json.loads((FIXTURES / "encryption-config-validation-test.json").read_text())


def api_server(config: ClusterConfig) -> dict[str, Any]:
    """The apiServer section of the ClusterConfiguration: kubeadm init writes it into the cluster, and every control
    plane that joins builds its API server from it (kubeadm join --control-plane reads the kubeadm-config ConfigMap)."""
    plan = make_plan(config)
    init = yaml.safe_load_all(userdata.kubeadm_init_config(config, plan, plan.control_planes[0]))
    section: dict[str, Any] = next(d for d in init if d["kind"] == "ClusterConfiguration")["apiServer"]
    return section


def flags(section: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["value"] for a in section["extraArgs"]}


def mounted(section: dict[str, Any], path: str, writable: bool) -> bool:
    """Whether a hostPath volume of the API server's pod holds `path` at the same path (writable if asked)."""
    return any(
        PurePosixPath(path).is_relative_to(v["hostPath"])
        and v["hostPath"] == v["mountPath"]
        and (not writable or not v.get("readOnly", False))
        for v in section["extraVolumes"]
    )


def shipped_policy(config: ClusterConfig) -> list[dict[str, Any]]:
    """The policy file at the path the flag names, as each control plane gets it."""
    plan = make_plan(config)
    path = flags(api_server(config))["audit-policy-file"]
    return [yaml.safe_load(userdata.node_files(config, plan, cp)[path]) for cp in plan.control_planes]


@pytest.mark.parametrize("case", CHECKER["cases"], ids=lambda c: f"{c['test']}-{c['request']}-{'+'.join(c['rules'])}")
def test_the_audit_model_passes_upstreams_checker_cases(case: dict[str, Any]) -> None:
    attrs = dict(CHECKER["attrs"][case["request"]])
    request = Request(
        user=attrs.pop("user"),
        groups=tuple(attrs.pop("groups")),
        resource_request=attrs.pop("resourceRequest"),
        **attrs,
    )
    policy = {"omitStages": case["policyOmitStages"], "rules": [CHECKER["rules"][name] for name in case["rules"]]}
    assert audit_policy.evaluate(policy, request) == (case["level"], set(case["omitStages"]))


def test_the_audit_model_passes_upstreams_validation_cases() -> None:
    assert [p for p in VALIDATION["valid"] if audit_policy.validate(p)] == []
    assert [p for p in VALIDATION["invalid"] if not audit_policy.validate(p)] == []


@pytest.mark.parametrize("config", [ClusterConfig(), HA], ids=["single", "ha"])
def test_every_control_plane_writes_an_audit_log_that_rotates(config: ClusterConfig) -> None:
    section = api_server(config)
    args = flags(section)
    log = args["audit-log-path"]
    assert mounted(section, args["audit-policy-file"], writable=False) and mounted(section, log, writable=True)
    assert int(args["audit-log-maxsize"]) * int(args["audit-log-maxbackup"]) <= 4096  # MB, on a 50 GiB root volume
    assert int(args["audit-log-maxage"]) >= 30 and args["audit-log-compress"] == "true"
    # Secrets encrypted at rest: the file control-plane-0 makes (tests/bootstrap), re-read when a rotation edits it.
    assert mounted(section, args["encryption-provider-config"], writable=False)
    assert args["encryption-provider-config-automatic-reload"] == "true"
    policies = shipped_policy(config)
    assert len(policies) == config.control_plane.count and all(p == policies[0] for p in policies)
    assert policies[0]["apiVersion"] == "audit.k8s.io/v1" and policies[0]["kind"] == "Policy"
    assert audit_policy.validate(policies[0]) == []


ADMIN = ("kubernetes-admin", ("kubeadm:cluster-admins", "system:authenticated"))
NODE = ("system:node:worker-0", ("system:nodes", "system:authenticated"))
SPIDERPOOL = ("system:serviceaccount:kube-system:spiderpool-controller", ("system:serviceaccounts:kube-system",))
LEASES = ("coordination.k8s.io", "leases")
APP = ("system:serviceaccount:default:app", ("system:serviceaccounts", "system:serviceaccounts:default"))
#: (who, what) -> the level the API server logs it at: Metadata (who, what, when, the answer) or None.
REQUESTS = [
    (Request(*ADMIN, verb="create", namespace="default", group="apps", resource="deployments"), "Metadata"),
    (Request(*ADMIN, verb="get", namespace="default", resource="secrets", name="db"), "Metadata"),
    (Request(*ADMIN, verb="create", namespace="default", resource="pods", subresource="exec", name="web"), "Metadata"),
    (Request(*APP, verb="list", namespace="default", resource="configmaps"), "Metadata"),
    (Request(*APP, verb="create", resource="serviceaccounts", subresource="token", namespace="default"), "Metadata"),
    (Request(*SPIDERPOOL, verb="list", namespace="kube-system", resource="secrets"), "Metadata"),
    (Request(*NODE, verb="get", namespace="default", resource="secrets", name="db"), "Metadata"),
    (Request(*SPIDERPOOL, verb="watch", group="spiderpool.spidernet.io", resource="spiderippools"), "None"),
    (Request(*SPIDERPOOL, verb="update", group="spiderpool.spidernet.io", resource="spiderippools"), "Metadata"),
    (Request("system:kube-proxy", ("system:authenticated",), verb="watch", resource="services"), "None"),
    (Request(*NODE, verb="update", namespace="kube-node-lease", group=LEASES[0], resource=LEASES[1]), "None"),
    (Request(*NODE, verb="patch", resource="nodes", subresource="status", name="worker-0"), "None"),
    (Request(*NODE, verb="create", namespace="default", resource="pods", name="web"), "Metadata"),
    (
        Request(
            "system:kube-scheduler", (), verb="update", namespace="kube-system", group=LEASES[0], resource=LEASES[1]
        ),
        "None",
    ),
    (Request(*NODE, verb="create", namespace="default", resource="events"), "None"),
    (Request("system:anonymous", ("system:unauthenticated",), resource_request=False, path="/readyz"), "None"),
    (Request(*ADMIN, resource_request=False, path="/api/v1"), "Metadata"),
]


@pytest.mark.parametrize(
    ("request_", "level"), REQUESTS, ids=[f"{r.user}-{r.verb}-{r.resource or r.path}" for r, _ in REQUESTS]
)
def test_the_audit_log_records_who_did_what_and_never_a_body(request_: Request, level: str) -> None:
    """Metadata for people, workloads and anything touching secrets; nothing for the system's own reads, heartbeats,
    events and health checks; never Request or RequestResponse (a body: a secret's value, a token)."""
    (policy, *_) = shipped_policy(ClusterConfig())
    assert audit_policy.evaluate(policy, request_) == (level, {"RequestReceived"})


@pytest.mark.parametrize("case", ENCRYPTION["structure"], ids=lambda c: c["desc"])
def test_the_encryption_model_passes_upstreams_structure_cases(case: dict[str, Any]) -> None:
    assert encryption.validate(case["in"], case["reload"]) == [tuple(e) for e in case["want"]]


def test_the_encryption_model_passes_upstreams_key_and_kms_cases() -> None:
    for case in ENCRYPTION["key"]:
        assert [m for _, m in encryption.validate_key(case["in"], encryption.AES_KEY_SIZES)] == case["want"], case
    for table, check in (
        ("kmsTimeout", encryption.kms_timeout),
        ("kmsEndpoint", encryption.kms_endpoint),
        ("kmsCacheSize", encryption.kms_cache_size),
        ("kmsAPIVersion", encryption.kms_api_version),
    ):
        for case in ENCRYPTION[table]:
            assert check(case["in"]) == case["want"], case
    for case in ENCRYPTION["kmsName"]:
        assert encryption.kms_name(case["in"], set(case["names"]), case["reload"]) == case["want"], case

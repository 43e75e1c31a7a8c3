"""The bootstrap's shell scripts name the SSM parameters as spider_validate.names does, as their calls show.

The scripts cannot import Python and the parameter names are not passed in node.env (that would change every
node's user data): they are literals in bootstrap/control-plane.sh and join.sh. Here the real scripts run in the
sandbox and the names they give `aws ssm` must be the parameters the stack creates (cdk/constructs/secrets.py),
with their tier and the cluster's KMS alias, and what each role's policy grants (cdk/constructs/iam.py).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from spider_validate import names

from cdk.config import ClusterConfig
from cdk.constructs import iam, secrets
from cdk.ipplan import Role
from tests.bootstrap.sandbox import Keys, Sandbox, make_sandbox

pytestmark = pytest.mark.slow  # the bootstrap sandbox, as tests/bootstrap/test_bootstrap_sandbox.py
HA = ClusterConfig.model_validate({"name": "names-ha", "control_plane": {"count": 3}})


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Sandbox:
    cp = make_sandbox(tmp_path_factory.mktemp("control-plane-0"), HA, "control-plane-0", keys)
    proc = cp.run()
    assert proc.returncode == 0, proc.stderr
    return cp


def ssm_calls(sb: Sandbox, verb: str) -> list[dict[str, str]]:
    """The options of each `aws ssm VERB` call the node made (the stub logs each call's arguments)."""
    out = []
    for call in sb.calls():
        args = call.split()
        if args[:3] == ["aws", "ssm", verb]:
            out.append({a: v for a, v in pairwise(args[3:]) if a.startswith("--")})
    return out


def test_control_plane_0_publishes_the_parameters_the_stack_creates(control_plane: Sandbox) -> None:
    puts = ssm_calls(control_plane, "put-parameter")
    published = {(p["--name"], p["--tier"]) for p in puts}
    created = {(names.ssm_parameter(HA.name, name), tier) for name, (_, tier) in secrets.PARAMETERS.items()}
    replacement = {(names.ssm_parameter(HA.name, names.ETCD_MEMBER_REPLACEMENT), "Standard")}
    assert published == created - replacement  # only by a control-plane-0's replacement: test_member_replacement
    assert {p["--key-id"] for p in puts} == {names.kms_alias(HA.name)}
    granted = {names.ssm_parameter(HA.name, n) for n in iam.PARAMETER_ACCESS["control-plane"]["write"]}
    assert {p["--name"] for p in puts} | {name for name, _ in replacement} == granted


@pytest.mark.parametrize(
    ("node", "role", "needs"),
    [
        ("worker-0", "worker", {names.JOIN_WORKER, names.KUBERNETES_VERSION}),
        (
            "control-plane-1",
            "control-plane",
            {names.JOIN_CONTROL_PLANE, names.KUBERNETES_VERSION, names.ENCRYPTION_CONFIG},
        ),
    ],
)
def test_a_joining_node_reads_the_parameters_its_role_may_read(
    tmp_path: Path, keys: Keys, control_plane: Sandbox, node: str, role: Role, needs: set[str]
) -> None:
    """Its join command, the version to install and (control planes) the encryption configuration: exactly what its
    role's policy grants."""
    joining = make_sandbox(tmp_path / node, HA, node, keys, control_plane.cluster.path)
    proc = joining.run()
    read = {g["--name"] for g in ssm_calls(joining, "get-parameter")}
    assert read == {names.ssm_parameter(HA.name, p) for p in needs}
    assert proc.returncode == 0, proc.stderr
    # and a control plane the member-replacement request (replace-member.sh; test_member_replacement.py)
    answered = {names.ETCD_MEMBER_REPLACEMENT} if role == "control-plane" else set()
    assert set(iam.PARAMETER_ACCESS[role]["read"]) == needs | answered

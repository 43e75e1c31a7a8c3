"""Terraform's own verdict on every synthesized stack (issue 11): the real binary and the real hashicorp/aws provider
(the 5.x of the local mirror, after `tests/terraform/downgrade.py`) validate, plan, apply, plan again, destroy,
against a moto server of the test's own on 127.0.0.1; then the emulated APIs must hold nothing tagged with the
cluster. The four stacks run concurrently (each in its own moto process and working directory); each step is its
own test, so a failure names the step and carries Terraform's message.

What the emulator lacks is filled in `tests/terraform/gaps.py` after the AWS API reference; the README's table of
what was exercised lists those fills.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import VARIANTS, Synthesized, synthesize
from tests.terraform.cli import TerraformFailed
from tests.terraform.downgrade import UnsupportedConstruct, downgrade
from tests.terraform.emulator import MotoServer
from tests.terraform.harness import CLUSTER_TAG, REGION, STEPS, Lifecycle, NotConverged, Provider, Report
from tests.terraform.leftovers import client, tagged
from tests.terraform.node_writes import control_plane_writes

pytestmark = pytest.mark.synth


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Provider:
    return Provider.discover(tmp_path_factory.mktemp("tf-provider"))


# --- deliberately broken stacks: the harness must fail on each, with Terraform's own message ----------------------


def _small_stack(synthesized: dict[str, Synthesized], keep: set[str]) -> dict[str, Any]:
    """The `none` stack cut down to some resource types (and its AMI lookup, partition and account data)."""
    stack = copy.deepcopy(synthesized["none"].stack)
    stack["resource"] = {rtype: body for rtype, body in stack["resource"].items() if rtype in keep}
    stack.pop("output", None)
    return stack


def _first(stack: dict[str, Any], rtype: str) -> dict[str, Any]:
    body: dict[str, Any] = next(iter(stack["resource"][rtype].values()))
    return body


def _unknown_argument(synthesized: dict[str, Synthesized]) -> dict[str, Any]:
    stack = _small_stack(synthesized, {"aws_vpc"})
    _first(stack, "aws_vpc")["enable_jumbo_frames"] = True
    return stack


def _dangling_reference(synthesized: dict[str, Synthesized]) -> dict[str, Any]:
    stack = _small_stack(synthesized, {"aws_vpc", "aws_subnet"})
    for subnet in stack["resource"]["aws_subnet"].values():
        subnet["vpc_id"] = "${aws_vpc.removed.id}"
    return stack


def _perpetual_diff(synthesized: dict[str, Synthesized]) -> dict[str, Any]:
    """A tag that changes at every plan: apply succeeds, the plan after it is not empty."""
    stack = _small_stack(synthesized, {"aws_vpc"})
    _first(stack, "aws_vpc")["tags"]["deployed"] = "${timestamp()}"
    return stack


def _key_as_arn(synthesized: dict[str, Synthesized]) -> dict[str, Any]:
    """Issue 9 item 7 as it was: Terraform gives SSM the key's ARN, control-plane-0 the alias; SSM records what it
    is given, so the plan after the node's writes wants `key_id` back."""
    stack = _small_stack(synthesized, {"aws_kms_key", "aws_kms_alias", "aws_ssm_parameter"})
    key = next(iter(stack["resource"]["aws_kms_key"]))
    parameters = stack["resource"]["aws_ssm_parameter"]
    for name in [n for n, p in parameters.items() if p["type"] != "SecureString"]:  # the backup bucket's name
        del parameters[name]
    for parameter in parameters.values():
        parameter["key_id"] = f"${{aws_kms_key.{key}.arn}}"
    return stack


def _burstable_in_cluster_group(synthesized: dict[str, Synthesized]) -> dict[str, Any]:
    """Issue 9 item 9 as it was: burstable workers in the cluster placement group, which EC2 refuses at launch."""
    stack = copy.deepcopy(synthesized["none"].stack)
    for instance in stack["resource"]["aws_instance"].values():
        if "placement_group" in instance:
            instance["instance_type"] = "t3.large"
    return stack


#: name -> (the broken stack, the last step to run)
BROKEN: dict[str, tuple[Callable[[dict[str, Synthesized]], dict[str, Any]], str]] = {
    "unknown-argument": (_unknown_argument, "validate"),
    "dangling-reference": (_dangling_reference, "plan"),
    "perpetual-diff": (_perpetual_diff, "replan"),
    "key-as-arn": (_key_as_arn, "replan"),
    "burstable-in-cluster-group": (_burstable_in_cluster_group, "apply"),
}
#: Configurations beyond the shared VARIANTS that only Terraform's verdict tells apart: burstable workers, which a
#: cluster placement group refuses (the stack must leave the group out).
EXTRA: dict[str, dict[str, Any]] = {
    "softroce-t3": {"name": "burstable", "workers": {"instance_type": "t3.large", "rdma": "softroce"}},
}
SCENARIOS = [*VARIANTS, *EXTRA]


def _instance(stack: dict[str, Any], node: str) -> str:
    (name,) = [n for n in stack["resource"]["aws_instance"] if n.startswith(f"nodes_{node}_")]
    return f"aws_instance.{name}"


#: Day-two changes of the "none" scenario (3 workers), each synthesized and planned against its deployed stack, as the
#: user's next `cdktn deploy` would be (README "What a configuration change does to running nodes"): name ->
#: (the configuration's change, the plan's options given the deployed stack).
RECONFIGURATIONS: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any]], tuple[str, ...]]]] = {
    "kubernetes-minor": ({"kubernetes_version": "1.37"}, lambda _: ()),
    "one-worker-fewer": ({"workers": {**VARIANTS["none"]["workers"], "count": 2}}, lambda _: ()),
    "replace-worker-1": ({}, lambda stack: (f"-replace={_instance(stack, 'worker-1')}",)),
}


@pytest.fixture(scope="module")
def reports(
    synthesized: dict[str, Synthesized], provider: Provider, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Report]:
    """Every scenario's whole life cycle and every broken stack's, concurrently (most of their time is the
    provider waiting between polls); each stops its own moto server and Terraform, also on failure."""
    runs: dict[str, tuple[Lifecycle, str]] = {
        name: (Lifecycle(s.stack, s.config.name, tmp_path_factory.mktemp(f"tf-{name}"), provider), STEPS[-1])
        for name, s in synthesized.items()
    }
    for name, data in EXTRA.items():
        base = tmp_path_factory.mktemp(f"synth-{name}")
        (base / "cluster.yaml").write_text(yaml.safe_dump(data))
        assert synthesize(base / "cdktf.out", base / "cluster.yaml") == 0
        stack = json.loads((base / "cdktf.out" / "stacks" / data["name"] / "cdk.tf.json").read_text())
        runs[name] = (Lifecycle(stack, data["name"], tmp_path_factory.mktemp(f"tf-{name}"), provider), STEPS[-1])
    plain = synthesized["none"]
    for name, (change, options) in RECONFIGURATIONS.items():
        base = tmp_path_factory.mktemp(f"synth-{name}")
        (base / "cluster.yaml").write_text(yaml.safe_dump({**VARIANTS["none"], **change}))
        assert synthesize(base / "cdktf.out", base / "cluster.yaml") == 0
        stack = json.loads((base / "cdktf.out" / "stacks" / plain.config.name / "cdk.tf.json").read_text())
        runs["none"][0].reconfigurations[name] = (stack, options(plain.stack))
    for name, (build, until) in BROKEN.items():
        writes = control_plane_writes(plain.stack) if name == "key-as-arn" else []
        workdir = tmp_path_factory.mktemp(f"tf-broken-{name}")
        runs[name] = (Lifecycle(build(synthesized), plain.config.name, workdir, provider, writes=writes), until)
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {name: pool.submit(run.run, until) for name, (run, until) in runs.items()}
        try:
            return {name: future.result() for name, future in futures.items()}
        except BaseException:  # Ctrl-C or a harness error: stop every terraform and server now, not at their end
            for run, _ in runs.values():
                run.abort()
            raise


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_stack_lifecycle(name: str, step: str, reports: dict[str, Report]) -> None:
    reports[name].check(step)


def test_lifecycle_timings(reports: dict[str, Report]) -> None:
    """Not a check of the stacks: prints how long each step took (`pytest -s`), for the README's numbers."""
    for name, report in reports.items():
        print(name, " ".join(f"{step}={seconds:.1f}s" for step, seconds in report.seconds.items()))
    assert all(report.seconds for report in reports.values())


def test_unknown_argument_fails_with_terraforms_message(reports: dict[str, Report]) -> None:
    with pytest.raises(TerraformFailed, match='No argument or block type is named "enable_jumbo_frames"'):
        reports["unknown-argument"].check("validate")


def test_dangling_reference_fails_with_terraforms_message(reports: dict[str, Report]) -> None:
    with pytest.raises(TerraformFailed, match="Reference to undeclared resource"):
        reports["dangling-reference"].check("validate")
    with pytest.raises(AssertionError, match="plan not reached: validate failed first"):
        reports["dangling-reference"].check("plan")


def test_perpetual_diff_fails_the_second_plan(reports: dict[str, Report]) -> None:
    reports["perpetual-diff"].check("apply")
    with pytest.raises(NotConverged, match=r"aws_vpc\.network_vpc_\w+.*update"):
        reports["perpetual-diff"].check("replan")


def test_key_given_as_arn_drifts_once_the_node_writes(reports: dict[str, Report]) -> None:
    reports["key-as-arn"].check("publish")
    with pytest.raises(NotConverged, match=r"aws_ssm_parameter\.\S+ \['update'\]: key_id: 'alias/"):
        reports["key-as-arn"].check("replan")


def test_burstable_workers_in_a_cluster_group_fail_at_launch(reports: dict[str, Report]) -> None:
    reports["burstable-in-cluster-group"].check("plan")
    with pytest.raises(TerraformFailed, match=r"Cluster placement groups are not supported by the 't3\.large'"):
        reports["burstable-in-cluster-group"].check("apply")


def test_a_new_kubernetes_minor_in_the_configuration_changes_nothing_deployed(reports: dict[str, Report]) -> None:
    """A running cluster is upgraded by `spiderpool-rdma upgrade`, never by Terraform: no node is replaced or stopped
    (the user data that carries the minor is ignored after creation, cdk/constructs/nodes.py)."""
    reports["none"].check("reconfigure")
    assert reports["none"].plans["kubernetes-minor"] == {}


def test_one_worker_fewer_removes_that_worker_and_touches_nothing_else(
    reports: dict[str, Report], synthesized: dict[str, Synthesized]
) -> None:
    reports["none"].check("reconfigure")
    stack = synthesized["none"].stack
    (eni,) = [n for n in stack["resource"]["aws_network_interface"] if n.startswith("nodes_worker-2-eni_")]
    assert reports["none"].plans["one-worker-fewer"] == {
        _instance(stack, "worker-2"): ["delete"],
        f"aws_network_interface.{eni}": ["delete"],
    }


def test_replacing_one_worker_replaces_its_instance_and_nothing_else(
    reports: dict[str, Report], synthesized: dict[str, Synthesized]
) -> None:
    """Its ENI, fixed address, prefixes and pools stay: the new instance gets them, and joins as worker-1 again."""
    reports["none"].check("reconfigure")
    plan = reports["none"].plans["replace-worker-1"]
    assert list(plan) == [_instance(synthesized["none"].stack, "worker-1")]
    assert sorted(next(iter(plan.values()))) == ["create", "delete"]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_control_plane_publishes_exactly_the_stacks_parameters(name: str, synthesized: dict[str, Synthesized]) -> None:
    """What the replay writes is what Terraform created for the nodes to write (and what the node's IAM policy names);
    Terraform's own value (the backup bucket's name) is not among them."""
    stack = synthesized[name].stack
    declared = {p["name"]: p["tier"] for p in stack["resource"]["aws_ssm_parameter"].values() if "value_wo" in p}
    assert {w.name: w.tier for w in control_plane_writes(stack)} == declared


def test_a_new_6x_only_construct_fails_loudly(
    synthesized: dict[str, Synthesized], provider: Provider, tmp_path: Path
) -> None:
    """`secondary_network_interface` exists in the pinned 6.x provider only and has no rewrite: the downgrade
    refuses it by name, as the scenario's validate step, instead of letting 5.x misread or drop it."""
    stack = copy.deepcopy(synthesized["default-efa"].stack)
    instance = _first(stack, "aws_instance")
    instance["secondary_network_interface"] = {"network_interface_id": "eni-0", "device_index": 1}
    report = Lifecycle(stack, "spiderpool-rdma", tmp_path, provider).run(until="validate")
    with pytest.raises(UnsupportedConstruct, match=r"aws_instance\.[\w-]+\.secondary_network_interface is 6\.x-only"):
        report.check("validate")


def test_downgrade_changes_only_the_pin_and_the_primary_interface(
    synthesized: dict[str, Synthesized], provider: Provider
) -> None:
    stack = synthesized["default-efa"].stack
    out = downgrade(stack, provider.schema, provider.version)
    assert out["terraform"]["required_providers"]["aws"]["version"] == provider.version
    for name, body in stack["resource"]["aws_instance"].items():
        rewritten = out["resource"]["aws_instance"][name]
        eni = body["primary_network_interface"]["network_interface_id"]
        assert rewritten.pop("network_interface") == [{"device_index": 0, "network_interface_id": eni}]
        assert rewritten == {k: v for k, v in body.items() if k != "primary_network_interface"}
    untouched = {k: v for k, v in out["resource"].items() if k != "aws_instance"}
    assert json.dumps(untouched, sort_keys=True) == json.dumps(
        {k: v for k, v in stack["resource"].items() if k != "aws_instance"}, sort_keys=True
    )


def test_sweep_finds_what_is_left(tmp_path: Path) -> None:
    """The leftover check sees a tagged resource (so its empty answer after destroy means something)."""
    moto = MotoServer.start(tmp_path, [])
    try:
        ec2 = client("ec2", moto.url, REGION)
        tags = [{"ResourceType": "vpc", "Tags": [{"Key": CLUSTER_TAG, "Value": "left"}]}]
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16", TagSpecifications=tags)["Vpc"]["VpcId"]
        found = tagged(moto.url, REGION, CLUSTER_TAG, "left")
        assert found["aws_vpc"] == [f"vpcs {vpc}"]
        assert not tagged(moto.url, REGION, CLUSTER_TAG, "other")["aws_vpc"]
    finally:
        moto.stop()

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VARIANTS, Synthesized
from tests.terraform.cli import TerraformFailed
from tests.terraform.downgrade import UnsupportedConstruct, downgrade
from tests.terraform.emulator import MotoServer
from tests.terraform.harness import CLUSTER_TAG, REGION, STEPS, Lifecycle, NotConverged, Provider, Report
from tests.terraform.leftovers import tagged
from tests.terraform.node_writes import control_plane_writes

pytestmark = pytest.mark.synth


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Provider:
    return Provider.discover(tmp_path_factory.mktemp("tf-provider"))


@pytest.fixture(scope="module")
def lifecycles(
    synthesized: dict[str, Synthesized], provider: Provider, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Report]:
    """Every scenario's whole life cycle, concurrently; each stops its own moto server and Terraform on failure."""
    runs = {
        name: Lifecycle(s.stack, s.config.name, tmp_path_factory.mktemp(f"tf-{name}"), provider)
        for name, s in synthesized.items()
    }
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {name: pool.submit(run.run) for name, run in runs.items()}
        try:
            return {name: future.result() for name, future in futures.items()}
        except BaseException:  # Ctrl-C or a harness error: stop every terraform and server now, not at their end
            for run in runs.values():
                run.abort()
            raise


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("name", list(VARIANTS))
def test_stack_lifecycle(name: str, step: str, lifecycles: dict[str, Report]) -> None:
    lifecycles[name].check(step)


def test_lifecycle_timings(lifecycles: dict[str, Report]) -> None:
    """Not a check of the stacks: prints how long each step took (`pytest -s`), for the README's numbers."""
    for name, report in lifecycles.items():
        print(name, " ".join(f"{step}={seconds:.1f}s" for step, seconds in report.seconds.items()))
    assert all(report.seconds for report in lifecycles.values())


# --- the harness must fail on bad stacks, with Terraform's own message --------------------------------------------


def _small_stack(synthesized: dict[str, Synthesized], keep: set[str]) -> dict[str, Any]:
    """The `none` stack cut down to some resource types (and its AMI lookup, partition and account data)."""
    stack = copy.deepcopy(synthesized["none"].stack)
    stack["resource"] = {rtype: body for rtype, body in stack["resource"].items() if rtype in keep}
    stack.pop("output", None)
    return stack


def _first(stack: dict[str, Any], rtype: str) -> dict[str, Any]:
    body: dict[str, Any] = next(iter(stack["resource"][rtype].values()))
    return body


def test_unknown_argument_fails_with_terraforms_message(
    synthesized: dict[str, Synthesized], provider: Provider, tmp_path: Path
) -> None:
    stack = _small_stack(synthesized, {"aws_vpc"})
    _first(stack, "aws_vpc")["enable_jumbo_frames"] = True
    report = Lifecycle(stack, synthesized["none"].config.name, tmp_path, provider, writes=[]).run(until="validate")
    with pytest.raises(TerraformFailed, match='No argument or block type is named "enable_jumbo_frames"'):
        report.check("validate")


def test_dangling_reference_fails_with_terraforms_message(
    synthesized: dict[str, Synthesized], provider: Provider, tmp_path: Path
) -> None:
    stack = _small_stack(synthesized, {"aws_vpc", "aws_subnet"})
    for subnet in stack["resource"]["aws_subnet"].values():
        subnet["vpc_id"] = "${aws_vpc.removed.id}"
    report = Lifecycle(stack, synthesized["none"].config.name, tmp_path, provider, writes=[]).run(until="validate")
    with pytest.raises(TerraformFailed, match="Reference to undeclared resource"):
        report.check("validate")
    with pytest.raises(AssertionError, match="plan not reached: validate failed first"):
        report.check("plan")


def test_perpetual_diff_fails_the_second_plan(
    synthesized: dict[str, Synthesized], provider: Provider, tmp_path: Path
) -> None:
    """A tag that changes on every plan: apply succeeds, the plan after it is not empty."""
    stack = _small_stack(synthesized, {"aws_vpc"})
    _first(stack, "aws_vpc")["tags"]["deployed"] = "${timestamp()}"
    report = Lifecycle(stack, synthesized["none"].config.name, tmp_path, provider, writes=[]).run(until="replan")
    report.check("apply")
    with pytest.raises(NotConverged, match=r"aws_vpc\.network_vpc_\w+.*update"):
        report.check("replan")


def test_key_given_as_arn_drifts_once_the_node_writes(
    synthesized: dict[str, Synthesized], provider: Provider, tmp_path: Path
) -> None:
    """Issue 9 item 7 as it was: Terraform gives SSM the key's ARN, control-plane-0 the alias; SSM records what it
    is given, so the plan after the node's writes wants `key_id` back. The harness must catch it."""
    full = synthesized["none"].stack
    stack = _small_stack(synthesized, {"aws_kms_key", "aws_kms_alias", "aws_ssm_parameter"})
    key = next(iter(stack["resource"]["aws_kms_key"]))
    for parameter in stack["resource"]["aws_ssm_parameter"].values():
        parameter["key_id"] = f"${{aws_kms_key.{key}.arn}}"
    writes = control_plane_writes(full)
    report = Lifecycle(stack, synthesized["none"].config.name, tmp_path, provider, writes=writes).run(until="replan")
    report.check("publish")
    with pytest.raises(NotConverged, match=r"aws_ssm_parameter\.\S+: \['update'\]"):
        report.check("replan")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_control_plane_publishes_exactly_the_stacks_parameters(name: str, synthesized: dict[str, Synthesized]) -> None:
    """What the replay writes is what Terraform created (and what the node's IAM policy names)."""
    stack = synthesized[name].stack
    declared = {p["name"]: p["tier"] for p in stack["resource"]["aws_ssm_parameter"].values()}
    assert {w.name: w.tier for w in control_plane_writes(stack)} == declared


def test_a_new_6x_only_construct_fails_loudly(synthesized: dict[str, Synthesized], provider: Provider) -> None:
    """`secondary_network_interface` exists in the pinned 6.x provider only and has no rewrite: the downgrade
    refuses it by name instead of letting 5.x misread or drop it."""
    stack = copy.deepcopy(synthesized["default-efa"].stack)
    instance = _first(stack, "aws_instance")
    instance["secondary_network_interface"] = {"network_interface_id": "eni-0", "device_index": 1}
    with pytest.raises(UnsupportedConstruct, match=r"aws_instance\.[\w-]+\.secondary_network_interface is 6\.x-only"):
        downgrade(stack, provider.schema, provider.version)


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
        import boto3

        ec2 = boto3.client(
            "ec2", endpoint_url=moto.url, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
        )
        tags = [{"ResourceType": "vpc", "Tags": [{"Key": CLUSTER_TAG, "Value": "left"}]}]
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16", TagSpecifications=tags)["Vpc"]["VpcId"]
        found = tagged(moto.url, REGION, CLUSTER_TAG, "left")
        assert found["aws_vpc"] == [f"vpcs {vpc}"]
        assert not tagged(moto.url, REGION, CLUSTER_TAG, "other")["aws_vpc"]
    finally:
        moto.stop()

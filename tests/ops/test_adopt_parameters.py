"""`up` resumed after a Ctrl-C during `terraform apply`: the SSM parameters that apply made without recording them
(Terraform cancels the provider's calls in flight at Ctrl-C) are imported before the next apply, which would
otherwise fail on PutParameter's ParameterAlreadyExists; a parameter that a running cluster's node wrote, or one not
tagged with the cluster, is never taken over. SSM is moto's; Terraform is a recorder of the commands it is given
(the real Terraform's import is run by tests/ops/test_up_terraform.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from spider_validate import names

from ops import infra

REGION = "us-east-1"
PARAMETERS = {"param-kubernetes-version": "/spiderpool-rdma/mine/kubernetes-version",
              "param-join-worker": "/spiderpool-rdma/mine/join-worker"}  # fmt: skip


class Recorded(infra.Infra):
    """The stack's Infra with Terraform replaced by a record of its commands; `show -json` answers as Terraform 1.11
    does for a state holding `recorded` (without a state: only its format version)."""

    recorded: tuple[str, ...] = ()
    commands: list[tuple[str, ...]]

    def terraform(self, *args: str) -> str:
        self.commands.append(args)
        if args[:2] != ("show", "-json"):
            return ""
        resources = [{"address": a, "mode": "managed", "type": a.split(".")[0]} for a in self.recorded]
        return json.dumps({"format_version": "1.0", "values": {"root_module": {"resources": resources}}} if resources
                          else {"format_version": "1.0"})  # fmt: skip


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION)


def stack(tmp_path: Path, recorded: tuple[str, ...]) -> Recorded:
    stack_dir = tmp_path / "stacks" / "mine"
    stack_dir.mkdir(parents=True)
    resources = {key: {"name": name, "type": "SecureString"} for key, name in PARAMETERS.items()}
    (stack_dir / "cdk.tf.json").write_text(json.dumps({"resource": {"aws_ssm_parameter": resources}}))
    found = Recorded(tmp_path / "my.yaml", "mine", tmp_path, lambda line: None)
    object.__setattr__(found, "recorded", recorded)
    object.__setattr__(found, "commands", [])
    return found


def put(ssm: Any, name: str, value: str, cluster: str = "mine") -> None:
    ssm.put_parameter(Name=name, Value=value, Type="SecureString", Tags=[{"Key": names.CLUSTER_TAG, "Value": cluster}])


def imports(found: Recorded) -> list[tuple[str, ...]]:
    return [c for c in found.commands if c[0] == "import"]


def test_a_parameter_an_interrupted_apply_made_is_imported_and_the_others_are_left_to_the_apply(
    tmp_path: Path, ssm: Any
) -> None:
    put(ssm, PARAMETERS["param-kubernetes-version"], names.PLACEHOLDER)  # made, never recorded
    found = stack(tmp_path, recorded=("aws_vpc.network_vpc",))
    found._adopt_unrecorded_parameters(ssm)
    assert imports(found) == [
        ("import", "-input=false", "-no-color", "aws_ssm_parameter.param-kubernetes-version",
         PARAMETERS["param-kubernetes-version"]),
    ]  # fmt: skip


def test_a_recorded_parameter_is_not_imported_again(tmp_path: Path, ssm: Any) -> None:
    put(ssm, PARAMETERS["param-kubernetes-version"], "v1.36.3")  # recorded, and written by a node since
    found = stack(tmp_path, recorded=("aws_ssm_parameter.param-kubernetes-version",))
    found._adopt_unrecorded_parameters(ssm)
    assert imports(found) == []


@pytest.mark.parametrize(
    ("value", "cluster"),
    [("v1.36.3", "mine"), (names.PLACEHOLDER, "another"), ("v1.36.3", "another")],
    ids=["written-by-a-node", "another-clusters", "both"],
)
def test_a_parameter_of_a_running_cluster_is_never_taken_over(
    tmp_path: Path, ssm: Any, value: str, cluster: str
) -> None:
    put(ssm, PARAMETERS["param-join-worker"], value, cluster)
    found = stack(tmp_path, recorded=())
    with pytest.raises(infra.ToolFailed, match="/spiderpool-rdma/mine/join-worker exists, but not as an interrupted"):
        found._adopt_unrecorded_parameters(ssm)
    assert imports(found) == []
    assert ssm.get_parameter(Name=PARAMETERS["param-join-worker"], WithDecryption=True)["Parameter"]["Value"] == value

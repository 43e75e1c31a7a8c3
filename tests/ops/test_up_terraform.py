"""`spiderpool-rdma up --until infra` and `down` as users run them, against a moto server: the real cdktn, the real
Terraform and provider (the tests' 5.x rewrite applied through ops.infra.BEFORE_TERRAFORM, the only seam), an
apply interrupted by Ctrl-C and resumed, and the leftover sweep finding what was created outside Terraform."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from spider_validate.names import CLUSTER_TAG, PLACEHOLDER

from ops import infra
from ops.cli import main
from tests.terraform.cli import cli_config
from tests.terraform.downgrade import downgrade
from tests.terraform.emulator import MotoServer
from tests.terraform.harness import REGION, Provider, ami_images, overrides, terraform_env
from tests.terraform.leftovers import client, tagged

pytestmark = [pytest.mark.synth, pytest.mark.slow]

#: A small cluster of the user's own (not the default): one worker without RDMA.
CONFIG = {"name": "mine", "workers": {"instance_type": "m7i.large", "rdma": "none", "count": 1}}


class Emulated:
    """The moto server a run's Terraform and boto3 calls go to, started at the first synthesis (its EC2 must know
    the images the stack looks up)."""

    def __init__(self, workdir: Path, provider: Provider, monkeypatch: pytest.MonkeyPatch) -> None:
        self.workdir, self.provider, self.monkeypatch = workdir, provider, monkeypatch
        self.moto: MotoServer | None = None

    def before_terraform(self, stack_dir: Path) -> None:
        stack = json.loads((stack_dir / "cdk.tf.json").read_text())
        if self.moto is None:
            self.moto = MotoServer.start(self.workdir / "moto", ami_images(stack))
            self.monkeypatch.setenv("AWS_ENDPOINT_URL", self.moto.url)  # boto3's calls: the sweep, SSM
        (stack_dir / "cdk.tf.json").write_text(
            json.dumps(downgrade(stack, self.provider.schema, self.provider.version))
        )
        # only the endpoints: the stack's own backend keeps the state beside the output directory
        endpoints = {k: v for k, v in overrides(self.moto.url).items() if k != "terraform"}
        (stack_dir / "tests_override.tf.json").write_text(json.dumps(endpoints))

    @property
    def url(self) -> str:
        assert self.moto is not None
        return self.moto.url


@pytest.fixture
def emulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulated]:
    provider = Provider.discover(tmp_path / "provider")
    (tmp_path / "cli.tfrc").write_text(cli_config(provider.mirror))
    for key, value in {**terraform_env(), "TF_CLI_CONFIG_FILE": str(tmp_path / "cli.tfrc")}.items():
        monkeypatch.setenv(key, value)
    emulated = Emulated(tmp_path, provider, monkeypatch)
    monkeypatch.setattr(infra, "BEFORE_TERRAFORM", [emulated.before_terraform])
    yield emulated
    if emulated.moto:
        emulated.moto.stop()


def interrupt_terraform_after_first_creation(log: Path, stack_dir: Path, deadline: float) -> None:
    """Ctrl-C to the running `terraform apply` once it created something (as a terminal sends it)."""
    while time.monotonic() < deadline:
        if log.is_file() and ": Creation complete" in log.read_text():
            for proc in Path("/proc").iterdir():
                try:
                    cmdline = (proc / "cmdline").read_bytes().split(b"\0")
                    cwd = os.readlink(proc / "cwd")
                except (OSError, ValueError):
                    continue
                if cmdline[:2] == [b"terraform", b"apply"] and cwd == str(stack_dir):
                    os.kill(int(proc.name), signal.SIGINT)
                    return
        time.sleep(0.2)


def delete(item: str, url: str) -> None:
    """Delete one of `down`'s leftovers (`KIND ... ID`, as ops/leftovers.py names them) through the AWS API."""
    kind, name = item.rsplit(" ", 1)
    actions = {
        "ssm parameter": lambda: client("ssm", url, REGION).delete_parameter(Name=name),
        "iam role": lambda: delete_role(client("iam", url, REGION), name),
        "iam instance profile": lambda: delete_instance_profile(client("iam", url, REGION), name),
        "kms key": lambda: client("kms", url, REGION).schedule_key_deletion(KeyId=name, PendingWindowInDays=7),
        "s3 bucket": lambda: client("s3", url, REGION).delete_bucket(Bucket=name),  # made empty by the interrupt
    }
    assert kind in actions, f"an unexpected leftover: {item}"
    actions[kind]()


def delete_instance_profile(iam: Any, name: str) -> None:
    """An instance profile goes once its role is removed from it (IAM's DeleteConflict otherwise): an interrupted
    apply may have made the profile, or the profile and its role, without recording them."""
    for role in iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]:
        iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role["RoleName"])
    iam.delete_instance_profile(InstanceProfileName=name)


def delete_role(iam: Any, name: str) -> None:
    """A role goes once no instance profile holds it and no policy is attached or inline (DeleteConflict)."""
    for profile in iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]:
        iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=name)
    for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    iam.delete_role(RoleName=name)


def store_backups(url: str, state: Path) -> str:
    """Two versions of an etcd snapshot in the cluster's backup bucket (the one in Terraform's state: an interrupted
    apply may have made another), as the control planes' hourly backup leaves them in the versioned bucket: a
    versioned bucket is deleted only once every version is. The bucket's name."""
    (bucket,) = [
        instance["attributes"]["id"]
        for resource in json.loads(state.read_text())["resources"]
        if resource["type"] == "aws_s3_bucket" and resource["name"].startswith("backups_")
        for instance in resource["instances"]
    ]
    s3 = client("s3", url, REGION)
    # moto evaluates the bucket's policy without the keys a real request carries (aws:SecureTransport over its
    # http, aws:PrincipalArn of the control planes' role): its TLS-only and writer denials refuse every put here.
    # The policy is lifted around the puts, as the account's root may, and put back as it was.
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    for body in (b"first", b"second"):
        s3.put_object(Bucket=bucket, Key="etcd/control-plane-0/snapshot.tar.gz", Body=body)
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 2
    return bucket


def unrecord_a_parameter(config: Path, stack_dir: Path, state: Path, url: str) -> str:
    """Leave the cluster's version parameter in SSM but in no state, as an apply leaves it when Ctrl-C cancels the
    provider's call after SSM made it (whichever resource the interrupt fell on): out of the state if the apply
    recorded it, else made as the provider makes it. Its name."""
    resources = json.loads((stack_dir / "cdk.tf.json").read_text())["resource"]["aws_ssm_parameter"]
    ((key, resource),) = [(k, r) for k, r in resources.items() if r["name"].endswith("/kubernetes-version")]
    saved = json.loads(state.read_text())["resources"] if state.is_file() else []
    recorded = {f"{r['type']}.{r['name']}" for r in saved}
    if f"aws_ssm_parameter.{key}" in recorded:
        command = ["terraform", "state", "rm", "-no-color", f"aws_ssm_parameter.{key}"]
        infra.run(command, stack_dir, infra.tool_env(config), stack_dir / "test.log", lambda line: None)
    else:
        client("ssm", url, REGION).put_parameter(
            Name=resource["name"], Value=PLACEHOLDER, Type="SecureString", Tags=[{"Key": CLUSTER_TAG, "Value": "mine"}]
        )
    return str(resource["name"])


def up(args: list[str]) -> Any:
    return CliRunner().invoke(main, ["up", *args, "--until", "infra", "--yes"], catch_exceptions=False)


def test_up_until_infra_resumes_and_down_sweeps_what_terraform_did_not_create(
    tmp_path: Path, emulated: Emulated
) -> None:
    config, outdir = tmp_path / "my.yaml", tmp_path / "out"
    config.write_text(yaml.safe_dump(CONFIG))
    args = ["--config", str(config), "--output", str(outdir)]
    stack_dir = outdir / "stacks" / "mine"

    interrupter = threading.Thread(
        target=interrupt_terraform_after_first_creation,
        args=(outdir / "mine.log", stack_dir, time.monotonic() + 600),
    )
    interrupter.start()
    first = up(args)
    interrupter.join()
    assert first.exit_code == 1, first.output
    assert "terraform apply exited" in first.output and "again with the same --config to resume" in first.output
    parameter = unrecord_a_parameter(config, stack_dir, tmp_path / "terraform.mine.tfstate", emulated.url)

    resumed = up(args)
    assert resumed.exit_code == 0, resumed.output
    assert f"  adopting {parameter}: an interrupted apply made it without recording it" in resumed.output
    assert "infra: done in" in resumed.output and resumed.output.splitlines()[-1].startswith("up to infra in ")
    assert "Estimated on-demand cost" in resumed.output and "USD/day" in resumed.output
    found = tagged(emulated.url, REGION, CLUSTER_TAG, "mine")
    assert found["aws_vpc"] and found["aws_iam_role"], found  # the user's configuration is the one deployed
    assert not any(tagged(emulated.url, REGION, CLUSTER_TAG, "spiderpool-rdma").values())
    again = up(args)
    assert "infra: finished before" in again.output and again.exit_code == 0

    store_backups(emulated.url, tmp_path / "terraform.mine.tfstate")  # without --keep-backups: goes, versions too
    ssm = client("ssm", emulated.url, REGION)
    ssm.put_parameter(Name="/mine/by-hand", Value="x", Type="String", Tags=[{"Key": CLUSTER_TAG, "Value": "mine"}])
    down = CliRunner().invoke(main, ["down", *args], catch_exceptions=False)
    assert down.exit_code == 1, down.output
    left = re.findall(rf"still tagged {CLUSTER_TAG}=mine: (.+)", down.output)
    assert "ssm parameter /mine/by-hand" in left and f"Error: {len(left)} resource(s) left" in down.output
    # Besides it, what the interrupted apply created and Terraform never recorded (the provider's calls in flight
    # are cancelled at Ctrl-C: a role or key AWS made is then in no state), when the interrupt fell on one: the
    # sweep is what finds those. Deleted here as a user would, by what `down` printed.
    for item in left:
        delete(item, emulated.url)
    clean = CliRunner().invoke(main, ["down", *args], catch_exceptions=False)
    assert clean.exit_code == 0, clean.output
    assert "nothing tagged with the cluster is left" in clean.output
    assert not any(tagged(emulated.url, REGION, CLUSTER_TAG, "mine").values())


def test_down_keep_backups_keeps_the_backup_bucket_and_its_key_and_says_so(tmp_path: Path, emulated: Emulated) -> None:
    config, outdir = tmp_path / "my.yaml", tmp_path / "out"
    config.write_text(yaml.safe_dump(CONFIG))
    args = ["--config", str(config), "--output", str(outdir)]
    assert up(args).exit_code == 0
    bucket = store_backups(emulated.url, tmp_path / "terraform.mine.tfstate")
    (key,) = [k for k in tagged(emulated.url, REGION, CLUSTER_TAG, "mine")["aws_kms_key"]]

    down = CliRunner().invoke(main, ["down", *args, "--keep-backups"], catch_exceptions=False)

    assert down.exit_code == 0, down.output
    left = {kind: items for kind, items in tagged(emulated.url, REGION, CLUSTER_TAG, "mine").items() if items}
    assert left == {"aws_kms_key": [key], "aws_s3_bucket": [f"s3 bucket {bucket}"]}  # everything else is gone
    assert f"  kept (--keep-backups): s3 bucket {bucket}" in down.output.splitlines()
    assert f"  kept (--keep-backups): {key}" in down.output.splitlines() and "still tagged" not in down.output
    assert down.output.splitlines()[-1].endswith("nothing tagged with the cluster is left, but the backups kept")
    s3 = client("s3", emulated.url, REGION)
    assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 2  # the snapshots, every version

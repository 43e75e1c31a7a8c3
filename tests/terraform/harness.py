"""One synthesized stack through Terraform's life cycle against its own moto server: validate, plan, apply, the
writes control-plane-0 makes after boot, plan again (must be empty), destroy, and a sweep of the emulated account for
anything still tagged with the cluster.

Every step records its duration and its failure (Terraform's own message); a step after a failed one is reported
as not reached, naming the failure, so that nothing is skipped silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spider_validate.names import CLUSTER_TAG

from tests.terraform.cli import Terraform, find_mirror
from tests.terraform.downgrade import downgrade
from tests.terraform.emulator import MotoServer
from tests.terraform.leftovers import LISTERS, client, tagged
from tests.terraform.node_writes import Write, backup_upload, control_plane_writes

#: The provider's `endpoints` keys (one per service; the schema also lists aliases such as `cloudwatchlogs`) of every
#: service the stacks call, STS included for `aws_caller_identity`; `Provider.discover` checks them in the schema.
SERVICES = ("ec2", "iam", "kms", "ssm", "logs", "route53", "elbv2", "s3", "sts")
REGION = "us-east-1"
#: Where an AWS call that no endpoint above covers would go: a closed port on 127.0.0.1, so that no request ever
#: leaves the machine (the provider's HTTP client honours HTTPS_PROXY; NO_PROXY lets the moto calls through).
DEAD_PROXY = "http://127.0.0.1:9"
STEPS = ("validate", "plan", "apply", "publish", "replan", "reconfigure", "destroy", "sweep")


class NotConverged(AssertionError):
    """The plan after apply and the nodes' own writes is not empty: the next deploy would change something."""


@dataclass(frozen=True)
class Provider:
    """The 5.x provider of the local mirror and its schema (`terraform providers schema -json`)."""

    mirror: Path
    version: str
    schema: dict[str, Any]

    @classmethod
    def discover(cls, workdir: Path) -> Provider:
        mirror, version = find_mirror()
        terraform = Terraform.create(workdir, mirror)
        terraform.write(
            "main.tf.json",
            {"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": version}}}},
        )
        terraform.init()
        schema = terraform.schema()
        endpoints = schema["provider"]["block"]["block_types"]["endpoints"]["block"]["attributes"]
        assert set(SERVICES) <= set(endpoints), f"not endpoint keys of {version}: {set(SERVICES) - set(endpoints)}"
        return cls(mirror, version, schema)


def terraform_env() -> dict[str, str]:
    """Fake credentials, no shared configuration or metadata service, and no way out of 127.0.0.1."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "HTTPS_PROXY": DEAD_PROXY,
        "HTTP_PROXY": DEAD_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
    }


def overrides(url: str) -> dict[str, Any]:
    """An override file (Terraform merges `*_override.tf.json` into the configuration): the state in the working
    directory, every service the stacks use served by moto. Credentials are validated and the account ID requested
    through moto's STS, as against AWS."""
    return {
        "terraform": {"backend": {"local": {"path": "terraform.tfstate"}}},
        "provider": {
            "aws": {
                "endpoints": [{service: url for service in SERVICES}],
                "skip_metadata_api_check": True,
                # moto answers an action it lacks with HTTP 500, which the SDK retries 25 times by default with
                # back-off: fail within seconds instead (moto never throttles; a few retries cover a dropped
                # keep-alive connection of its development server).
                "max_retries": 3,
                # moto serves every bucket at one address: buckets in the path, not in the host name.
                "s3_use_path_style": True,
            }
        },
    }


def ami_images(stack: dict[str, Any]) -> list[dict[str, Any]]:
    """One image for each `aws_ami` lookup of the stack, as moto's `MOTO_AMIS_PATH` file lists them
    (`moto/ec2/resources/amis.json`): owned by the lookup's first owner, named by its name pattern with a date where
    the `*` is (as Canonical names its images), of the architecture its name says (`amd64` is `x86_64` in EC2)."""
    images = []
    for index, lookup in enumerate(stack.get("data", {}).get("aws_ami", {}).values()):
        filters = {f["name"]: f["values"][0] for f in lookup["filter"]}
        name = filters["name"].replace("*", "20260101")
        images.append(
            {
                "ami_id": f"ami-{index + 1:017x}",
                "name": name,
                "owner_id": lookup["owners"][0],
                "state": "available",
                "public": True,
                "image_location": f"{lookup['owners'][0]}/{name}",
                "root_device_type": "ebs",
                "root_device_name": "/dev/sda1",
                "image_type": "machine",
                "architecture": "arm64" if "arm64" in name else "x86_64",
                "virtualization_type": filters.get("virtualization-type", "hvm"),
                "hypervisor": "xen",
                "creation_date": "2026-01-01T00:00:00.000Z",
            }
        )
    return images


def declared_resources(stack: dict[str, Any]) -> set[str]:
    """Addresses of the resources the configuration declares (synthesized stacks use no count/for_each)."""
    addresses = set()
    for rtype, instances in stack.get("resource", {}).items():
        for name, body in instances.items():
            assert "count" not in body and "for_each" not in body, f"{rtype}.{name}: expand count/for_each here"
            addresses.add(f"{rtype}.{name}")
    return addresses


def changes(plan: dict[str, Any]) -> dict[str, list[str]]:
    """Address -> actions of every managed resource the plan would change."""
    return {
        r["address"]: r["change"]["actions"]
        for r in plan.get("resource_changes", [])
        if r["mode"] == "managed" and r["change"]["actions"] != ["no-op"]
    }


def drift(change: dict[str, Any]) -> str:
    """The top-level attributes a planned update changes, as `name: before -> after` (after may be unknown)."""
    before, after, unknown = change.get("before") or {}, change.get("after") or {}, change.get("after_unknown") or {}
    keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k) or unknown.get(k) is True)
    return ", ".join(
        f"{k}: {before.get(k)!r} -> {'(known after apply)' if unknown.get(k) is True else repr(after.get(k))}"
        for k in keys
    )


@dataclass
class Report:
    """What each step of one stack's life cycle did."""

    seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    #: each reconfiguration's plan against the deployed stack: address -> actions of what it would change
    plans: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def check(self, step: str) -> None:
        """Raise the step's own failure, or say which earlier step kept it from running."""
        if step in self.errors:
            raise self.errors[step]
        if step not in self.seconds:
            failed = next(iter(self.errors), "?")
            raise AssertionError(f"{step} not reached: {failed} failed first: {self.errors.get(failed)}")


@dataclass
class Lifecycle:
    """One stack, its working directory and its moto server."""

    stack: dict[str, Any]
    cluster: str
    workdir: Path
    provider: Provider
    #: what the nodes write after boot; by default control-plane-0's writes as its user data says
    writes: list[Write] | None = None
    #: name -> (the stack synthesized from a changed configuration, extra `terraform plan` options): each is planned
    #: against the deployed stack after the replan, as the user's next deploy would be (README "What a configuration
    #: change does"); the deployed configuration is put back before destroy
    reconfigurations: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = field(default_factory=dict)
    report: Report = field(default_factory=Report)
    amis: list[dict[str, Any]] = field(default_factory=list)
    _terraform: Terraform | None = field(default=None, init=False)
    _moto: MotoServer | None = field(default=None, init=False)
    _aborted: bool = field(default=False, init=False)

    def abort(self) -> None:
        """From another thread (an interrupted test session): kill the running terraform, stop the server."""
        self._aborted = True
        if self._terraform is not None:
            self._terraform.abort()
        if self._moto is not None:
            self._moto.stop()

    def run(self, until: str = STEPS[-1]) -> Report:
        """Run the steps up to `until`, stopping at the first failure; the moto server is stopped in any case."""
        self.amis = ami_images(self.stack)
        if self._aborted:
            raise AssertionError("aborted before it started")
        moto = self._moto = MotoServer.start(self.workdir / "moto", self.amis)
        try:
            terraform = Terraform.create(self.workdir / "terraform", self.provider.mirror, terraform_env())
            self._terraform = terraform
            steps: dict[str, Callable[[], None]] = {
                "validate": lambda: self._validate(terraform, moto.url),
                "plan": lambda: self._plan(terraform),
                "apply": lambda: self._apply(terraform, moto.url),
                "publish": lambda: self._publish(moto.url),
                "replan": lambda: self._replan(terraform),
                "reconfigure": lambda: self._reconfigure(terraform),
                "destroy": lambda: terraform.destroy(),
                "sweep": lambda: self._sweep(moto.url),
            }
            for step in STEPS[: STEPS.index(until) + 1]:
                start = time.monotonic()
                try:
                    steps[step]()
                except Exception as error:  # recorded for the test of that step, which re-raises it
                    self.report.errors[step] = error
                    return self.report
                finally:
                    self.report.seconds[step] = time.monotonic() - start
        finally:
            moto.stop()
        return self.report

    def _validate(self, terraform: Terraform, url: str) -> None:
        """The stack as 5.x reads it (a 6.x-only construct without a rewrite fails here), pointed at moto."""
        terraform.write("cdk.tf.json", downgrade(self.stack, self.provider.schema, self.provider.version))
        terraform.write("harness_override.tf.json", overrides(url))
        terraform.init()
        terraform.validate()

    def _plan(self, terraform: Terraform) -> None:
        """The plan creates exactly the declared resources, with the AMI registered for the lookup."""
        _, plan = terraform.plan()
        planned = changes(plan)
        expected = declared_resources(self.stack)
        assert set(planned) == expected, f"planned {sorted(set(planned) ^ expected)} differ from the declared ones"
        assert all(actions == ["create"] for actions in planned.values()), planned
        looked_up = [
            r["values"]["id"]
            for r in plan["prior_state"]["values"]["root_module"].get("resources", [])
            if r["type"] == "aws_ami" and r["mode"] == "data"
        ]
        assert sorted(looked_up) == sorted(a["ami_id"] for a in self.amis), looked_up

    def _apply(self, terraform: Terraform, url: str) -> None:
        """Apply; then the sweep must see every kind of tagged resource the stack declares (or it proves nothing
        after destroy)."""
        terraform.apply()
        found = tagged(url, REGION, CLUSTER_TAG, self.cluster)
        unseen = [rtype for rtype in LISTERS if rtype in self.stack["resource"] and not found[rtype]]
        assert not unseen, f"after apply the sweep finds nothing tagged {CLUSTER_TAG}={self.cluster} for {unseen}"

    def _publish(self, url: str) -> None:
        """control-plane-0 overwrites its SSM parameters as its bootstrap does, and backs etcd up to the bucket."""
        writes = control_plane_writes(self.stack) if self.writes is None else self.writes
        for write in writes:
            write.apply(client("ssm", url, write.region))
        if self.writes is None and "aws_s3_bucket" in self.stack["resource"]:
            backup_upload(self.stack, client("ssm", url, REGION), client("s3", url, REGION))

    def _replan(self, terraform: Terraform) -> None:
        code, plan = terraform.plan("replan.tfplan")
        if code != 0:
            details = "\n".join(
                f"  {r['address']} {r['change']['actions']}: {drift(r['change'])}"
                for r in plan.get("resource_changes", [])
                if r["address"] in changes(plan)
            )
            raise NotConverged(f"the plan after apply is not empty (exit {code}): {changes(plan)}\n{details}")

    def _reconfigure(self, terraform: Terraform) -> None:
        try:
            for name, (stack, options) in self.reconfigurations.items():
                terraform.write("cdk.tf.json", downgrade(stack, self.provider.schema, self.provider.version))
                _, plan = terraform.plan(f"{name}.tfplan", *options)
                self.report.plans[name] = changes(plan)
        finally:
            terraform.write("cdk.tf.json", downgrade(self.stack, self.provider.schema, self.provider.version))

    def _sweep(self, url: str) -> None:
        left = {rtype: items for rtype, items in tagged(url, REGION, CLUSTER_TAG, self.cluster).items() if items}
        assert not left, f"left after destroy, tagged {CLUSTER_TAG}={self.cluster}: {left}"

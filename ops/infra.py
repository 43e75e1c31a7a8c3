"""The infrastructure phase: the configuration the user named, synthesized by cdktn and applied by Terraform.

`cdktn deploy` synthesizes again from whatever SPIDERPOOL_RDMA_CONFIG says, and calls HashiCorp's checkpoint service
unless CHECKPOINT_DISABLE is set: both are set here, for every tool, from the one `--config`. Terraform then runs in
the synthesized stack's directory (the README's plain-Terraform path), which keeps its state beside the output
directory, so that `up` and `down` resume and undo each other from any terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spider_validate import names

#: The repository (cdktf.json, and the tools `make synth` installs in .tools and .venv).
ROOT = Path(__file__).resolve().parents[1]

#: Test-only: each is called with the synthesized stack's directory before Terraform reads it (the tests' rewrite
#: for the only provider their machines have, and their emulated endpoints). Nothing in the product adds one.
BEFORE_TERRAFORM: list[Callable[[Path], None]] = []

#: Terraform's lines worth a user's attention while it runs; all of its output goes to the phase's log file.
_PROGRESS = (": Creation complete", ": Destruction complete", "Apply complete!", "Destroy complete!", "Error:")


class ToolFailed(Exception):
    """A tool of a phase failed: the message names it, its exit code and the log holding its output."""


def tool_env(config: Path) -> dict[str, str]:
    """The environment of cdktn and Terraform: the user's configuration, no checkpoint calls, the project's tools."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(ROOT / ".tools/node_modules/.bin"), str(ROOT / ".tools/bin"), env["PATH"]])
    env["SPIDERPOOL_RDMA_CONFIG"] = str(config.resolve())
    env["CHECKPOINT_DISABLE"] = "1"
    env.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(ROOT / ".cache" / "jsii"))
    env.update(TF_IN_AUTOMATION="1", TF_INPUT="0")
    return env


def run(command: list[str], cwd: Path, env: dict[str, str], log: Path, echo: Callable[[str], None]) -> str:
    """Run a tool, its output appended to `log` and its progress lines echoed; ToolFailed if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    with (
        log.open("a") as out,
        subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process,
    ):
        out.write(f"$ {' '.join(command)}\n")
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            out.flush()  # a reader of the log sees progress as it happens
            lines.append(line)
            if any(p in line for p in _PROGRESS):
                echo("  " + line.strip())
    if process.returncode:
        tail = "".join(lines[-15:])
        raise ToolFailed(f"{command[0]} {command[1]} exited {process.returncode} (full output in {log}):\n{tail}")
    return "".join(lines)


@dataclass(frozen=True)
class Infra:
    """One configuration's stack: its synthesized directory and its Terraform state."""

    config: Path
    name: str
    outdir: Path
    echo: Callable[[str], None]

    @property
    def stack_dir(self) -> Path:
        return self.outdir / "stacks" / self.name

    @property
    def log(self) -> Path:
        return self.outdir / f"{self.name}.log"

    def synth(self) -> dict[str, Any]:
        """cdktn synth of the user's configuration; the stack as Terraform JSON."""
        run(["cdktn", "synth", "--output", str(self.outdir)], ROOT, tool_env(self.config), self.log, self.echo)
        stack: dict[str, Any] = json.loads((self.stack_dir / "cdk.tf.json").read_text())
        return stack

    def terraform(self, *args: str) -> str:
        return run(["terraform", *args], self.stack_dir, tool_env(self.config), self.log, self.echo)

    def _init(self) -> None:
        for hook in BEFORE_TERRAFORM:
            hook(self.stack_dir)
        self.terraform("init", "-input=false", "-no-color")

    def apply(self, aws: Callable[[str], Any]) -> None:
        """Terraform init and apply (run again after an interrupt, it creates what is missing, the SSM parameters an
        interrupted apply made without recording them adopted first). `aws` makes a boto3 client of the region."""
        self._init()
        self._adopt_unrecorded_parameters(aws("ssm"))
        self.terraform("apply", "-auto-approve", "-input=false", "-no-color")

    def _adopt_unrecorded_parameters(self, ssm: Any) -> None:
        """Import the stack's SSM parameters that exist in SSM but in no state. At Ctrl-C Terraform cancels the
        provider's calls in flight: a parameter SSM has made is then in no state, and the next apply fails on it
        (PutParameter without Overwrite: ParameterAlreadyExists), whereas a role or key, named by a prefix, is made
        again and the old one is a leftover for `down`'s sweep. Adopted only when nothing but an apply of this cluster
        can have made it: tagged with the cluster and still holding the placeholder every apply creates it with (the
        nodes write the real values, cdk/constructs/secrets.py); any other stops the phase, naming it, since it may
        belong to a running cluster of the same name in this account and region."""
        stack = json.loads((self.stack_dir / "cdk.tf.json").read_text())
        parameters = stack["resource"].get("aws_ssm_parameter", {})
        wanted = {f"aws_ssm_parameter.{key}": resource["name"] for key, resource in parameters.items()}
        recorded = {resource["address"] for resource in self._recorded()}
        for address, name in sorted(wanted.items()):
            if address in recorded:
                continue
            try:
                value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            except ssm.exceptions.ParameterNotFound:
                continue
            tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
            if value != names.PLACEHOLDER or {"Key": names.CLUSTER_TAG, "Value": self.name} not in tags:
                raise ToolFailed(
                    f"the SSM parameter {name} exists, but not as an interrupted apply of this cluster leaves it "
                    f"(tagged {names.CLUSTER_TAG}={self.name}, value {names.PLACEHOLDER!r}): does another cluster "
                    f"named {self.name} run in this account and region? Name this one otherwise, or delete the "
                    "parameter if it is a leftover"
                )
            self.echo(f"  adopting {name}: an interrupted apply made it without recording it")
            self.terraform("import", "-input=false", "-no-color", address, name)

    def outputs(self) -> dict[str, Any]:
        values = json.loads(self.terraform("output", "-json", "-no-color"))
        return {name: value["value"] for name, value in values.items()}

    def state(self) -> list[dict[str, Any]]:
        """The resources Terraform manages now (address, type, values; none before the first apply)."""
        self._init()
        return self._recorded()

    def _recorded(self) -> list[dict[str, Any]]:
        """What the state holds (without one, `show -json` answers its format version only; `state list` fails)."""
        shown = json.loads(self.terraform("show", "-json", "-no-color"))
        resources = shown.get("values", {}).get("root_module", {}).get("resources", [])
        return [r for r in resources if r["mode"] == "managed"]

    def destroy(self, keep: list[str]) -> None:
        """Terraform destroy; the addresses in `keep` are first removed from the state, so they stay."""
        self._init()
        for address in keep:
            self.terraform("state", "rm", "-no-color", address)
        self.terraform("destroy", "-auto-approve", "-input=false", "-no-color")

"""The real `terraform` binary in a working directory of the test's own, offline, with the local provider mirror.

Everything Terraform writes (CLI configuration, `.terraform/`, lock file, state) stays in that directory. The
provider is installed from the filesystem mirror that `terraform init -plugin-dir=<mirror>` would read: the same
"unpacked" layout as a `filesystem_mirror` in the CLI configuration, which Terraform links instead of copying
700 MB per working directory (Terraform docs, "Provider Installation": filesystem_mirror, unpacked layout).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROVIDER = "registry.terraform.io/hashicorp/aws"
#: Terraform's implied local mirror directories on Linux (Terraform docs, "Provider Installation": "Implied Local
#: Mirror Directories"), then where this project's machines keep it; SPIDERPOOL_RDMA_TF_PLUGIN_DIR overrides.
MIRROR_CANDIDATES = (
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
    "/opt/tf-plugins",
)


class TerraformFailed(AssertionError):
    """A terraform command failed: the message is Terraform's own output."""


def find_mirror() -> tuple[Path, str]:
    """The mirror root holding hashicorp/aws 5.x for this platform, and that version."""
    override = os.environ.get("SPIDERPOOL_RDMA_TF_PLUGIN_DIR")
    candidates = [Path(override)] if override else [Path(c).expanduser() for c in MIRROR_CANDIDATES]
    for root in candidates:
        versions = sorted(root.glob(f"{PROVIDER}/5.*/linux_amd64/terraform-provider-aws_*"))
        if versions:
            return root, versions[-1].parent.parent.name
    raise AssertionError(
        f"no filesystem mirror of {PROVIDER} 5.x in {', '.join(map(str, candidates))}: "
        "set SPIDERPOOL_RDMA_TF_PLUGIN_DIR to the directory that `terraform init -plugin-dir` would take"
    )


def cli_config(mirror: Path) -> str:
    """CLI configuration: only the mirror, never the registry, no checkpoint calls."""
    return (
        "disable_checkpoint = true\n"
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["{PROVIDER}"]\n  }}\n'
        '  direct {\n    exclude = ["*/*/*"]\n  }\n'
        "}\n"
    )


def _kill_group(process: subprocess.Popen[str]) -> None:
    """After a timeout, an interrupt or an abort: the command's whole process group (its session), then reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Terraform:
    """One working directory and the environment every command in it runs with."""

    workdir: Path
    env: dict[str, str]
    #: the command running now, for `abort` from another thread
    process: subprocess.Popen[str] | None = field(default=None, init=False)
    aborted: bool = field(default=False, init=False)

    @classmethod
    def create(cls, workdir: Path, mirror: Path, extra_env: Mapping[str, str] = ()) -> Terraform:  # type: ignore[assignment]
        binary = shutil.which("terraform")
        if binary is None:
            raise AssertionError("terraform is not on PATH (Terraform >= 1.11 is needed for write-only attributes)")
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "cli.tfrc").write_text(cli_config(mirror))
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(workdir),
            "TF_CLI_CONFIG_FILE": str(workdir / "cli.tfrc"),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            **dict(extra_env),
        }
        return cls(workdir, env)

    def write(self, name: str, document: Mapping[str, Any]) -> Path:
        path = self.workdir / name
        path.write_text(json.dumps(document, indent=2))
        return path

    def run(self, *args: str, ok: tuple[int, ...] = (0,), timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run `terraform ARGS` without colour; an exit code outside `ok` raises with Terraform's own message."""
        command = ["terraform", *args] if args[0] == "providers" else ["terraform", args[0], "-no-color", *args[1:]]
        with subprocess.Popen(
            command,
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as process:
            self.process = process
            try:
                if self.aborted:
                    raise TerraformFailed(f"terraform {args[0]} not run: aborted")
                stdout, stderr = process.communicate(timeout=timeout)
            finally:
                self.process = None
                _kill_group(process)
        result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
        if result.returncode not in ok:
            raise TerraformFailed(
                f"terraform {args[0]} exited {result.returncode} in {self.workdir}:\n{result.stderr}{result.stdout}"
            )
        return result

    def abort(self) -> None:
        """Kill the running command (terraform and its provider plugin) and refuse any further one."""
        self.aborted = True
        if self.process is not None:
            _kill_group(self.process)

    def init(self) -> None:
        self.run("init", "-input=false")

    def validate(self) -> dict[str, Any]:
        result = self.run("validate", "-json", ok=(0, 1))
        verdict: dict[str, Any] = json.loads(result.stdout)
        if not verdict["valid"] or verdict["error_count"]:
            messages = [
                f"{d['summary']}: {d.get('detail', '')} ({d.get('range', {}).get('filename', '')}"
                f":{d.get('range', {}).get('start', {}).get('line', '')})"
                for d in verdict["diagnostics"]
            ]
            raise TerraformFailed("terraform validate: " + "\n".join(messages))
        return verdict

    def plan(self, out: str = "tfplan", *options: str) -> tuple[int, dict[str, Any]]:
        """Plan into `out` (with `options` such as `-replace=ADDRESS`); return the detailed exit code (0 no changes,
        2 changes) and the plan as JSON."""
        code = self.run("plan", "-input=false", "-detailed-exitcode", f"-out={out}", *options, ok=(0, 2)).returncode
        return code, json.loads(self.run("show", "-json", out).stdout)

    def apply(self, plan: str = "tfplan") -> None:
        self.run("apply", "-input=false", "-auto-approve", plan)

    def destroy(self) -> None:
        self.run("destroy", "-input=false", "-auto-approve")

    def schema(self) -> dict[str, Any]:
        """The initialized provider's schema (`terraform providers schema -json`)."""
        document: dict[str, Any] = json.loads(self.run("providers", "schema", "-json").stdout)
        return document["provider_schemas"][PROVIDER]

"""`spiderpool-rdma up`: from a configuration to a validated cluster, in phases that resume.

Each phase is idempotent (Terraform converges, the kubeconfig is rewritten, `helm upgrade --install`, a new
validation run), and a record beside the synthesized output says which phases finished for which configuration
file contents: `up` run again skips those and continues with the first that did not finish; a changed file starts
over. Each phase prints its time; the last line gives the total and the report's path.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdk.config import ClusterConfig
from ops.infra import Infra

PHASES = ("infra", "cluster", "chart", "validated")


def config_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Record:
    """Which phases finished (and in how many seconds) for one configuration file's contents."""

    path: Path
    digest: str
    done: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, digest: str) -> Record:
        saved = json.loads(path.read_text()) if path.is_file() else {}
        return cls(path, digest, saved.get("done", {}) if saved.get("config_sha256") == digest else {})

    def finish(self, phase: str, seconds: float) -> None:
        self.done[phase] = seconds
        self.path.write_text(json.dumps({"config_sha256": self.digest, "done": self.done}, indent=2) + "\n")

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class Deployment:
    """One configuration's cluster: where its files go, and what each phase does."""

    config_path: Path
    config: ClusterConfig
    outdir: Path
    echo: Callable[[str], None]

    @property
    def infra(self) -> Infra:
        return Infra(self.config_path, self.config.name, self.outdir, self.echo)

    @property
    def record_path(self) -> Path:
        return self.outdir / f"up.{self.config.name}.json"

    @property
    def kubeconfig(self) -> Path:
        return self.outdir / f"kubeconfig-{self.config.name}"

    @property
    def report(self) -> Path:
        return self.outdir / f"validation-{self.config.name}.html"

    def record(self) -> Record:
        return Record.load(self.record_path, config_digest(self.config_path))


def run_phases(
    deployment: Deployment, phases: dict[str, Callable[[], Any]], until: str, echo: Callable[[str], None]
) -> float:
    """Run the phases up to `until` that the record does not hold as finished; the total seconds of this run."""
    record = deployment.record()
    start = time.monotonic()
    for phase in PHASES[: PHASES.index(until) + 1]:
        if phase in record.done:
            echo(f"{phase}: finished before ({record.done[phase]:.0f} s), skipped")
            continue
        echo(f"{phase}: ...")
        began = time.monotonic()
        phases[phase]()
        seconds = time.monotonic() - began
        record.finish(phase, seconds)
        echo(f"{phase}: done in {seconds:.0f} s")
    return time.monotonic() - start

"""A configuration as `up` left it after some phases: the file, its output directory with the record of the phases
that finished and the kubeconfig the cluster phase writes (here one of the lab's API server)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from ops.up import config_digest


def deployed(tmp_path: Path, config: dict[str, Any], kubeconfig: Path, phases: list[str]) -> list[str]:
    """The --config and --output arguments of that deployment (the record as ops/up.py's Record writes it)."""
    path, outdir = tmp_path / "my.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(config))
    outdir.mkdir()
    shutil.copy(kubeconfig, outdir / f"kubeconfig-{config['name']}")
    record = {"config_sha256": config_digest(path), "done": dict.fromkeys(phases, 1.0)}
    (outdir / f"up.{config['name']}.json").write_text(json.dumps(record))
    return ["--config", str(path), "--output", str(outdir)]

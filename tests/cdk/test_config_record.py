"""`cdktn deploy` synthesizes again: after a synthesis of another file, a deploy without SPIDERPOOL_RDMA_CONFIG
refuses instead of deploying the default cluster (what a user following the README did: `make synth CONFIG=my.yaml`,
then `cdktn deploy`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO


def cdktn(args: list[str], outdir: Path, config: Path | None) -> subprocess.CompletedProcess[str]:
    """The real CLI, as `make synth` runs it, with or without the variable that names the configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPIDERPOOL_RDMA_", "CDKTF_"))}
    env["PATH"] = f"{REPO / '.tools/node_modules/.bin'}:{REPO / '.venv/bin'}:{env['PATH']}"
    env.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(REPO / ".cache" / "jsii"))
    env["CHECKPOINT_DISABLE"] = "1"
    if config:
        env["SPIDERPOOL_RDMA_CONFIG"] = str(config)
    return subprocess.run(
        ["cdktn", *args, "--output", str(outdir)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.synth
def test_a_deploy_without_the_configuration_refuses_after_another_was_synthesized(tmp_path: Path) -> None:
    mine = tmp_path / "my.yaml"
    mine.write_text(yaml.safe_dump({"name": "mine", "workers": {"instance_type": "m7i.large", "rdma": "none"}}))
    outdir = tmp_path / "cdktf.out"
    synth = cdktn(["synth"], outdir, mine)
    assert synth.returncode == 0, synth.stdout + synth.stderr
    assert (outdir / "stacks" / "mine" / "cdk.tf.json").is_file()

    deploy = cdktn(["deploy", "--auto-approve"], outdir, None)
    assert deploy.returncode != 0
    assert f"synthesized from {mine}, and SPIDERPOOL_RDMA_CONFIG is not set" in deploy.stdout + deploy.stderr
    assert sorted(p.name for p in (outdir / "stacks").iterdir()) == ["mine"]  # the default was never synthesized

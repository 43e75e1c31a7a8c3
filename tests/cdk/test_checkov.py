"""checkov on every synthesized stack: no failed check unless a skip with a reason sits on that resource."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from cdk.checkov import SKIP_KEY
from tests.conftest import REPO, VARIANTS, Synthesized

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
pytestmark = pytest.mark.synth


def declared_skips(stack: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(check id, resource name) -> reason, from the resources' `//` comment fields."""
    skips = {}
    for resources in stack.get("resource", {}).values():
        for name, body in resources.items():
            for check_id, text in body.get("//", {}).get(SKIP_KEY, {}).items():
                prefix = f"checkov:skip={check_id}:"
                assert text.startswith(prefix) and len(text) > len(prefix) + 20, f"{name}: skip without a reason"
                skips[(check_id, name)] = text[len(prefix) :]
    return skips


@pytest.mark.parametrize("name", list(VARIANTS))
def test_checkov_passes_on_stack(name: str, synthesized: dict[str, Synthesized]) -> None:
    s = synthesized[name]
    stack_dir = s.outdir / "stacks" / s.config.name
    proc = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(stack_dir),
            "--framework",
            "terraform_json",
            "--skip-download",
            "-o",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(proc.stdout)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0 and summary["passed"] > 50, summary
    failed = {(c["check_id"], c["resource"].rsplit(".", 1)[-1]) for c in report["results"]["failed_checks"]}
    skips = declared_skips(s.stack)
    assert failed - set(skips) == set(), f"failed checks without an inline skip: {sorted(failed - set(skips))}"
    assert set(skips) - failed == set(), f"stale skips (the check passes now): {sorted(set(skips) - failed)}"

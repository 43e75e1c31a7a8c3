"""On failure: the failing pods' descriptions and logs, the run's events and the relevant Spiderpool objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spider_validate.cluster.api import ApiError
from spider_validate.engine.model import RunResult, Status
from spider_validate.engine.params import RUN_LABEL

if TYPE_CHECKING:
    from spider_validate.engine.context import RunContext


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def collect(ctx: RunContext, result: RunResult) -> str:
    """Write what explains the failure to <diagnostics_dir>/spider-validate-<run>/; return the path ('' if nothing)."""
    out = Path(ctx.params.diagnostics_dir) / f"spider-validate-{ctx.run_id}"
    failing = {
        a.source
        for t in result.tests
        if t.status in {Status.FAIL, Status.ERROR}
        for a in t.actions
        if a.status is not Status.PASS
    } | {a.destination for t in result.tests for a in t.actions if a.status is not Status.PASS}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"not written: cannot create {out} ({exc.strerror})"
    try:
        (out / "summary.txt").write_text(
            "\n".join(
                f"{t.id}: {t.status.value} {t.reason}".rstrip()
                + "".join(
                    f"\n  {a.action}: {a.status.value} ({a.detail})" for a in t.actions if a.status is not Status.PASS
                )
                for t in result.tests
            )
            + ("\nsetup: " + result.setup_error if result.setup_error else "")
            + "\n"
        )
        pods = ctx.cluster.list("Pod", ctx.namespace, f"{RUN_LABEL}={ctx.run_id}") if ctx.namespace else []
        for pod in pods:
            name = pod["metadata"]["name"]
            if name in failing or result.setup_error:
                _dump(out / f"pod-{name}.json", pod)
                (out / f"pod-{name}.log").write_text(ctx.cluster.logs(ctx.namespace, name))
        _dump(out / "events.json", ctx.cluster.list("Event", ctx.namespace))
        _dump(out / "spiderendpoints.json", ctx.cluster.list("SpiderEndpoint", ctx.namespace))
        _dump(out / "spiderippools.json", ctx.cluster.list("SpiderIPPool"))
        _dump(out / "spidermultusconfigs.json", ctx.cluster.list("SpiderMultusConfig"))
        _dump(out / "spidercoordinator.json", ctx.cluster.get("SpiderCoordinator", "default"))
    except (ApiError, OSError) as exc:
        (out / "errors.txt").write_text(f"collecting diagnostics failed: {exc}\n")
    return str(out)

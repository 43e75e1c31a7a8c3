"""`spider-validate cleanup`: what runs and watches left behind, found by label and removed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from spider_validate.cli import common, inputs
from spider_validate.cli.common import with_cluster
from spider_validate.engine.params import EXPIRES, MANAGED_BY, RUN_LABEL

if TYPE_CHECKING:
    pass


def _in_progress(meta: dict[str, Any]) -> str:
    """Until when the run (or watch) that created an object holds it (its EXPIRES annotation), or "" when it is
    over: an object without the annotation comes from a version that did not write it, long over."""
    import time

    expires = (meta.get("annotations") or {}).get(EXPIRES, "0")
    if expires == "never":
        return "until it stops"
    if expires.isdigit() and int(expires) > time.time():
        return "until " + time.strftime("%H:%M:%S", time.localtime(int(expires)))
    return ""


@click.command()
@with_cluster
@click.option("--all", "everything", is_flag=True, help="Also what runs in progress and watches still hold.")
@click.option(
    "--in-namespace",
    "in_namespace",
    type=inputs.NamespaceName(),
    help="What runs with --in-namespace left in this namespace (its pods, Service, StatefulSet), not namespaces.",
)
def cleanup(
    kubeconfig: str | None, kube_context: str | None, api_timeout: float, everything: bool, in_namespace: str | None
) -> None:
    """Delete what runs left behind (found by label) and say what was removed; what a run still in progress (its
    deadline and its cleanup's not passed) or a watch holds is left alone, unless --all.

    \b
    Examples:
      spider-validate cleanup
      spider-validate cleanup --all
      spider-validate cleanup --in-namespace team-validate
    """
    from spider_validate.cluster.api import ApiError

    cluster = common.connect(kubeconfig, kube_context, api_timeout)
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    # a StatefulSet's pods go with it (and carry no deadline of their own): only pods the run made itself
    kinds = (
        [("StatefulSet", in_namespace), ("Service", in_namespace), ("Pod", in_namespace)]
        if in_namespace
        else [("Namespace", None)]
    )
    removed, kept = 0, 0
    try:
        for kind, namespace in [*kinds, ("SpiderIPPool", None)]:
            for obj in cluster.list(kind, namespace, label_selector=selector):
                meta = obj["metadata"]
                if meta.get("ownerReferences"):
                    continue
                run = meta.get("labels", {}).get(RUN_LABEL, "?")
                until = _in_progress(meta)
                if until and not everything:
                    click.echo(f"left {kind} {meta['name']} (run {run}, in progress {until}; --all removes it)")
                    kept += 1
                    continue
                cluster.delete(kind, meta["name"], namespace)
                click.echo(f"removed {kind} {meta['name']} (run {run})")
                removed += 1
    except ApiError as exc:
        raise common.api_problem(exc, "cleanup failed: ") from exc
    click.echo(f"{removed} object(s) removed" if removed or kept else "nothing to remove")

"""`spider-validate audit`: the IPAM consistency audit of the cluster or of a dump, as a report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from spider_validate.cli import common, inputs
from spider_validate.cli.common import (
    EXIT_FAILED,
    EXIT_PASSED,
    HTML_HELP,
    UsageProblem,
    emit,
    given_options,
    require_html,
    with_cluster,
)

if TYPE_CHECKING:
    pass


@click.command()
@with_cluster
@click.option(
    "--from-file",
    "dump",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Audit a dump of `kubectl get spiderippools,spiderendpoints,pods -A -o json` instead of the cluster.",
)
@click.option("--pool", "pools", multiple=True, help="Audit only these pools (repeatable); each must exist.")
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True, help="Report format."
)
@click.option("--junit-file", type=click.Path(dir_okay=False), help="Also write the findings as a JUnit report.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), help=HTML_HELP)
def audit(
    kubeconfig: str | None,
    kube_context: str | None,
    api_timeout: float,
    dump: Path | None,
    pools: tuple[str, ...],
    output: str,
    junit_file: str | None,
    html_file: str | None,
) -> None:
    """Find IPAM inconsistencies: leaks, an IP held twice, records the pod or its SpiderEndpoint does not show.

    \b
    Exit codes: 0 consistent, 1 inconsistencies found, 2 bad usage or unreadable input.
    \b
    Examples:
      spider-validate audit
      kubectl get spiderippools,spiderendpoints,pods -A -o json > dump.json
      spider-validate audit --from-file dump.json -o json
    """
    from spider_validate.cluster.api import ApiError
    from spider_validate.engine.model import RunResult
    from spider_validate.engine.runner import new_run_id
    from spider_validate.ipam import audit as ipam_audit

    if junit_file:
        inputs.writable_file(junit_file, "--junit-file")
    if html_file:
        require_html(html_file)
    only = set(pools) or None
    source = str(dump) if dump else "the cluster"
    try:
        cluster = None if dump else common.connect(kubeconfig, kube_context, api_timeout)
        snap = ipam_audit.load_dump(dump) if dump else ipam_audit.snapshot(cluster)
        findings = ipam_audit.audit(snap, only)
    except ipam_audit.Unreadable as exc:
        raise UsageProblem(f"cannot audit {source}: {exc}") from exc
    except ApiError as exc:
        raise UsageProblem(f"cannot read the cluster: {exc}") from exc
    result = RunResult(new_run_id(), "", source, tests=[ipam_audit.as_test_result(findings, snap, only)])
    from spider_validate.report import environment

    audited = [p for p in snap.pools if only is None or p["metadata"]["name"] in only]
    result.environment = environment.collect(cluster, argv=given_options(), pools=audited)
    emit(result, output, junit_file, html_file)
    sys.exit(EXIT_PASSED if not findings else EXIT_FAILED)

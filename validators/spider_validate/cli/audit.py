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
    cloud_options,
    cloud_problem,
    emit,
    given_options,
    require_html,
    with_cluster,
)

if TYPE_CHECKING:
    from spider_validate.cloud.ec2 import Ec2
    from spider_validate.engine.model import TestResult
    from spider_validate.ipam.audit import Snapshot


@click.command()
@with_cluster
@click.option(
    "--from-file",
    "dump",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
    help="Audit a dump of `kubectl get spiderippools,spiderendpoints,pods -A -o json` instead of the cluster "
    "(- reads it from stdin).",
)
@click.option("--pool", "pools", multiple=True, help="Audit only these pools (repeatable); each must exist.")
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True, help="Report format."
)
@click.option("--junit-file", type=click.Path(dir_okay=False), help="Also write the findings as a JUnit report.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), help=HTML_HELP)
@cloud_options
@click.option(
    "--cloud-from-file",
    "cloud_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --cloud aws: saved JSON of `aws ec2 describe-network-interfaces` and `aws ec2 "
    "get-subnet-cidr-reservations` instead of calling EC2 (repeatable; no credentials needed).",
)
def audit(
    kubeconfig: str | None,
    kube_context: str | None,
    api_timeout: float,
    dump: Path | None,
    pools: tuple[str, ...],
    output: str,
    junit_file: str | None,
    html_file: str | None,
    cloud: str | None,
    region: str | None,
    profile: str | None,
    cloud_files: tuple[Path, ...],
) -> None:
    """Find IPAM inconsistencies: leaks, an IP held twice, records the pod or its SpiderEndpoint does not show.

    \b
    With --cloud aws, also that every pool pinned to a node lies in prefixes of that node's ENIs, that each
    running pod's address is routed to its node, that no pool address is another interface's, and (warnings,
    exit code unchanged) prefixes no pool uses and reservations nothing uses.

    \b
    Exit codes: 0 consistent, 1 inconsistencies found, 2 bad usage or unreadable input (or cloud credentials,
    region, permissions), 3 EC2 throttled or unreachable.
    \b
    Examples:
      spider-validate audit
      kubectl get spiderippools,spiderendpoints,pods -A -o json > dump.json
      spider-validate audit --from-file dump.json -o json
      spider-validate audit --cloud aws --region us-east-1
      spider-validate audit --cloud aws --cloud-from-file enis.json --cloud-from-file reservations.json
    """
    from spider_validate.cluster.api import ApiError
    from spider_validate.engine.model import RunResult
    from spider_validate.engine.runner import new_run_id
    from spider_validate.ipam import audit as ipam_audit

    if (cloud_files or region or profile) and not cloud:
        raise UsageProblem("--cloud-from-file, --region and --profile belong to the cloud side: add --cloud aws")
    if cloud_files and (region or profile):
        raise UsageProblem("--cloud-from-file audits saved output: --region and --profile are for live EC2 calls")
    if junit_file:
        inputs.writable_file(junit_file, "--junit-file")
    if html_file:
        require_html(html_file)
    only = set(pools) or None
    source = ("stdin" if str(dump) == "-" else str(dump)) if dump else "the cluster"
    try:
        cluster = None if dump else common.connect(kubeconfig, kube_context, api_timeout)
        snap = ipam_audit.load_dump(dump) if dump else ipam_audit.snapshot(cluster, nodes=bool(cloud))
        findings = ipam_audit.audit(snap, only)
    except ipam_audit.Unreadable as exc:
        raise UsageProblem(f"cannot audit {source}: {exc}") from exc
    except ApiError as exc:
        raise common.api_problem(exc, "cannot read the cluster: ") from exc
    tests = [ipam_audit.as_test_result(findings, snap, only)]
    if cloud:
        tests.append(_cloud_side(snap, only, region, profile, cloud_files))
    result = RunResult(new_run_id(), "", source, tests=tests)
    from spider_validate.report import environment

    audited = [p for p in snap.pools if only is None or p["metadata"]["name"] in only]
    result.environment = environment.collect(cluster, argv=given_options(), pools=audited)
    emit(result, output, junit_file, html_file)
    sys.exit(EXIT_PASSED if result.passed else EXIT_FAILED)


def _cloud_side(
    snap: Snapshot,
    only: set[str] | None,
    region: str | None,
    profile: str | None,
    files: tuple[Path, ...],
) -> TestResult:
    """The cloud side's test: from saved AWS CLI output, or from EC2 with the AWS CLI's region and credentials."""
    from spider_validate.cloud import ec2
    from spider_validate.ipam import cloud

    try:
        reader: Ec2 = ec2.SavedEc2(files) if files else ec2.connect(region, profile)
        findings, inv = cloud.check(reader, snap, only)
    except ec2.CloudError as exc:
        raise cloud_problem(exc) from exc
    return cloud.as_test_result(findings, inv)

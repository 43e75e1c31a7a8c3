"""What every command shares: exit codes, usage errors, the cluster and image and placement options, connecting,
and writing a result to stdout and report files."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

import click

from spider_validate import names
from spider_validate.cli import inputs

if TYPE_CHECKING:
    from spider_validate.cluster.api import ApiError, Cluster
    from spider_validate.engine.model import RunResult

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_READY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageProblem(click.ClickException):
    """A problem the user can fix (configuration, credentials, names): exit code 2."""

    exit_code = EXIT_USAGE


class Unreachable(click.ClickException):
    """The API server does not answer: the cluster is not ready for testing, exit code 3."""

    exit_code = EXIT_NOT_READY


def exit_now(code: int, abandoned: bool) -> NoReturn:
    """Exit with `code`; when the run gave up on calls (deadline, Ctrl-C), at once: Python would first wait for
    the threads blocked in them (concurrent.futures joins its workers at exit)."""
    if abandoned:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def connect(kubeconfig: str | None, context: str | None, api_timeout: float) -> Cluster:
    """The cluster, once its API server has answered (one bounded call: a dead tunnel fails in seconds).

    Commands call it as `common.connect`: the one seam where tests put the lab double (tests/lab/fixtures.py)."""
    from spider_validate.cluster.api import ApiError, ConfigProblem, Timeouts
    from spider_validate.cluster.kube import KubeCluster

    try:
        cluster = KubeCluster(kubeconfig, context, Timeouts(min(5.0, api_timeout), api_timeout))
    except ConfigProblem as exc:
        raise UsageProblem(str(exc)) from exc
    try:
        cluster.server_version()
    except ApiError as exc:
        if exc.status == 401:  # the message says whose credentials, and what to do
            raise UsageProblem(exc.message) from exc
        if exc.status == 403:  # the identity may read nothing
            raise UsageProblem(
                f"the API server {cluster.server} denied the identity of {cluster.source} reading its version "
                f"({exc}): grant it validators/rbac.yaml's permissions"
            ) from exc
        raise api_problem(exc) from exc  # not an API server at all (2), or one not answering (3)
    return cluster


def api_problem(exc: ApiError, doing: str = "") -> click.ClickException:
    """An ApiError as the exit code it deserves: 3 when the API server may answer if asked again (no answer, 5xx,
    429: the cluster is not ready), else 2 (refused: what the user must fix)."""
    return (Unreachable if exc.transient else UsageProblem)(f"{doing}{exc}")


HTML_HELP = "Also write the report as one self-contained HTML file (needs the html extra)."


def require_html(path: str, option: str = "--html") -> None:
    """Before anything runs: the html extra is installed and the file can be written."""
    from spider_validate.report import html

    if html.missing():
        raise UsageProblem(f"{option} needs {', '.join(html.missing())}: {names.install_hint('html')}")
    inputs.writable_file(path, option)


def given_options() -> list[str]:
    """The command and the options the user set (not defaults), as the report's environment shows them."""
    ctx = click.get_current_context()
    words = [ctx.command_path.split(" ", 1)[-1]]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name or "")
        if not isinstance(param, click.Option) or source in {None, click.core.ParameterSource.DEFAULT}:
            continue
        values = ctx.params[param.name or ""]
        for value in values if param.multiple else [values]:
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            words += [param.opts[-1]] if param.is_flag else [param.opts[-1], text]
    return words


def emit(result: RunResult, output: str, junit_file: str | None, html_file: str | None) -> None:
    """The results on stdout first, so a report that cannot be written never loses them; then the files."""
    from spider_validate.report import formats as report

    click.echo(report.to_json(result) if output == "json" else report.table(result))
    if junit_file:
        try:
            report.write_junit(result, junit_file)
        except OSError as exc:
            raise UsageProblem(f"the results above could not be written to {junit_file}: {exc.strerror}") from exc
    if html_file:
        write_html(result, html_file)


def write_html(result: RunResult, path: str) -> None:
    from spider_validate.report import formats as report
    from spider_validate.report import html

    try:
        html.write(report.to_dict(result), path)
    except OSError as exc:
        raise UsageProblem(f"the results above could not be written to {path}: {exc.strerror}") from exc
    click.echo(f"HTML report: {os.path.abspath(path)}", err=True)


cluster_options = [
    click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False),
        envvar="KUBECONFIG",
        help="Kubeconfig file [default: $KUBECONFIG, else ~/.kube/config].",
    ),
    click.option("--context", "kube_context", help="Kubeconfig context [default: its current-context]."),
    click.option(
        "--api-timeout",
        default=30.0,
        show_default=True,
        type=inputs.Positive("SECONDS"),
        help="Longest wait for one answer of the API server (connecting: at most 5 s).",
    ),
]


def with_cluster(fn: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(cluster_options):
        fn = option(fn)
    return fn


def image_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option(
        "--image",
        "image_overrides",
        multiple=True,
        metavar="NAME=REF",
        help="Replace one image (client, server, rdma, perf). Repeatable.",
    )(fn)
    return click.option(
        "--image-registry",
        type=inputs.Registry(),
        help="Registry that mirrors every image (air-gapped clusters), without a scheme.",
    )(fn)


def placement_options(fn: Callable[..., None]) -> Callable[..., None]:
    """Which nodes the pods of `run` and `watch` go to, and how they attach to the underlay."""
    fn = click.option(
        "--attach",
        type=click.Choice(["auto", "default", "secondary"]),
        default="auto",
        show_default=True,
        help="Attach the pods as their default network (eth0) or a secondary one (net1).",
    )(fn)
    fn = click.option(
        "--network", metavar="NS/NAME", help="SpiderMultusConfig the pods attach to (default: the only one)."
    )(fn)
    fn = click.option(
        "--all-nodes",
        is_flag=True,
        help="Every ready, schedulable node (the default, said explicitly; not with --nodes or --node-selector).",
    )(fn)
    fn = click.option("--nodes", type=inputs.NodeNames(), help="Only these nodes.")(fn)
    return click.option("--node-selector", multiple=True, metavar="KEY=VALUE", help="Only nodes with these labels.")(fn)


def cloud_options(fn: Callable[..., None]) -> Callable[..., None]:
    """The cloud side of `audit` and `watch`: which cloud, and the region and profile as the AWS CLI takes them."""
    fn = click.option(
        "--profile", help="AWS profile [default: $AWS_PROFILE, else the AWS CLI's chain, as boto3 reads them]."
    )(fn)
    fn = click.option(
        "--region", help="AWS region of the nodes [default: $AWS_REGION, else the profile's, as the AWS CLI]."
    )(fn)
    return click.option(
        "--cloud",
        type=click.Choice(["aws"]),
        help="Also hold the pools and pods' addresses against the ENI prefixes EC2 routes (read-only EC2 calls; "
        f"needs boto3: {names.install_hint('aws')}).",
    )(fn)


def cloud_problem(exc: Exception) -> click.ClickException:
    """A CloudError as the exit code it deserves: 3 when worth trying again (throttled, unreachable), else 2."""
    return (Unreachable if getattr(exc, "transient", False) else UsageProblem)(f"cannot audit the cloud side: {exc}")

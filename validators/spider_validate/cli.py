"""The spider-validate command line: parse, call the library, set the exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from spider_validate.params import DEFAULT_IMAGES, MANAGED_BY, RUN_LABEL, Parameters

if TYPE_CHECKING:
    from spider_validate.kube import Cluster

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_READY = 0, 1, 2, 3


class UsageProblem(click.ClickException):
    """A problem the user can fix (configuration, credentials, names): exit code 2."""

    exit_code = EXIT_USAGE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Prove that a Spiderpool underlay cluster works, and reach it."""


def _key_values(pairs: tuple[str, ...], what: str, sep: str = "=") -> dict[str, str]:
    out = {}
    for pair in pairs:
        for item in pair.split(","):
            key, eq, value = item.partition(sep)
            if not eq or not key:
                raise click.BadParameter(f"expected KEY{sep}VALUE, got {item!r}", param_hint=what)
            out[key.strip()] = value.strip()
    return out


def _connect(kubeconfig: str | None, context: str | None) -> Cluster:
    from spider_validate.kube import ApiError, KubeCluster

    try:
        return KubeCluster(kubeconfig, context)
    except ApiError as exc:
        raise UsageProblem(f"cannot use the cluster: {exc}") from exc


cluster_options = [
    click.option("--kubeconfig", type=click.Path(dir_okay=False), envvar="KUBECONFIG", help="Kubeconfig file."),
    click.option("--context", "kube_context", help="Kubeconfig context."),
]


def with_cluster(fn: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(cluster_options):
        fn = option(fn)
    return fn


@main.command()
@with_cluster
@click.option(
    "--namespace",
    "namespace_prefix",
    default="spider-validate",
    show_default=True,
    help="Prefix of the run's namespace (the run id is appended).",
)
@click.option(
    "--test",
    "tests",
    multiple=True,
    metavar="REGEX",
    help="Run tests whose suite/name matches; !REGEX excludes. Repeatable.",
)
@click.option("--timeout", default=900.0, show_default=True, help="Deadline of the whole run, in seconds.")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64), help="Tests run at once.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--junit-file", type=click.Path(dir_okay=False), help="Write a JUnit report (also when setup fails).")
@click.option("--keep", is_flag=True, help="Leave the run's namespace and pods for inspection.")
@click.option("--image-registry", help="Registry that mirrors every image (air-gapped clusters).")
@click.option(
    "--image",
    "image_overrides",
    multiple=True,
    metavar="NAME=REF",
    help=f"Replace one image ({', '.join(DEFAULT_IMAGES)}). Repeatable.",
)
@click.option("--node-selector", multiple=True, metavar="KEY=VALUE", help="Only nodes with these labels.")
@click.option("--nodes", metavar="A,B", help="Only these nodes.")
@click.option(
    "--network", metavar="NS/NAME", help="SpiderMultusConfig the test pods attach to (default: the only one)."
)
@click.option(
    "--attach",
    type=click.Choice(["auto", "default", "secondary"]),
    default="auto",
    show_default=True,
    help="Attach test pods as their default network (eth0) or a secondary one (net1).",
)
@click.option(
    "--apps", default=0, type=click.IntRange(0, 20), help="Deploy N apps of the run's own instead of the chart's."
)
@click.option(
    "--ipam-pods",
    default=20,
    show_default=True,
    type=click.IntRange(1, 500),
    help="Pods the ipam/scale test creates at once.",
)
@click.option(
    "--ipam-range",
    metavar="A-B",
    help="Free addresses of the network's subnet for the ipam suite's own pools (never a user's pool).",
)
@click.option("--pool", help="Let the ipam suite allocate from this existing pool instead of its own.")
@click.option(
    "--rdma-mode",
    type=click.Choice(["auto", "efa", "shared", "sriov", "none"]),
    default="auto",
    show_default=True,
    help="RDMA mode; auto detects it from the nodes' allocatable resources.",
)
@click.option("--rdma-min-gbps", type=float, help="Minimum average bandwidth [default: a fraction of the line rate].")
@click.option("--diagnostics-dir", default=".", show_default=True, type=click.Path(file_okay=False))
def run(
    kubeconfig: str | None,
    kube_context: str | None,
    junit_file: str | None,
    output: str,
    node_selector: tuple[str, ...],
    nodes: str | None,
    image_overrides: tuple[str, ...],
    **options: Any,
) -> None:
    """Prove the underlay works: preflight, connectivity (ping, HTTP, Service, node) and the sample apps.

    \b
    Exit codes: 0 all passed, 1 a test failed, 2 bad usage or configuration, 3 the cluster is not ready.
    \b
    Examples:
      spider-validate run
      spider-validate run --test connectivity --test '!service' --junit-file report.xml
      spider-validate run --image-registry mirror.example.com --network kube-system/ipvlan-ens5
    """
    from rich.console import Console

    from spider_validate import report
    from spider_validate.runner import Runner
    from spider_validate.suites import all_tests

    overrides = _key_values(image_overrides, "--image")
    unknown = set(overrides) - set(DEFAULT_IMAGES)
    if unknown:
        raise click.BadParameter(
            f"unknown image {sorted(unknown)}; known: {', '.join(DEFAULT_IMAGES)}", param_hint="--image"
        )
    params = Parameters(
        node_selector=_key_values(node_selector, "--node-selector"),
        image_overrides=overrides,
        nodes=tuple(n for n in (nodes or "").split(",") if n),
        **options,
    )
    tests = all_tests()
    if not any(params.selects(t.id) for t in tests):
        raise UsageProblem(f"no test matches {' '.join(params.tests)} (see `spider-validate list`)")
    cluster = _connect(kubeconfig, kube_context)
    console = Console(stderr=True)
    runner = Runner(cluster, params, tests, progress=lambda t: console.print(report.progress_line(t)))
    console.print(f"run {runner.ctx.run_id}: namespace {runner.ctx.namespace}")
    result = runner.run()
    if junit_file:
        report.write_junit(result, junit_file)
    click.echo(report.to_json(result) if output == "json" else report.table(result))
    if result.preflight_failed:
        sys.exit(EXIT_NOT_READY)
    sys.exit(EXIT_PASSED if result.passed else EXIT_FAILED)


@main.command(name="list")
def list_tests() -> None:
    """Every test with its suite, labels and description.

    \b
    Example:
      spider-validate list
    """
    from spider_validate.suites import all_tests

    for t in all_tests():
        labels = ",".join(t.labels) or "-"
        click.echo(f"{t.id:<40} {labels:<22} {t.description}")


@main.command()
@click.option("--image-registry", help="Registry that mirrors every image.")
@click.option("--image", "image_overrides", multiple=True, metavar="NAME=REF")
def images(image_registry: str | None, image_overrides: tuple[str, ...]) -> None:
    """Every image a run uses, one per line (to mirror them).

    \b
    Example:
      spider-validate images | xargs -n1 crane copy ...
    """
    params = Parameters(image_registry=image_registry, image_overrides=_key_values(image_overrides, "--image"))
    for ref in sorted(set(params.images().values())):
        click.echo(ref)


@main.command(name="manifests")
@click.option("--network", default="kube-system/ipvlan-ens5", show_default=True, metavar="NS/NAME")
@click.option("--attach", type=click.Choice(["default", "secondary"]), default="default", show_default=True)
@click.option("--nodes", default="NODE-A,NODE-B", show_default=True, metavar="A,B")
@click.option("--apps", default=0, type=click.IntRange(0, 20))
@click.option("--image-registry")
def manifests_cmd(network: str, attach: str, nodes: str, apps: int, image_registry: str | None) -> None:
    """Print the objects `run` creates, without a cluster.

    \b
    Example:
      spider-validate manifests --nodes worker-0,worker-1 | kubectl apply --dry-run=server -f -
    """
    from spider_validate import manifests
    from spider_validate.runner import new_run_id

    ns, _, name = network.rpartition("/")
    params = Parameters(apps=apps, image_registry=image_registry)
    run_id = new_run_id()
    objs = manifests.run_objects(
        run_id,
        f"{params.namespace_prefix}-{run_id}",
        nodes.split(","),
        manifests.Network(ns or "kube-system", name, attach),
        params,
    )
    click.echo(yaml.safe_dump_all(objs, sort_keys=False), nl=False)


@main.command()
@with_cluster
def cleanup(kubeconfig: str | None, kube_context: str | None) -> None:
    """Delete everything any run left behind (found by label) and say what was removed.

    \b
    Example:
      spider-validate cleanup
    """
    from spider_validate.kube import ApiError

    cluster = _connect(kubeconfig, kube_context)
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    removed = 0
    try:
        for kind in ("Namespace", "SpiderIPPool"):
            for obj in cluster.list(kind, label_selector=selector):
                cluster.delete(kind, obj["metadata"]["name"])
                run = obj["metadata"].get("labels", {}).get(RUN_LABEL, "?")
                click.echo(f"removed {kind} {obj['metadata']['name']} (run {run})")
                removed += 1
    except ApiError as exc:
        raise UsageProblem(f"cleanup failed: {exc}") from exc
    click.echo(f"{removed} object(s) removed" if removed else "nothing to remove")


@main.command()
@with_cluster
@click.option(
    "--from-file",
    "dump",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Audit a dump of `kubectl get spiderippools,spiderendpoints,pods -A -o json` instead of the cluster.",
)
@click.option("--pool", "pools", multiple=True, help="Audit only these pools (repeatable).")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--junit-file", type=click.Path(dir_okay=False))
def audit(
    kubeconfig: str | None,
    kube_context: str | None,
    dump: Path | None,
    pools: tuple[str, ...],
    output: str,
    junit_file: str | None,
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
    import json

    from spider_validate import audit as ipam_audit
    from spider_validate import report
    from spider_validate.kube import ApiError
    from spider_validate.model import RunResult
    from spider_validate.runner import new_run_id

    only = set(pools) or None
    try:
        snap = ipam_audit.load_dump(dump) if dump else ipam_audit.snapshot(_connect(kubeconfig, kube_context))
    except (ValueError, json.JSONDecodeError) as exc:
        raise UsageProblem(f"cannot read {dump}: {exc}") from exc
    except ApiError as exc:
        raise UsageProblem(f"cannot read the cluster: {exc}") from exc
    findings = ipam_audit.audit(snap, only)
    result = RunResult(
        new_run_id(), "", str(dump or "cluster"), tests=[ipam_audit.as_test_result(findings, snap, only)]
    )
    if junit_file:
        report.write_junit(result, junit_file)
    click.echo(report.to_json(result) if output == "json" else report.table(result))
    sys.exit(EXIT_PASSED if not findings else EXIT_FAILED)


@main.command()
@click.option("--cluster", required=True, help="Cluster name (the `name` of cluster.yaml).")
@click.option("--region", required=True, envvar="AWS_REGION", help="AWS region of the cluster.")
@click.option(
    "--local-port",
    default=6443,
    show_default=True,
    type=click.IntRange(1024, 65535),
    help="Local port of the SSM port forward.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the kubeconfig [default: ./kubeconfig-CLUSTER].",
)
def kubeconfig(cluster: str, region: str, local_port: int, output: Path | None) -> None:
    """Fetch the admin kubeconfig from SSM and point it at a local SSM port forward.

    \b
    Example:
      spider-validate kubeconfig --cluster spiderpool-rdma --region us-east-1
      # then, in another terminal, the printed `aws ssm start-session ...` command
      export KUBECONFIG=$PWD/kubeconfig-spiderpool-rdma; kubectl get nodes
    """
    import boto3

    from spider_validate import kubeconfig as kc

    try:
        config = kc.fetch(boto3.client("ssm", region_name=region), cluster, region)
        instance = kc.control_plane_instance(boto3.client("ec2", region_name=region), cluster)
    except kc.KubeconfigError as exc:
        raise UsageProblem(str(exc)) from exc
    path = output or Path(f"kubeconfig-{cluster}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(kc.through_local_port(config, local_port), fh, sort_keys=False)
    click.echo(f"wrote {path} (mode 0600, server https://localhost:{local_port})")
    click.echo("open the API port forward (keep it running):")
    click.echo(f"  {kc.port_forward_command(region, instance, local_port)}")
    click.echo(f"then: export KUBECONFIG={path.resolve()}")

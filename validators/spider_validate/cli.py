"""The spider-validate command line: check every input, call the library, set the exit code."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, cast

import click
import yaml

from spider_validate import __version__, inputs
from spider_validate.names import NETWORK_GBPS_LABEL
from spider_validate.params import EXPIRES, MANAGED_BY, RUN_LABEL, Parameters

if TYPE_CHECKING:
    from spider_validate.kube import Cluster
    from spider_validate.model import RunResult, Test

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_READY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageProblem(click.ClickException):
    """A problem the user can fix (configuration, credentials, names): exit code 2."""

    exit_code = EXIT_USAGE


class Unreachable(click.ClickException):
    """The API server does not answer: the cluster is not ready for testing, exit code 3."""

    exit_code = EXIT_NOT_READY


class Cli(click.Group):
    """Ctrl-C anywhere (a live audit, cleanup) exits 130 as shells expect, not click's 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="spider-validate", help="Show the version and exit.")
def main() -> None:
    """Prove that a Spiderpool underlay cluster works, and reach it."""


def _exit(code: int, abandoned: bool) -> NoReturn:
    """Exit with `code`; when the run gave up on calls (deadline, Ctrl-C), at once: Python would first wait for
    the threads blocked in them (concurrent.futures joins its workers at exit)."""
    if abandoned:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _connect(kubeconfig: str | None, context: str | None, api_timeout: float) -> Cluster:
    """The cluster, once its API server has answered (one bounded call: a dead tunnel fails in seconds)."""
    from spider_validate.kube import ApiError, ConfigProblem, KubeCluster, Timeouts

    try:
        cluster = KubeCluster(kubeconfig, context, Timeouts(min(5.0, api_timeout), api_timeout))
    except ConfigProblem as exc:
        raise UsageProblem(str(exc)) from exc
    try:
        cluster.server_version()
    except ApiError as exc:
        if exc.status in {401, 403} or not exc.transient:  # credentials, or not an API server at all
            raise UsageProblem(str(exc)) from exc
        raise Unreachable(str(exc)) from exc
    return cluster


HTML_HELP = "Also write the report as one self-contained HTML file (needs the html extra)."


def _require_html(path: str, option: str = "--html") -> None:
    """Before anything runs: the html extra is installed and the file can be written."""
    from spider_validate import html

    if html.missing():
        raise UsageProblem(f"{option} needs {', '.join(html.missing())}: pip install 'spider-validate[html]'")
    inputs.writable_file(path, option)


def _given(param: str) -> bool:
    """Whether the user set this parameter (rather than its default)."""
    source = click.get_current_context().get_parameter_source(param)
    return source not in {None, click.core.ParameterSource.DEFAULT}


def _run_namespace(cluster: Cluster, name: str, tests: list[Test]) -> str:
    """The namespace a run in an existing namespace uses, and its Pod Security level with what each level the
    selected tests need takes; UsageProblem with what an administrator runs when it is missing or not readable."""
    from spider_validate import manifests
    from spider_validate.kube import RBAC_FILE, ApiError

    setup = (
        f"An administrator creates it and lets you run there ({RBAC_FILE}):\n"
        f"  kubectl create namespace {name}\n  {manifests.label_command(name, 'baseline')}\n"
        f"  kubectl apply -f {RBAC_FILE}\n"
        "  kubectl create clusterrolebinding spider-validate-read --clusterrole=spider-validate-read --user=YOU\n"
        f"  kubectl -n {name} create rolebinding spider-validate-run --clusterrole=spider-validate-run --user=YOU\n"
        "  # --ipam-range (the ipam suite's own pools, cluster-scoped) also needs:\n"
        "  kubectl create clusterrolebinding spider-validate-ipam-pools --clusterrole=spider-validate-ipam-pools "
        "--user=YOU"
    )
    try:
        ns = cluster.get("Namespace", name)
    except ApiError as exc:
        raise UsageProblem(f"cannot read namespace {name}: {exc}\n{setup}") from exc
    if ns is None:
        raise UsageProblem(f"namespace {name} does not exist. {setup}")
    enforced = ns["metadata"].get("labels", {}).get(manifests.PSA_ENFORCE)
    lines = [f"namespace {name}: Pod Security enforce={enforced or 'not set (the cluster default)'}"]
    for level in ("baseline", "privileged"):
        needing = [t.id for t in tests if t.pod_security == level]
        if needing and not manifests.admits(enforced, level):
            lines.append(f"  {', '.join(needing)} need {level} (skipped): {manifests.label_command(name, level)}")
    return "\n".join(lines)


def _given_options() -> list[str]:
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


def _emit(result: RunResult, output: str, junit_file: str | None, html_file: str | None) -> None:
    """The results on stdout first, so a report that cannot be written never loses them; then the files."""
    from spider_validate import report

    click.echo(report.to_json(result) if output == "json" else report.table(result))
    if junit_file:
        try:
            report.write_junit(result, junit_file)
        except OSError as exc:
            raise UsageProblem(f"the results above could not be written to {junit_file}: {exc.strerror}") from exc
    if html_file:
        _write_html(result, html_file)


def _write_html(result: RunResult, path: str) -> None:
    from spider_validate import html, report

    try:
        html.write(report.to_dict(result), path)
    except OSError as exc:
        raise UsageProblem(f"the results above could not be written to {path}: {exc.strerror}") from exc


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
    fn = click.option("--nodes", type=inputs.NodeNames(), help="Only these nodes.")(fn)
    return click.option("--node-selector", multiple=True, metavar="KEY=VALUE", help="Only nodes with these labels.")(fn)


@main.command()
@with_cluster
@click.option(
    "--namespace",
    "namespace_prefix",
    type=inputs.NamespacePrefix(),
    default="spider-validate",
    show_default=True,
    help="Prefix of the namespace the run creates and deletes (the run id is appended).",
)
@click.option(
    "--in-namespace",
    "in_namespace",
    type=inputs.NamespaceName(),
    help="Run in this existing namespace instead (validators/rbac.yaml's namespaced mode): pods and a Service there "
    "only, each removed after; tests its Pod Security level does not admit are skipped, saying what to label.",
)
@click.option(
    "--test",
    "tests",
    multiple=True,
    type=inputs.Pattern(),
    help="Run tests whose suite/name matches; !REGEX excludes. Repeatable.",
)
@click.option(
    "--timeout",
    default=900.0,
    show_default=True,
    type=inputs.Positive("SECONDS"),
    help="Deadline of the whole run, in seconds: it holds whatever blocks; cleanup follows.",
)
@click.option(
    "--cleanup-timeout",
    default=120.0,
    show_default=True,
    type=inputs.Positive("SECONDS"),
    help="Longest wait for the diagnostics of a failed run, and for removing what the run created.",
)
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64), help="Tests run at once.")
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True, help="Report format."
)
@click.option("--junit-file", type=click.Path(dir_okay=False), help="Write a JUnit report (also when setup fails).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), help=HTML_HELP)
@click.option("--keep", is_flag=True, help="Leave the run's namespace and pods for inspection.")
@image_options
@placement_options
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
    type=inputs.AddressRange(),
    help="Free addresses of the network's subnet for the ipam suite's own pools (never a user's pool).",
)
@click.option("--pool", help="Let the ipam suite allocate from this existing pool instead of its own.")
@click.option(
    "--rdma-mode",
    type=click.Choice(["auto", "efa", "shared", "sriov", "softroce", "none"]),
    default="auto",
    show_default=True,
    help="RDMA mode; auto detects it from the nodes' allocatable resources.",
)
@click.option(
    "--rdma-min-gbps",
    type=inputs.Positive("GBPS"),
    help="Minimum average bandwidth in Gb/s [default: a fraction of the line rate from the node's "
    f"{NETWORK_GBPS_LABEL} label or instance type; without either the test is skipped].",
)
@click.option(
    "--perf-tolerance",
    default=0.10,
    show_default=True,
    type=click.FloatRange(0, 1, max_open=True),
    help="perf/throughput passes when pods reach at least (1 - this) of the host network's throughput.",
)
@click.option(
    "--perf-latency-tolerance",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="perf/latency passes when the pods' p50 latency is at most (1 + this) times the host network's.",
)
@click.option(
    "--perf-seconds", default=10, show_default=True, type=click.IntRange(1, 300), help="Length of a perf measurement."
)
@click.option(
    "--perf-streams", default=8, show_default=True, type=click.IntRange(1, 128), help="Parallel TCP streams (iperf3)."
)
@click.option(
    "--diagnostics-dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where a failed run writes spider-validate-<run id>/ (pods, logs, events, Spiderpool objects).",
)
def run(
    kubeconfig: str | None,
    kube_context: str | None,
    api_timeout: float,
    junit_file: str | None,
    html_file: str | None,
    output: str,
    node_selector: tuple[str, ...],
    nodes: tuple[str, ...] | None,
    image_registry: str | None,
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

    params = Parameters(
        node_selector=inputs.key_values(node_selector, "--node-selector"),
        image_registry=image_registry,
        image_overrides=inputs.image_overrides(image_overrides),
        nodes=nodes or (),
        **options,
    )
    tests = all_tests()
    if not any(params.selects(t.id) for t in tests):
        raise UsageProblem(f"no test matches {' '.join(params.tests)} (see `spider-validate list`)")
    if junit_file:
        inputs.writable_file(junit_file, "--junit-file")
    if html_file:
        _require_html(html_file)
    inputs.writable_dir(params.diagnostics_dir, "--diagnostics-dir")
    if params.in_namespace and _given("namespace_prefix"):
        raise UsageProblem("--namespace (the prefix of a namespace the run creates) excludes --in-namespace")
    cluster = _connect(kubeconfig, kube_context, api_timeout)
    console = Console(stderr=True)
    if params.in_namespace:
        selected = [t for t in tests if params.selects(t.id)]
        console.print(_run_namespace(cluster, params.in_namespace, selected), soft_wrap=True)  # commands to copy
    runner = Runner(cluster, params, tests, progress=lambda t: console.print(report.progress_line(t)))
    console.print(f"run {runner.ctx.run_id}: namespace {runner.ctx.namespace}")
    result = runner.run()
    from spider_validate import environment
    from spider_validate.runner import bounded

    argv = _given_options()

    environ: dict[str, Any] = {}  # best effort, bounded: the API may be what made the run give up
    if not runner.abandoned:
        bounded(lambda: environ.update(environment.collect(cluster, params, runner.ctx, argv)), params.cleanup_timeout)
    result.environment = environ
    _emit(result, output, junit_file, html_file)
    code = EXIT_INTERRUPTED if result.interrupted else EXIT_NOT_READY if result.preflight_failed else EXIT_FAILED
    _exit(EXIT_PASSED if result.passed else code, abandoned=runner.abandoned)


@main.command(name="list")
def list_tests() -> None:
    """Every test: its id, labels, needs and description.

    Needs are the facts of the cluster a test requires (without them it is skipped before any pod is created;
    `line-rate` only without --rdma-min-gbps) and `privileged` where the run's namespace must enforce Pod
    Security's privileged level for the test's pods (IPC_LOCK, hostNetwork); a run selects baseline unless a test
    that will run needs more.

    \b
    Example:
      spider-validate list
    """
    from spider_validate.suites import all_tests

    for t in all_tests():
        labels = ",".join(t.labels) or "-"
        needs = ",".join([*t.requires, *([t.pod_security] if t.pod_security != "baseline" else [])]) or "-"
        click.echo(f"{t.id:<40} {labels:<22} {needs:<26} {t.description}")


@main.command()
@image_options
def images(image_registry: str | None, image_overrides: tuple[str, ...]) -> None:
    """Every image a run uses, one per line (to mirror them).

    \b
    Example:
      spider-validate images | xargs -n1 crane copy ...
    """
    params = Parameters(image_registry=image_registry, image_overrides=inputs.image_overrides(image_overrides))
    for ref in sorted(set(params.images().values())):
        click.echo(ref)


@main.command(name="manifests")
@click.option(
    "--network",
    default="kube-system/ipvlan-ens5",
    show_default=True,
    metavar="NS/NAME",
    help="SpiderMultusConfig the test pods attach to.",
)
@click.option(
    "--attach",
    type=click.Choice(["default", "secondary"]),
    default="default",
    show_default=True,
    help="Attach test pods as their default network (eth0) or a secondary one (net1).",
)
@click.option("--nodes", default="node-a,node-b", show_default=True, type=inputs.NodeNames(), help="Nodes to pin to.")
@click.option("--apps", default=0, type=click.IntRange(0, 20), help="Also N apps of the run's own.")
@click.option(
    "--test",
    "tests",
    multiple=True,
    type=inputs.Pattern(),
    help="Also the pods of the tests whose suite/name matches (ipam, rdma); !REGEX excludes. Repeatable.",
)
@image_options
def manifests_cmd(
    network: str,
    attach: Literal["default", "secondary"],
    nodes: tuple[str, ...],
    apps: int,
    tests: tuple[str, ...],
    image_registry: str | None,
    image_overrides: tuple[str, ...],
) -> None:
    """Print the objects `run` creates, without a cluster: the namespace (at the Pod Security level the selected
    tests need) and the shared test pods, then the pods of each test selected with --test.

    \b
    Example:
      spider-validate manifests --nodes worker-0,worker-1 | kubectl apply --dry-run=server -f -
      spider-validate manifests --test rdma/device
    """
    from spider_validate import manifests
    from spider_validate.context import RunContext
    from spider_validate.runner import new_run_id
    from spider_validate.suites import all_tests

    ns, _, name = network.rpartition("/")
    params = Parameters(
        apps=apps, tests=tests, image_registry=image_registry, image_overrides=inputs.image_overrides(image_overrides)
    )
    selected = [t for t in all_tests() if tests and params.selects(t.id)]
    if tests and not selected:
        raise UsageProblem(f"no test matches {' '.join(tests)} (see `spider-validate list`)")
    run_id = new_run_id()
    offline = RunContext(cast("Cluster", None), params, run_id, params.run_namespace(run_id))
    offline.network, offline.nodes = manifests.Network(ns or "kube-system", name, attach), list(nodes)
    level = manifests.pod_security(selected)
    objs = manifests.run_objects(run_id, offline.namespace, offline.nodes, offline.network, params, level)
    objs += [obj for t in selected if t.objects for obj in t.objects(offline)]
    click.echo(yaml.safe_dump_all(objs, sort_keys=False), nl=False)


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


@main.command()
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
    from spider_validate.kube import ApiError

    cluster = _connect(kubeconfig, kube_context, api_timeout)
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
        raise UsageProblem(f"cleanup failed: {exc}") from exc
    click.echo(f"{removed} object(s) removed" if removed or kept else "nothing to remove")


@main.command()
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
    from spider_validate import audit as ipam_audit
    from spider_validate.kube import ApiError
    from spider_validate.model import RunResult
    from spider_validate.runner import new_run_id

    if junit_file:
        inputs.writable_file(junit_file, "--junit-file")
    if html_file:
        _require_html(html_file)
    only = set(pools) or None
    source = str(dump) if dump else "the cluster"
    try:
        cluster = None if dump else _connect(kubeconfig, kube_context, api_timeout)
        snap = ipam_audit.load_dump(dump) if dump else ipam_audit.snapshot(cluster)
        findings = ipam_audit.audit(snap, only)
    except ipam_audit.Unreadable as exc:
        raise UsageProblem(f"cannot audit {source}: {exc}") from exc
    except ApiError as exc:
        raise UsageProblem(f"cannot read the cluster: {exc}") from exc
    result = RunResult(new_run_id(), "", source, tests=[ipam_audit.as_test_result(findings, snap, only)])
    from spider_validate import environment

    audited = [p for p in snap.pools if only is None or p["metadata"]["name"] in only]
    result.environment = environment.collect(cluster, argv=_given_options(), pools=audited)
    _emit(result, output, junit_file, html_file)
    sys.exit(EXIT_PASSED if not findings else EXIT_FAILED)


@main.command()
@with_cluster
@click.option(
    "--namespace",
    default="spider-validate-watch",
    show_default=True,
    type=inputs.NamespacePrefix(),
    help="Namespace of the probe pods (created, and deleted at the end, when it does not exist).",
)
@click.option("--interval", default=60.0, show_default=True, type=inputs.Positive("SECONDS"), help="Seconds per cycle.")
@click.option(
    "--forecast-window",
    default=21600.0,
    show_default=True,
    type=inputs.Positive("SECONDS"),
    help="Seconds of pool usage the exhaustion forecast fits its line to.",
)
@click.option("--metrics-address", default="127.0.0.1", show_default=True, help="Address the metrics are served on.")
@click.option("--metrics-port", default=9477, show_default=True, type=click.IntRange(0, 65535), help="Metrics port.")
@click.option("--cycles", default=0, type=click.IntRange(0), help="Stop after N cycles [default: run until SIGTERM].")
@click.option(
    "--owner-pod", envvar="SPIDER_VALIDATE_POD", metavar="NAME/UID", help="The pod it runs in: owns probe pods."
)
@image_options
@placement_options
@click.option("--probe-timeout", default=2, show_default=True, type=click.IntRange(1, 60), help="Seconds per ping.")
def watch(
    kubeconfig: str | None,
    kube_context: str | None,
    api_timeout: float,
    namespace: str,
    interval: float,
    forecast_window: float,
    metrics_address: str,
    metrics_port: int,
    cycles: int,
    owner_pod: str | None,
    image_registry: str | None,
    image_overrides: tuple[str, ...],
    node_selector: tuple[str, ...],
    nodes: tuple[str, ...] | None,
    network: str | None,
    attach: Literal["auto", "default", "secondary"],
    probe_timeout: int,
) -> None:
    """Check continuously: pings between probe pods on every node, the IPAM audit, pool headroom, as metrics.

    \b
    Runs until SIGTERM or Ctrl-C, then deletes its probe pods. Metrics: http://ADDRESS:PORT/metrics.
    \b
    Examples:
      spider-validate watch --interval 30
      spider-validate watch --namespace kube-system --metrics-address 0.0.0.0
    """
    import logging

    from spider_validate import watch as watcher
    from spider_validate.kube import ApiError

    owner = None
    if owner_pod:
        name, _, uid = owner_pod.partition("/")
        if not name or not uid:
            raise UsageProblem(f"--owner-pod {owner_pod!r}: expected NAME/UID")
        owner = watcher.Owner(name, uid)
    params = Parameters(
        node_selector=inputs.key_values(node_selector, "--node-selector"),
        image_registry=image_registry,
        image_overrides=inputs.image_overrides(image_overrides),
        nodes=nodes or (),
        network=network,
        attach=attach,
        probe_timeout=probe_timeout,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cluster = _connect(kubeconfig, kube_context, api_timeout)
    options = watcher.WatchOptions(namespace, interval, forecast_window, owner)
    w = watcher.Watcher(cluster, params, options)
    click.echo(f"watch {w.ctx.run_id}: metrics on http://{metrics_address}:{metrics_port}/metrics", err=True)
    try:
        removed = watcher.serve(w, metrics_address, metrics_port, cycles)
    except OSError as exc:
        raise UsageProblem(f"cannot serve metrics on {metrics_address}:{metrics_port}: {exc.strerror}") from exc
    except LookupError as exc:
        raise UsageProblem(str(exc)) from exc
    except ApiError as exc:  # at start: the network could not be read, the namespace not created
        raise (Unreachable if exc.transient else UsageProblem)(str(exc)) from exc
    click.echo(f"stopped; removed {', '.join(removed) or 'nothing'}", err=True)


@main.command(name="report")
@click.argument("results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o", "--output", "html_file", required=True, type=click.Path(dir_okay=False), help="The HTML file to write."
)
def report_cmd(results: Path, html_file: str) -> None:
    """Render the HTML report of a saved JSON result (`run -o json` or `audit -o json`, any format version).

    \b
    Example:
      spider-validate run -o json > result.json; spider-validate report result.json -o report.html
    """
    from spider_validate import html

    _require_html(html_file, "--output")
    try:
        data = html.load(results)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from exc
    try:
        html.write(data, html_file)
    except OSError as exc:
        raise UsageProblem(f"cannot write {html_file}: {exc.strerror}") from exc
    click.echo(f"wrote {html_file}")


@main.command()
@click.option("--cluster", required=True, help="Cluster name (the `name` of cluster.yaml).")
@click.option("--region", required=True, envvar="AWS_REGION", help="AWS region of the cluster [default: $AWS_REGION].")
@click.option("--profile", envvar="AWS_PROFILE", help="AWS profile [default: $AWS_PROFILE, else the default chain].")
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
def kubeconfig(cluster: str, region: str, profile: str | None, local_port: int, output: Path | None) -> None:
    """Fetch the admin kubeconfig from SSM and point it at a local SSM port forward.

    \b
    Example:
      spider-validate kubeconfig --cluster spiderpool-rdma --region us-east-1
      # then, in another terminal, the printed `aws ssm start-session ...` command
      export KUBECONFIG=$PWD/kubeconfig-spiderpool-rdma; kubectl get nodes
    """
    try:
        from spider_validate import kubeconfig as kc
    except ImportError as exc:
        raise UsageProblem("`kubeconfig` needs boto3: pip install 'spider-validate[kubeconfig]'") from exc

    path = output or Path(f"kubeconfig-{cluster}")
    if not path.parent.is_dir():
        raise UsageProblem(f"cannot write {path}: directory {path.parent} does not exist")
    try:
        ssm, ec2 = kc.clients(region, profile)
        config = kc.fetch(ssm, cluster, region)
        instance = kc.control_plane_instance(ec2, cluster, region)
    except kc.KubeconfigError as exc:
        raise UsageProblem(str(exc)) from exc
    _write_private(path, yaml.safe_dump(kc.through_local_port(config, local_port), sort_keys=False))
    click.echo(f"wrote {path} (mode 0600, server https://localhost:{local_port})")
    click.echo("open the API port forward (keep it running):")
    click.echo(f"  {kc.port_forward_command(region, instance, local_port)}")
    click.echo(f"then: export KUBECONFIG={path.resolve()}")


def _write_private(path: Path, text: str) -> None:
    """Create or replace `path` with mode 0600 whatever was there: a new file, renamed over the old one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageProblem(f"cannot write {path}: {exc.strerror}") from exc

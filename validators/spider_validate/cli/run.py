"""`spider-validate run`: every option of a run, the run itself, its report and exit code."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import click

from spider_validate.cli import common, inputs
from spider_validate.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_READY,
    EXIT_PASSED,
    HTML_HELP,
    UsageProblem,
    emit,
    exit_now,
    given_options,
    image_options,
    placement_options,
    require_html,
    with_cluster,
)
from spider_validate.engine.params import Parameters
from spider_validate.names import NETWORK_GBPS_LABEL

if TYPE_CHECKING:
    from spider_validate.cluster.api import Cluster
    from spider_validate.engine.model import ActionResult, TestResult
    from spider_validate.engine.test import Test


def _given(param: str) -> bool:
    """Whether the user set this parameter (rather than its default)."""
    source = click.get_current_context().get_parameter_source(param)
    return source not in {None, click.core.ParameterSource.DEFAULT}


def _run_namespace(cluster: Cluster, name: str, tests: list[Test]) -> str:
    """The namespace a run in an existing namespace uses, and its Pod Security level with what each level the
    selected tests need takes; UsageProblem with what an administrator runs when it is missing or not readable."""
    from spider_validate.cluster.api import RBAC_FILE, ApiError
    from spider_validate.engine import manifests

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


def progress_console(**options: Any) -> Any:
    """Where a run's progress goes: stderr, without rich's highlighter, which coloured fragments of test names,
    addresses and numbers."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, **options)


class Progress:
    """What a run prints as it goes, as cilium-cli's connectivity test does: a dot per check as it finishes (a red
    `x` for one that did not pass), then each test's `[k/N]` line with what failed in it when it ends. Tests run
    concurrently, so the marks of several may share a line; they wrap at the console's width. Called from the
    run's threads: one lock keeps a line whole."""

    def __init__(self, console: Any) -> None:
        self.console, self.total = console, 0
        self._column, self._finished, self._lock = 0, 0, threading.Lock()

    def action(self, result: ActionResult) -> None:
        from spider_validate.engine.model import Status

        with self._lock:
            if self._column >= self.console.width:
                self._end_line()
            self.console.print("." if result.status in (Status.PASS, Status.WARN) else "[red]x[/]", end="")
            self._column += 1

    def test(self, result: TestResult) -> None:
        from spider_validate.report import formats

        with self._lock:
            if self._column:
                self._end_line()
            self._finished += 1
            self.console.print(formats.progress_line(result, self._finished, self.total))

    def _end_line(self) -> None:
        self.console.print()
        self._column = 0


@click.command()
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
    all_nodes: bool,
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
    from spider_validate.engine.runner import Runner
    from spider_validate.suites import all_tests

    params = Parameters(
        node_selector=inputs.key_values(node_selector, "--node-selector"),
        image_registry=image_registry,
        image_overrides=inputs.image_overrides(image_overrides),
        nodes=inputs.node_choice(all_nodes, nodes, node_selector),
        **options,
    )
    tests = all_tests()
    if not any(params.selects(t.id) for t in tests):
        raise UsageProblem(f"no test matches {' '.join(params.tests)} (see `spider-validate list`)")
    if junit_file:
        inputs.writable_file(junit_file, "--junit-file")
    if html_file:
        require_html(html_file)
    inputs.writable_dir(params.diagnostics_dir, "--diagnostics-dir")
    if params.in_namespace and _given("namespace_prefix"):
        raise UsageProblem("--namespace (the prefix of a namespace the run creates) excludes --in-namespace")
    cluster = common.connect(kubeconfig, kube_context, api_timeout)
    console = progress_console()
    if params.in_namespace:
        selected = [t for t in tests if params.selects(t.id)]
        console.print(_run_namespace(cluster, params.in_namespace, selected), soft_wrap=True)  # commands to copy
    progress = Progress(console)
    runner = Runner(cluster, params, tests, progress=progress.test, on_action=progress.action)
    progress.total = len(runner.tests)
    console.print(f"run {runner.ctx.run_id}: namespace {runner.ctx.namespace}")
    result = runner.run()
    from spider_validate.engine.runner import bounded
    from spider_validate.report import environment

    argv = given_options()

    environ: dict[str, Any] = {}  # best effort, bounded: the API may be what made the run give up
    if not runner.abandoned:
        bounded(lambda: environ.update(environment.collect(cluster, params, runner.ctx, argv)), params.cleanup_timeout)
    result.environment = environ
    emit(result, output, junit_file, html_file)
    code = EXIT_INTERRUPTED if result.interrupted else EXIT_NOT_READY if result.preflight_failed else EXIT_FAILED
    exit_now(EXIT_PASSED if result.passed else code, abandoned=runner.abandoned)

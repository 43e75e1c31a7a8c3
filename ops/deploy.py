"""`spiderpool-rdma synth|cost|up|status|down`: one configuration, named once with --config, from synthesis to a
validated cluster and back. Every tool a phase runs gets that configuration (ops/infra.py's environment), so no
step can use another one.

Exit codes: 0 done; 1 a phase failed (it says which tool, and where its output is), or `down` left something
tagged with the cluster; 2 bad usage or an invalid configuration (every problem listed).
"""

from __future__ import annotations

import collections
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import click
import pyhelm3.errors
from botocore.exceptions import BotoCoreError, ClientError
from spider_validate import names
from spider_validate.cluster import kubeconfig as kc
from spider_validate.cluster.api import ApiError, ConfigProblem

from cdk import cost
from cdk.config import DEFAULT_CONFIG, ClusterConfig, ConfigError
from cdk.ec2_types import InstanceTable
from cdk.ipplan import IpPlan, load_plan
from ops import chart, cluster, leftovers
from ops.infra import ROOT, ToolFailed
from ops.up import PHASES, Deployment, run_phases

#: How long the cluster phase waits for the nodes' bootstrap (the EFA installer alone takes about 10 minutes).
BOOTSTRAP_TIMEOUT = 2400.0
#: What `--keep-backups` keeps out of the destroy: the etcd backup bucket with its settings (the resources of the
#: construct cdk/stack.py names `backups`), and the key its snapshots are encrypted with (cdk/constructs/backups.py:
#: SSE-KMS with the cluster's key), without which they could not be read. An HA cluster's other bucket goes.
BACKUP_BUCKET = ("aws_s3_bucket", "backups_")
BACKUP_KEY_TYPES = ("aws_kms_key", "aws_kms_alias")


def backup_resources(state: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The resources of Terraform's state that `--keep-backups` keeps."""
    kind, construct = BACKUP_BUCKET
    return [
        r
        for r in state
        if (r["type"].startswith(kind) and r["name"].startswith(construct)) or r["type"] in BACKUP_KEY_TYPES
    ]


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG,
    show_default="cdk/cluster.yaml",
    help="The cluster's configuration; every step uses this one.",
)
api_port_option = click.option(
    "--api-port",
    type=click.IntRange(1, 65535),
    default=6443,
    show_default=True,
    help="The local port of the SSM port forward to the API (another, when a local cluster holds 6443).",
)
outdir_option = click.option(
    "--output",
    "outdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=ROOT / "cdktf.out",
    show_default="cdktf.out",
    help="Where the synthesized stack, the kubeconfig, the report and the state of `up` go.",
)


def _load(config_path: Path) -> tuple[ClusterConfig, IpPlan, InstanceTable]:
    table = InstanceTable.load()
    try:
        config, plan = load_plan(config_path, table)
    except ConfigError as error:
        click.echo(f"Error: {error}", err=True)
        raise click.exceptions.Exit(2) from error
    return config, plan, table


def _deployment(config_path: Path, outdir: Path) -> tuple[Deployment, IpPlan, InstanceTable]:
    config, plan, table = _load(config_path)
    outdir.mkdir(parents=True, exist_ok=True)
    return Deployment(config_path, config, outdir, click.echo), plan, table


def _aws(config: ClusterConfig) -> Callable[[str], Any]:
    """boto3 clients of the configuration's region (credentials and endpoints from the usual chain)."""
    session = boto3.Session(region_name=config.region)
    return lambda service: session.client(service)


def resource_summary(stack: dict[str, Any]) -> str:
    """What the stack creates: the count of each resource type, most numerous first."""
    counts = collections.Counter({t: len(r) for t, r in stack.get("resource", {}).items()})
    return ", ".join(f"{n} {t.removeprefix('aws_')}" for t, n in counts.most_common())


class AwsCommand(click.Command):
    """A command that calls AWS: the SDK's failures (no credentials, an expired session, access denied) end it with
    one line saying so, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (BotoCoreError, ClientError) as error:
            click.echo(f"Error: AWS: {error} (the AWS CLI's credentials and region, README: Prerequisites)", err=True)
            raise click.exceptions.Exit(1) from error


def register(main: click.Group) -> None:
    """Add the life-cycle commands to the `spiderpool-rdma` group."""
    for command in (synth, cost_command, up, status, down):
        main.add_command(command)


@click.command()
@config_option
@outdir_option
def synth(config_path: Path, outdir: Path) -> None:
    """Synthesize the Terraform JSON and the chart's values from the configuration (what `make synth` does)."""
    deployment, _, table = _deployment(config_path, outdir)
    deployment.infra.synth()
    click.echo(cost.render(deployment.config, table))
    click.echo(f"wrote {deployment.infra.stack_dir}/cdk.tf.json and {outdir}/helm-values.yaml")


@click.command(name="cost")
@config_option
def cost_command(config_path: Path) -> None:
    """The configuration's estimated on-demand cost per hour and per day."""
    config, _, table = _load(config_path)
    click.echo(cost.render(config, table))


class Api:
    """The cluster's API for the phases that need it: the kubeconfig written once, the SSM port forward opened on
    first use (not with an `admin_cidr`: that network reaches the API itself) and closed when `up` ends."""

    def __init__(self, deployment: Deployment, aws: Callable[[str], Any], exits: ExitStack, port: int) -> None:
        self.deployment, self.aws, self.exits = deployment, aws, exits
        self.port = port  # on localhost, which the API certificate names (README)
        self.forwarding = False

    def kubeconfig(self, timeout: float = BOOTSTRAP_TIMEOUT) -> Path:
        d = self.deployment
        config = cluster.wait_for_kubeconfig(
            self.aws("ssm"),
            d.config.name,
            d.config.region,
            click.echo,
            timeout,
            lambda: cluster.bootstrap_progress(self.aws("ec2"), d.config.name),
        )
        if d.config.admin_cidr is None:
            config = kc.through_local_port(config, self.port)
        cluster.write_private(d.kubeconfig, config)
        click.echo(f"  wrote {d.kubeconfig} (mode 0600)")
        return d.kubeconfig

    def reach(self) -> Path:
        """The kubeconfig of a reachable API (the forward opened if this run has not yet)."""
        d = self.deployment
        if not d.kubeconfig.is_file():
            self.kubeconfig()
        if d.config.admin_cidr is None and not self.forwarding:
            instance = kc.control_plane_instance(self.aws("ec2"), d.config.name, d.config.region)
            self.exits.enter_context(cluster.port_forward(d.config.region, instance, self.port))
            self.forwarding = True
        return d.kubeconfig


def phases(deployment: Deployment, plan: IpPlan, api: Api, validate_options: list[str]) -> dict[str, Callable[[], Any]]:
    d = deployment
    expected = [node.name for node in plan.nodes]
    return {
        "infra": lambda: d.infra.apply(api.aws),
        "cluster": lambda: (api.kubeconfig(), cluster.wait_for_nodes(api.reach(), expected, click.echo, 600)),
        "chart": lambda: chart.install(api.reach(), d.config.workers.rdma, d.outdir),
        "validated": lambda: validate(api.reach(), d.report, validate_options),
    }


def validate(kubeconfig: Path, report: Path, options: list[str]) -> None:
    """`spider-validate run` as users run it, in a process of its own (after a deadline it exits at once, leaving
    its blocked calls behind); its table on the terminal, its HTML report beside the kubeconfig.

    It runs in a session of its own, so that a Ctrl-C reaches it once, from here: its first interrupt stops the run
    and removes what it created, a second one exits at once (README, Validate). subprocess.run killed it 0.25 s
    after an interrupt, in the middle of its cleanup, leaving its namespace and pods in the cluster."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    binary = shutil.which("spider-validate", path=search)
    if binary is None:
        raise ToolFailed("spider-validate is not installed: `make synth` installs it into .venv")
    command = [binary, "run", "--kubeconfig", str(kubeconfig), "--html", str(report), *options]
    with subprocess.Popen(command, start_new_session=True) as process:
        try:
            code = process.wait()
        except KeyboardInterrupt:
            click.echo("interrupted: spider-validate stops and removes what it created (Ctrl-C again: at once)")
            process.send_signal(signal.SIGINT)
            try:
                process.wait()
            except KeyboardInterrupt:
                process.send_signal(signal.SIGINT)
                process.wait()
            raise
    if code:
        raise ToolFailed(f"spider-validate run failed (exit {code}): see its table above and {report}")


@click.command(cls=AwsCommand)
@config_option
@outdir_option
@api_port_option
@click.option(
    "--until", type=click.Choice(PHASES), default=PHASES[-1], show_default=True, help="Stop after this phase."
)
@click.option("--yes", is_flag=True, help="Do not ask before creating resources (for scripts).")
@click.option(
    "--validate-options",
    default="",
    metavar="OPTIONS",
    help="What `spider-validate run` gets besides --kubeconfig and --html, as one string: '--test connectivity'.",
)
def up(config_path: Path, outdir: Path, api_port: int, until: str, yes: bool, validate_options: str) -> None:
    """Deploy the configuration's cluster, install the chart and validate it; run again, it resumes."""
    deployment, plan, table = _deployment(config_path, outdir)
    click.echo(f"synthesizing {config_path}")
    stack = deployment.infra.synth()
    click.echo(cost.render(deployment.config, table))
    click.echo(f"creates in {deployment.config.region}: {resource_summary(stack)}")
    if not yes and not deployment.record().done:
        click.confirm("create them (charged while they run)?", abort=True)
    with ExitStack() as exits:
        api = Api(deployment, _aws(deployment.config), exits, api_port)
        try:
            steps = phases(deployment, plan, api, shlex.split(validate_options))
            total = run_phases(deployment, steps, until, click.echo)
        except (ToolFailed, cluster.ClusterNotReady, kc.KubeconfigError, chart.HelmMissing, ApiError) as error:
            click.echo(f"Error: {error}", err=True)
            click.echo("run `spiderpool-rdma up` again with the same --config to resume", err=True)
            raise click.exceptions.Exit(1) from error
    report = f"; report: {deployment.report}" if until == "validated" else ""
    click.echo(f"up to {until} in {total:.0f} s{report}")


@click.command(cls=AwsCommand)
@config_option
@outdir_option
@api_port_option
def status(config_path: Path, outdir: Path, api_port: int) -> None:
    """What exists of the configuration's cluster: what carries its tag, its nodes and chart release, the phases
    of `up` that finished, the last validation, and what it costs."""
    deployment, _, table = _deployment(config_path, outdir)
    name, aws = deployment.config.name, _aws(deployment.config)
    found = {k: v for k, v in leftovers.tagged(aws, names.CLUSTER_TAG, name).items() if v}
    click.echo(f"cluster {name} in {deployment.config.region}:")
    for items in found.values():
        for item in items:
            click.echo(f"  {item}")
    if not found:
        click.echo(f"  nothing tagged {names.CLUSTER_TAG}={name}")
        return
    done = deployment.record().done
    click.echo(f"phases of up finished: {', '.join(done) or 'none'}")
    with ExitStack() as exits:
        show_cluster(Api(deployment, aws, exits, api_port))
    if deployment.report.is_file():
        verdict = "passed" if "validated" in done else "did not pass"
        written = time.strftime("%Y-%m-%d %H:%M", time.localtime(deployment.report.stat().st_mtime))
        click.echo(f"last validation ({written}): {verdict}, report {deployment.report}")
    click.echo(cost.render(deployment.config, table))


def show_cluster(api: Api) -> None:
    """The nodes as the API reports them (kubectl's STATUS and VERSION) and the chart's release as helm does; an
    API that cannot be reached is said, and the rest of `status` still shown."""
    d = api.deployment
    if not d.kubeconfig.is_file():
        click.echo(f"nodes: no kubeconfig yet (up's cluster phase writes {d.kubeconfig})")
        return
    try:
        kubeconfig = api.reach()
        nodes = cluster.node_states(kubeconfig)
    except (ApiError, ConfigProblem, cluster.ClusterNotReady) as error:
        click.echo(f"nodes and chart: the API of {d.kubeconfig} cannot be reached: {error}")
        return
    click.echo(f"nodes ({len(nodes)}):")
    width = max((len(n.name) for n in nodes), default=0)
    for node in nodes:
        # kubectl's STATUS: the Ready condition True is Ready, False or Unknown NotReady
        ready = "Ready" if node.ready == "True" else "NotReady"
        click.echo(f"  {node.name:{width}}  {ready:8}  {node.version}")
    try:
        release = chart.release(kubeconfig)
    except (chart.HelmMissing, pyhelm3.errors.Error) as error:
        click.echo(f"chart release: helm failed: {error}")
        return
    if release is None:
        click.echo(f"chart release: none ({chart.RELEASE} in {chart.NAMESPACE} is not installed)")
    else:
        click.echo(
            f"chart release {release.name} in {chart.NAMESPACE}: revision {release.revision}, {release.status}, "
            f"chart {release.chart} {release.chart_version}"
        )


@click.command(cls=AwsCommand)
@config_option
@outdir_option
@api_port_option
@click.option("--keep-backups", is_flag=True, help="Keep the etcd backup bucket and the key that decrypts it.")
def down(config_path: Path, outdir: Path, api_port: int, keep_backups: bool) -> None:
    """Uninstall the chart, destroy the stack, then list whatever is still tagged with the cluster (exit 1 if any)."""
    deployment, _, _ = _deployment(config_path, outdir)
    aws, record, started = _aws(deployment.config), deployment.record(), time.monotonic()
    try:
        if "chart" in record.done:
            with ExitStack() as exits:
                kubeconfig = Api(deployment, aws, exits, api_port).reach()
                click.echo("uninstalling the chart" if chart.uninstall(kubeconfig) else "no chart release")
        infra = deployment.infra
        infra.synth()
        kept = backup_resources(infra.state()) if keep_backups else []
        click.echo("destroying the stack" + (f", keeping {', '.join(r['address'] for r in kept)}" if kept else ""))
        infra.destroy([r["address"] for r in kept])
    except (ToolFailed, cluster.ClusterNotReady, kc.KubeconfigError, chart.HelmMissing) as error:
        click.echo(f"Error: {error}", err=True)
        raise click.exceptions.Exit(1) from error
    record.clear()
    kept_ids = {str(r["values"].get("id")) for r in kept}
    tagged = [i for items in leftovers.tagged(aws, names.CLUSTER_TAG, deployment.config.name).values() for i in items]
    left = [item for item in tagged if item.rsplit(" ", 1)[-1] not in kept_ids]
    for item in sorted(set(tagged) - set(left)):
        click.echo(f"  kept (--keep-backups): {item}")
    for item in left:
        click.echo(f"  still tagged {names.CLUSTER_TAG}={deployment.config.name}: {item}", err=True)
    if left:
        click.echo(f"Error: {len(left)} resource(s) left: delete them, or find what created them", err=True)
        raise click.exceptions.Exit(1)
    but = ", but the backups kept" if len(tagged) > len(left) else ""
    click.echo(f"down in {time.monotonic() - started:.0f} s: nothing tagged with the cluster is left{but}")

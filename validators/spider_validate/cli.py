"""The spider-validate command line: parse, call the library, set the exit code."""

from __future__ import annotations

import os
from pathlib import Path

import click
import yaml

EXIT_USAGE = 2


class UsageProblem(click.ClickException):
    """A problem the user can fix (configuration, credentials, names): exit code 2."""

    exit_code = EXIT_USAGE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Prove that a Spiderpool underlay cluster works, and reach it."""


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

"""`spider-validate kubeconfig`: the admin kubeconfig from SSM, pointed at a local port forward."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml

from spider_validate import names
from spider_validate.cli.common import (
    UsageProblem,
)

if TYPE_CHECKING:
    pass


@click.command()
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
        from spider_validate.cluster import kubeconfig as kc
    except ImportError as exc:
        raise UsageProblem(f"`kubeconfig` needs boto3: {names.install_hint('kubeconfig')}") from exc

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

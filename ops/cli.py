"""`spiderpool-rdma`: day-two operations on a cluster this project deployed, through SSM (README "Day two").

Exit codes: 0 done, 1 an operation failed on a node (its output is printed), 2 bad usage or an operation refused
(it says why: a minor skipped, a cluster that is not there).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from ops import deploy
from ops.ssm import Nodes, OperationError, SsmNodes
from ops.upgrade import Upgrade

RESTORE_TIMEOUT = 1800  # download, image pull, etcdutl: a large keyspace takes minutes


@click.group()
def main() -> None:
    """A cluster from its configuration and back (synth, cost, up, status, down), and day-two operations on it
    run on its nodes through SSM Run Command (upgrade, restore)."""


deploy.register(main)


def on_cluster(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--cluster and --region, which every command takes, given to it as the cluster's nodes."""

    def wrapper(cluster: str, region: str, **kwargs: Any) -> Any:
        return fn(SsmNodes(cluster, region), **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    wrapper = click.option("--region", required=True, help="its AWS region")(wrapper)
    return click.option("--cluster", required=True, help="the cluster's name (the configuration's `name`)")(wrapper)


def _run(nodes: Nodes, node: str, script: str, args: list[str], timeout: float) -> str:
    result = nodes.run(node, script, args, timeout)
    if result.code:
        click.echo(result.output + result.errors, err=True)
        raise click.exceptions.Exit(1)
    return result.output


@main.command()
@click.option(
    "--backup", default="", help="the archive's key in the bucket (etcd/NODE/TIME.tar.gz); default the newest"
)
@on_cluster
def restore(nodes: Nodes, backup: str) -> None:
    """Rebuild the cluster on its replaced control-plane-0 from an etcd backup (its bootstrap stopped saying so)."""
    _run(nodes, "control-plane-0", "etcd-restore.sh", [backup] if backup else [], RESTORE_TIMEOUT)
    click.echo("restored; control-plane-0's bootstrap goes on with kubeadm init on the restored data")


@main.command()
@click.option("--to", "to", required=True, help="the next minor, such as 1.37")
@on_cluster
def upgrade(nodes: Nodes, to: str) -> None:
    """Upgrade the cluster to the newest release of the next Kubernetes minor, node by node (resumable)."""
    release = Upgrade(nodes, lambda line: click.echo(line, err=True)).run(to)
    click.echo(f"the cluster runs {release}; nodes created from now on install it")


def entry() -> None:
    try:
        main(standalone_mode=True)
    except OperationError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)

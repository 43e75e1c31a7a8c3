"""`spider-validate watch`: the continuous check, its options and its metrics server."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Literal

import click

from spider_validate.cli import common, inputs
from spider_validate.cli.common import (
    UsageProblem,
    cloud_options,
    cloud_problem,
    image_options,
    placement_options,
    with_cluster,
)
from spider_validate.engine.params import Parameters

if TYPE_CHECKING:
    pass


@click.command()
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
@click.option("--metrics-port", default=9477, show_default=True, type=click.IntRange(1, 65535), help="Metrics port.")
@click.option("--cycles", default=0, type=click.IntRange(0), help="Stop after N cycles [default: run until SIGTERM].")
@click.option(
    "--owner-pod", envvar="SPIDER_VALIDATE_POD", metavar="NAME/UID", help="The pod it runs in: owns probe pods."
)
@image_options
@placement_options
@click.option("--probe-timeout", default=2, show_default=True, type=click.IntRange(1, 60), help="Seconds per ping.")
@cloud_options
@click.option(
    "--cloud-budget",
    default=10,
    show_default=True,
    type=click.IntRange(3),
    help="With --cloud aws: the most EC2 calls a cycle makes (3 + one per subnet of the nodes suffice).",
)
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
    all_nodes: bool,
    network: str | None,
    attach: Literal["auto", "default", "secondary"],
    probe_timeout: int,
    cloud: str | None,
    region: str | None,
    profile: str | None,
    cloud_budget: int,
) -> None:
    """Check continuously: pings between probe pods on every node, the IPAM audit, pool headroom, as metrics.

    \b
    Runs until SIGTERM or Ctrl-C, then deletes its probe pods. Metrics: http://ADDRESS:PORT/metrics.
    With --cloud aws, also the audit's cloud side each cycle, with credentials given to it explicitly (a
    Secret's keys in the environment, a credentials file, a web identity): never the node's or a container's role.
    \b
    Examples:
      spider-validate watch --interval 30
      spider-validate watch --namespace kube-system --metrics-address 0.0.0.0
      spider-validate watch --cloud aws --region us-east-1 --cloud-budget 10
    """
    import logging

    from spider_validate.cluster.api import ApiError
    from spider_validate.watch import loop as watcher

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
        nodes=inputs.node_choice(all_nodes, nodes, node_selector),
        network=network,
        attach=attach,
        probe_timeout=probe_timeout,
    )
    if (region or profile) and not cloud:
        raise UsageProblem("--region and --profile belong to the cloud side: add --cloud aws")
    reader = None  # with --cloud: a reader of EC2 per cycle, each with the cycle's call budget
    if cloud:
        from spider_validate.cloud import ec2

        try:
            client = ec2.connect(region, profile, explicit_credentials=True).client
        except ec2.CloudError as exc:
            raise cloud_problem(exc) from exc
        reader = functools.partial(ec2.Boto3Ec2, client, cloud_budget)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cluster = common.connect(kubeconfig, kube_context, api_timeout)
    options = watcher.WatchOptions(namespace, interval, forecast_window, owner, reader)
    w = watcher.Watcher(cluster, params, options)
    click.echo(f"watch {w.ctx.run_id}: metrics on http://{metrics_address}:{metrics_port}/metrics", err=True)
    try:
        removed = watcher.serve(w, metrics_address, metrics_port, cycles)
    except OSError as exc:
        raise UsageProblem(f"cannot serve metrics on {metrics_address}:{metrics_port}: {exc.strerror}") from exc
    except LookupError as exc:
        raise UsageProblem(str(exc)) from exc
    except ApiError as exc:  # at start: the network could not be read, the namespace not created
        raise common.api_problem(exc) from exc
    click.echo(f"stopped; removed {', '.join(removed) or 'nothing'}", err=True)

"""`spider-validate manifests`: the objects a run creates, printed without a cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

import click
import yaml

from spider_validate.cli import inputs
from spider_validate.cli.common import (
    UsageProblem,
    image_options,
)
from spider_validate.engine.params import Parameters

if TYPE_CHECKING:
    from spider_validate.cluster.api import Cluster


@click.command(name="manifests")
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
    from spider_validate.engine import manifests
    from spider_validate.engine.context import RunContext
    from spider_validate.engine.runner import new_run_id
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
    level = manifests.pod_security(t.pod_security for t in selected)
    objs = manifests.run_objects(run_id, offline.namespace, offline.nodes, offline.network, params, level)
    objs += [obj for t in selected if t.objects for obj in t.objects(offline)]
    click.echo(yaml.safe_dump_all(objs, sort_keys=False), nl=False)

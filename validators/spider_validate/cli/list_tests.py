"""`spider-validate list`: every test with its labels and needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass


@click.command(name="list")
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

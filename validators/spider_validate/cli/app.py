"""The `spider-validate` command group: each command lives in a module of its own, added here."""

from __future__ import annotations

from typing import Any

import click

from spider_validate import __version__
from spider_validate.cli.audit import audit
from spider_validate.cli.cleanup import cleanup
from spider_validate.cli.common import EXIT_INTERRUPTED
from spider_validate.cli.images import images
from spider_validate.cli.kubeconfig import kubeconfig
from spider_validate.cli.list_tests import list_tests
from spider_validate.cli.manifests import manifests_cmd
from spider_validate.cli.report import report_cmd
from spider_validate.cli.run import run
from spider_validate.cli.watch import watch


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


for command in (run, list_tests, images, manifests_cmd, cleanup, audit, watch, report_cmd, kubeconfig):
    main.add_command(command)

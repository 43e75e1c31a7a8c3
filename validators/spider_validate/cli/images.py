"""`spider-validate images`: every image a run uses, to mirror them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from spider_validate.cli import inputs
from spider_validate.cli.common import (
    image_options,
)
from spider_validate.engine.params import Parameters

if TYPE_CHECKING:
    pass


@click.command()
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

"""`spider-validate report`: the HTML report of a saved JSON result."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from spider_validate.cli.common import (
    UsageProblem,
    require_html,
)

if TYPE_CHECKING:
    pass


@click.command(name="report")
@click.argument("results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o", "--output", "html_file", required=True, type=click.Path(dir_okay=False), help="The HTML file to write."
)
def report_cmd(results: Path, html_file: str) -> None:
    """Render the HTML report of a saved JSON result (`run -o json` or `audit -o json`, any format version).

    \b
    Example:
      spider-validate run -o json > result.json; spider-validate report result.json -o report.html
    """
    from spider_validate.report import html

    require_html(html_file, "--output")
    try:
        data = html.load(results)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from exc
    try:
        html.write(data, html_file)
    except OSError as exc:
        raise UsageProblem(f"cannot write {html_file}: {exc.strerror}") from exc
    click.echo(f"wrote {html_file}")

"""The page: jinja2 templates (package data) filled with the view and the charts' inline SVG."""

from __future__ import annotations

import re
import time
from typing import Any

import jinja2
import markupsafe

from spider_validate.report.html import charts
from spider_validate.report.html.view import View, anchor, build

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("spider_validate.report.html", "templates"),
    autoescape=jinja2.select_autoescape(["html.j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
TEMPLATES.globals["anchor"] = anchor
TEMPLATES.filters["clock"] = lambda epoch: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def commands(text: object) -> markupsafe.Markup:
    """Escaped text whose `backticked` spans (commands, as the terminal shows them) become <code>: the page showed
    the backticks themselves."""
    escaped = str(markupsafe.escape(text))
    return markupsafe.Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))


TEMPLATES.filters["commands"] = commands


def figures(view: View) -> dict[str, Any]:
    """Every chart as inline SVG markup (only those the result has data for)."""
    return {
        "matrix": {probe: charts.matrix(probe, cells) for probe, cells in sorted(view.cells.items())},
        "bandwidth": charts.bandwidth(view.bandwidth) if view.bandwidth else "",
        "pools": charts.pools(view.pools) if any(p.get("total") is not None for p in view.pools) else "",
        "latencies": charts.latencies(view.ipam_samples) if view.ipam_samples else "",
        "timeline": charts.timeline(view.timeline) if view.timeline else "",
    }


def render(data: dict[str, Any]) -> str:
    view = build(data)
    return TEMPLATES.get_template("report.html.j2").render(v=view, fig=figures(view))

"""The report's charts: Vega-Lite specifications built with altair, rendered to inline SVG by vl-convert.

SVG needs no script in the page, prints sharp, and its marks are in the DOM (each matrix cell is an `<a>` to
its probe's detail). Data is inline; vl-convert is told to load nothing (`allowed_base_urls=[]`).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import altair as alt
import vl_convert

from spider_validate.report.html.view import Cell

FONT = "DejaVu Sans"  # Debian's fonts-dejavu-core; report.css names it first too
STATUS_DOMAIN = ["pass", "fail", "error", "skip", "warn"]
STATUS_RANGE = ["#2e7d32", "#c62828", "#8e24aa", "#f9a825", "#00838f"]
# vl-convert resolves every relative URL, `href` marks included, against this base (vl-convert-rs/src/converter.rs
# at tag vl-convert@1.9.0, function vegaToView: `let baseURL = 'https://vega.github.io/vega-datasets/'`, then
# vega-loader's sanitize prepends it to a URL without a protocol). Our hrefs are fragments of this page: the
# prefix is taken off again so that a click stays in the file.
VL_CONVERT_BASE = "https://vega.github.io/vega-datasets/"


def svg(chart: alt.TopLevelMixin) -> str:
    # The font the page's CSS names first: vl-convert sizes the labels with the font the browser then draws.
    spec = chart.configure(font=FONT, padding={"left": 8, "right": 8, "top": 4, "bottom": 4}).to_dict()
    text = vl_convert.vegalite_to_svg(spec, allowed_base_urls=[])
    return text.replace(f'href="{VL_CONVERT_BASE}#', 'href="#')


def natural(name: str) -> tuple[object, ...]:
    """client-2 before client-10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def status_color(legend: bool = True) -> alt.Color:
    return alt.Color(
        "status:N",
        scale=alt.Scale(domain=STATUS_DOMAIN, range=STATUS_RANGE),
        legend=alt.Legend(title="result", orient="top") if legend else None,
    )


def matrix(probe: str, cells: list[Cell]) -> str:
    """Source x destination, coloured by result; each cell shows its latency or FAIL and links to its detail."""
    rows = []
    own_node = "its node"  # the pod-to-node test pings each client's own node: one column, not one per node
    for c in cells:
        if c.status == "pass":
            label = f"{c.latency_ms:.1f} ms" if c.latency_ms is not None else "ok"
        else:
            label = c.status.upper()
        rows.append(
            {
                "source": c.source,
                "destination": own_node if c.destination.startswith("node/") else c.destination,
                "target": c.destination,
                "status": c.status,
                "label": label,
                "href": f"#{c.anchor}",
            }
        )
    sources = sorted({r["source"] for r in rows}, key=natural)
    destinations = sorted({r["destination"] for r in rows}, key=lambda d: (d == own_node, natural(d)))
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("destination:N", sort=destinations, title="destination", axis=_axis(rows, "destination", -35, "top")),
        y=alt.Y("source:N", sort=sources, title="source", axis=_axis(rows, "source", 0, "left")),
        href="href:N",
    )
    rect = base.mark_rect(stroke="white", strokeWidth=1 if len(destinations) > LABELLED else 2).encode(
        color=status_color(), tooltip=["source:N", "target:N", "status:N", "label:N"]
    )
    if len(destinations) > LABELLED:  # 64 nodes: colour alone, the latency in the tooltip and the detail
        chart = rect.properties(width=alt.Step(14), height=alt.Step(14))
    else:
        small = len(destinations) > 12
        text = base.mark_text(fontSize=9 if small else 11, fontWeight="bold", color="white", aria=False).encode(
            text="label:N"
        )
        chart = (rect + text).properties(width=alt.Step(46 if small else 76), height=alt.Step(22 if small else 30))
    return svg(chart.properties(title=f"{probe}: source → destination"))


LABELLED = 24  # destinations up to which each cell carries its latency as text


def _axis(rows: list[dict[str, Any]], key: str, angle: int, orient: Literal["top", "left"]) -> alt.Axis:
    """The axis of `key`, a source or destination whose probes mostly fail in red and bold: at 64 rows and columns
    the broken node's row and column are found at a glance (every other row fails one cell: to that node)."""
    counts: dict[str, list[int]] = {}
    for r in rows:
        counts.setdefault(r[key], [0, 0])[r["status"] in ("fail", "error")] += 1
    failing = sorted(name for name, (good, bad) in counts.items() if bad > good)
    test = f"indexof({json.dumps(failing)}, datum.value) >= 0"
    return alt.Axis(
        labelAngle=angle,
        orient=orient,
        labelColor={"condition": {"test": test, "value": "#c62828"}, "value": "black"},
        labelFontWeight={"condition": {"test": test, "value": "bold"}, "value": "normal"},
    )


def bandwidth(rows: list[dict[str, Any]]) -> str:
    """One row per node pair, all on one scale, so that bars compare as their numbers do (host and pod are the
    comparison the perf suite exists for; on scales of their own a pod's 10.31 Gb/s was drawn longer than a host's
    13.80): the average as a bar, the peak as a black tick, the threshold red, the line rate grey."""
    base = alt.Chart().encode(y=alt.Y("pair:N", title=None, axis=None))
    bars = base.mark_bar(height=18).encode(
        x=alt.X("average_gbps:Q", title="Gb/s"), color=status_color(), tooltip=["pair:N", "detail:N"]
    )
    peak = base.mark_tick(color="black", thickness=2, size=18).encode(x="peak_gbps:Q")
    threshold = base.mark_tick(color="#c62828", thickness=3, size=26).encode(x="threshold_gbps:Q")
    line_rate = base.mark_tick(color="#757575", thickness=3, size=26).encode(x="line_rate_gbps:Q")
    labels = base.mark_text(align="left", dx=4, fontSize=10).encode(
        x="average_gbps:Q", text=alt.Text("average_gbps:Q", format=".2f")
    )
    layers = alt.layer(bars, peak, threshold, line_rate, labels, data=alt.Data(values=rows)).properties(
        width=520, height=30
    )
    chart = (
        layers.facet(row=alt.Row("pair:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")))
        .resolve_scale(x="shared")
        .properties(title="bandwidth: bar average, black peak, red threshold, grey line rate")
    )
    return svg(chart)


def pools(rows: list[dict[str, Any]]) -> str:
    data = []
    for p in rows:
        if p.get("total") is None:
            continue
        data.append({"pool": p["name"], "addresses": p["allocated"], "state": "used"})
        data.append({"pool": p["name"], "addresses": max(p["total"] - p["allocated"], 0), "state": "free"})
    chart = (
        alt.Chart(alt.Data(values=data))
        .mark_bar()
        .encode(
            y=alt.Y("pool:N", title=None),
            x=alt.X("addresses:Q", stack="zero", title="addresses"),
            color=alt.Color(
                "state:N",
                scale=alt.Scale(domain=["used", "free"], range=["#1565c0", "#c5e1a5"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            order=alt.Order("state:N", sort="descending"),
            tooltip=["pool:N", "state:N", "addresses:Q"],
        )
        .properties(width=520, height=alt.Step(20), title="IP pools: used and free addresses")
    )
    return svg(chart)


def latencies(samples: list[dict[str, Any]]) -> str:
    """Every allocation and release time as a dot, with the box of the distribution (quartiles, whiskers 1.5 IQR)."""
    base = alt.Chart(alt.Data(values=samples)).encode(
        y=alt.Y("kind:N", title=None), x=alt.X("ms:Q", title="milliseconds", axis=alt.Axis(tickCount=8))
    )
    box = base.mark_boxplot(size=18, color="#90caf9", median={"color": "black"})
    dots = base.mark_circle(size=22, color="#0d47a1", opacity=0.6)
    return svg((box + dots).properties(width=520, height=alt.Step(40), title="IPAM: time to address and to release"))


def timeline(rows: list[dict[str, Any]]) -> str:
    order = [r["test"] for r in rows]
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(height=12)
        .encode(
            y=alt.Y("test:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
            x=alt.X("start:Q", title="seconds since the first test started"),
            x2="end:Q",
            color=status_color(),
            tooltip=["test:N", "seconds:Q", "status:N"],
        )
        .properties(width=520, height=alt.Step(16), title="timeline")
    )
    return svg(chart)

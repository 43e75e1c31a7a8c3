"""What the HTML report shows, computed from a JSON result (any format version; see result_schema.json).

Pure functions of the result dict: the verdict and what to fix first, the connectivity cells per probe, RDMA
bandwidth against threshold and line rate, pool headroom, IPAM latency percentiles, the timeline, the environment.
Missing data (an older format, a test that did not run) is shown as missing, never guessed.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Any

from spider_validate.engine.model import Probe
from spider_validate.report.formats import plural
from spider_validate.report.nodes import NodeRow, by_node

MATRIX_PROBES: tuple[Probe, ...] = ("ping", "http")
BAD = ("fail", "error")
# What to fix first: the earlier a layer, the more the later ones depend on it.
PRIORITY = {"setup": 0, "preflight": 1, "connectivity": 2, "apps": 3, "ipam": 4, "audit": 4, "rdma": 5}


@dataclass
class Cell:
    anchor: str
    test: str
    probe: Probe
    source: str
    destination: str
    status: str
    detail: str
    attempts: int
    seconds: float
    started: float | None
    latency_ms: float | None
    command: str
    output: str
    exit_code: Any
    shared_by: int = 1  # format 3: how many probes its command ran at once; output is then this probe's part


@dataclass
class Problem:
    title: str
    detail: str
    anchor: str
    fix: str = ""


@dataclass
class View:
    data: dict[str, Any]
    format_version: int
    healthy: bool
    verdict: str
    problems: list[Problem]
    cells: dict[str, list[Cell]]  # probe -> cells
    tests: list[dict[str, Any]]
    bandwidth: list[dict[str, Any]]
    pools: list[dict[str, Any]]
    ipam_samples: list[dict[str, Any]]
    ipam_percentiles: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    environment: dict[str, Any]
    by_node: list[NodeLine] = field(default_factory=list)
    started: float | None = None  # epoch seconds of the first test
    notes: list[str] = field(default_factory=list)


@dataclass
class NodeLine:
    """A node's row of the connectivity summary: its figures (report/nodes.py) and where its first failure is."""

    row: NodeRow
    first_failure: str  # the anchor of its first failing probe, "" when none failed


def node_lines(by_probe: dict[str, list[Cell]], pods: dict[str, dict[str, Any]]) -> list[NodeLine]:
    """The matrix by node, read at 64 nodes (4,032 cells a probe) before any cell: which node fails, with whom;
    a bad node first, then those failing with some peer."""
    node_of = {name: p["node"] for name, p in pods.items() if p.get("node")}
    between = [c for cs in by_probe.values() for c in cs if c.source in node_of and c.destination in node_of]
    first: dict[str, str] = {}
    for c in between:
        if c.status in BAD:
            for node in (node_of[c.source], node_of[c.destination]):
                first.setdefault(node, c.anchor)
    rows = by_node((node_of[c.source], node_of[c.destination], c.status == "pass") for c in between)
    worst_first = sorted(rows, key=lambda r: (not r.bad, not r.failing))  # stable: node order within each
    return [NodeLine(r, first.get(r.node, "")) for r in worst_first]


def anchor(*parts: object) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", str(p)) for p in parts)


def _test_id(test: dict[str, Any]) -> str:
    return f"{test.get('suite', '?')}/{test.get('name', '?')}"


def latency_ms(action: dict[str, Any]) -> float | None:
    data = action.get("data") or {}
    if action.get("probe") == "ping" and isinstance(data.get("rtt_avg_ms"), (int, float)):
        return float(data["rtt_avg_ms"])
    if action.get("probe") == "http" and isinstance(data.get("seconds"), (int, float)):
        return float(data["seconds"]) * 1000
    return None


def cells(data: dict[str, Any]) -> dict[str, list[Cell]]:
    by_probe: dict[str, list[Cell]] = {}
    for t in data.get("tests", []):
        for i, a in enumerate(t.get("actions", [])):
            probe = next((p for p in MATRIX_PROBES if p == a.get("probe")), None)
            if probe is None:
                continue
            run = (a.get("data") or {}).get("exec") or {}
            by_probe.setdefault(probe, []).append(
                Cell(
                    anchor("probe", _test_id(t), i),
                    _test_id(t),
                    probe,
                    a.get("source", "?"),
                    a.get("destination", "?"),
                    a.get("status", "?"),
                    a.get("detail", ""),
                    a.get("attempts", 1),
                    float(a.get("seconds", 0.0)),
                    a.get("started"),
                    latency_ms(a),
                    run.get("command", ""),
                    "\n".join(s for s in (run.get("stdout", ""), run.get("stderr", "")) if s),
                    run.get("exit_code"),
                    int(run.get("shared_by") or 1),
                )
            )
    return by_probe


def problems(data: dict[str, Any], by_probe: dict[str, list[Cell]]) -> list[Problem]:
    """Everything that is wrong, most fundamental first; one line per failing check, named."""
    found: list[tuple[int, Problem]] = []
    if data.get("setup_error"):
        found.append((0, Problem("setup failed", data["setup_error"], "tests")))
    if data.get("timed_out"):
        found.append((0, Problem("the run timed out", "tests that had not finished are errors", "tests")))
    if data.get("interrupted"):
        found.append((0, Problem("the run was interrupted", "tests that had not finished are skipped", "tests")))
    found += [(PRIORITY["connectivity"], p) for p in matrix_problems(by_probe)]
    for t in data.get("tests", []):
        suite, tid = t.get("suite", ""), _test_id(t)
        rank = PRIORITY.get(suite, 6)
        bad = [a for a in t.get("actions", []) if a.get("status") in BAD]
        for a in bad:
            extra = a.get("data") or {}
            where = f"{a.get('source')} → {a.get('destination')}"
            detail = a.get("detail", "")
            if a.get("probe") in MATRIX_PROBES:
                continue  # in matrix_problems
            if "fix" in extra:  # an audit finding: its kind, what is wrong, and the fix on a line of its own
                title, detail, ref = f"{tid}: {extra.get('problem', '?')}", a.get("action", ""), "audit"
            else:
                title, ref = f"{tid}: {a.get('action', where)}", anchor("test", tid)
            found.append((rank, Problem(title, detail, ref, str(extra.get("fix", "")))))
        if t.get("status") in BAD and not bad:
            found.append((rank, Problem(tid, t.get("reason", "") or t.get("status", ""), anchor("test", tid))))
    found.sort(key=lambda p: p[0])
    return [p for _, p in found]


def matrix_problems(by_probe: dict[str, list[Cell]]) -> list[Problem]:
    """Failing probes, ping before HTTP (a broken path explains both). A destination that fails from every source,
    or a source that fails to every destination, is one line: that pod or its node is what to fix."""
    found = []
    for probe in MATRIX_PROBES:
        cells = by_probe.get(probe, [])
        covered: set[str] = set()
        for key, words in (
            ("destination", "{probe} to {name} fails from every source"),
            ("source", "{probe} from {name} fails to every destination"),
        ):
            groups: dict[str, list[Cell]] = {}
            for c in cells:
                groups.setdefault(getattr(c, key), []).append(c)
            for name, group in sorted(groups.items()):
                if len(group) > 1 and all(c.status in BAD for c in group) and not {c.anchor for c in group} & covered:
                    detail = f"{group[0].detail} ({len(group)} probes)"
                    found.append(Problem(words.format(probe=probe, name=name), detail, group[0].anchor))
                    covered |= {c.anchor for c in group}
        found += [
            Problem(f"{c.test}: {probe} {c.source} → {c.destination}", c.detail, c.anchor)
            for c in cells
            if c.status in BAD and c.anchor not in covered
        ]
    return found


def bandwidth(data: dict[str, Any], nodes: dict[str, dict[str, Any]], pods: dict[str, dict[str, Any]]) -> list[dict]:
    """RDMA bandwidth per node pair: average and peak against the threshold and the slower node's line rate."""
    rows = []
    for t in data.get("tests", []):
        for a in t.get("actions", []):
            d = a.get("data") or {}
            if "average_gbps" not in d:
                continue
            ends = [pods.get(p, {}).get("node", "") for p in (a.get("source"), a.get("destination"))]
            rates = [nodes.get(n, {}).get("line_rate_gbps") for n in ends if n]
            known = [float(r) for r in rates if isinstance(r, (int, float))]
            rows.append(
                {
                    "pair": f"{a.get('source')} → {a.get('destination')}",
                    "kind": d.get("transport", "RDMA"),
                    "average_gbps": d["average_gbps"],
                    "peak_gbps": d.get("peak_gbps"),
                    "threshold_gbps": d.get("min_gbps"),
                    "line_rate_gbps": d.get("line_rate_gbps") or (min(known) if known else None),
                    "status": a.get("status", "?"),
                    "detail": a.get("detail", ""),
                }
            )
    return rows


def ipam_samples(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Allocation and release times of the ipam suite: per pod when recorded, else per wait (all its pods).
    The exhaustion test's pod waits for an address on purpose: its times are not Spiderpool's latency."""
    samples = []
    for t in data.get("tests", []):
        if t.get("suite") != "ipam" or t.get("name") == "exhaustion":
            continue
        for a in t.get("actions", []):
            name, d = a.get("action", ""), a.get("data") or {}
            kind = "allocation" if "address" in name else "release" if "release" in name else None
            if kind is None or a.get("status") != "pass":
                continue
            per_pod = d.get("per_pod_seconds")
            values = per_pod if isinstance(per_pod, list) and per_pod else [d.get("seconds")]
            samples += [
                {"kind": kind, "ms": float(v) * 1000, "test": t.get("name", "")}
                for v in values
                if isinstance(v, (int, float))
            ]
    return samples


def percentiles(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for kind in ("allocation", "release"):
        values = sorted(s["ms"] for s in samples if s["kind"] == kind)
        if not values:
            continue
        cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else [values[0]] * 99
        rows.append({"kind": kind, "n": len(values), "p50": cuts[49], "p90": cuts[89], "p99": cuts[98]})
    return rows


def findings(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**(a.get("data") or {}), "message": a.get("action", ""), "ip": a.get("destination", "")}
        for t in data.get("tests", [])
        if t.get("suite") == "audit"
        for a in t.get("actions", [])
        if a.get("status") in BAD
    ]


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and value > 0


def timeline(data: dict[str, Any]) -> list[dict[str, Any]]:
    timed = [t for t in data.get("tests", []) if _is_time(t.get("started"))]
    if len(timed) < 2:  # one bar says nothing its row in the table does not
        return []
    origin = min(t["started"] for t in timed)
    return [
        {
            "test": _test_id(t),
            "start": round(t["started"] - origin, 3),
            "end": round(t["started"] - origin + max(float(t.get("seconds", 0.0)), 0.01), 3),
            "seconds": round(float(t.get("seconds", 0.0)), 3),
            "status": t.get("status", "?"),
        }
        for t in sorted(timed, key=lambda t: t["started"])
    ]


def build(data: dict[str, Any]) -> View:
    version = int(data.get("format_version", 1))
    env = data.get("environment") or {}
    nodes = {n["name"]: n for n in env.get("nodes", [])}
    pods = {p["name"]: p for p in env.get("pods", [])}
    by_probe = cells(data)
    found = problems(data, by_probe)
    healthy = bool(data.get("passed")) and not found
    counts = data.get("counts") or {}
    tests = plural(len(data.get("tests", [])), "test")
    went_wrong = [f"{counts['fail']} failed"] if counts.get("fail") else []
    went_wrong += [plural(counts["error"], "error")] if counts.get("error") else []
    verdict = (
        f"Healthy: {counts.get('pass', 0)} of {tests} passed"
        if healthy
        else f"Not healthy: {plural(len(found), 'problem')}{''.join(f', {w}' for w in went_wrong)} of {tests}"
    )
    notes = []
    if version < 2:
        notes.append(
            f"This result is format {version}: it has no environment, no probe commands or outputs and no "
            "per-probe start times; those parts are left empty."
        )
    return View(
        data=data,
        format_version=version,
        healthy=healthy,
        verdict=verdict,
        problems=found,
        cells=by_probe,
        tests=data.get("tests", []),
        bandwidth=bandwidth(data, nodes, pods),
        pools=env.get("pools", []),
        ipam_samples=(samples := ipam_samples(data)),
        ipam_percentiles=percentiles(samples),
        findings=findings(data),
        timeline=timeline(data),
        environment=env,
        by_node=node_lines(by_probe, pods),
        started=min(starts)
        if (starts := [t["started"] for t in data.get("tests", []) if _is_time(t.get("started"))])
        else None,
        notes=notes,
    )

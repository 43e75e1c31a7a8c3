"""Bandwidth of every node without n^2 pairs, for any tool: perf/bandwidth-ring (TCP, iperf3) and
rdma/bandwidth-ring (perftest) share the schedule and the judgement here and differ only in how one pairing is
measured and which floor it must reach (half the median pairing for TCP, the RDMA threshold for perftest).

The schedule is a ring of the nodes in name order run in rounds of disjoint pairs (`rounds`): every node meets its
two neighbours, n pairings in all, in 2 rounds (3 for an odd count) whatever the size. A node slow in every pairing
it is part of is the bad node; a slow pairing says which of its two nodes the other rounds implicate.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spider_validate.engine.model import Outcome, Probe
from spider_validate.engine.steps import StepFailed

if TYPE_CHECKING:
    from spider_validate.engine.steps import Steps

Pair = tuple[str, str]  # (the client's node, the server's node)
# One measurement of the run at a time (a ring's round counts as one): a tool filling a link spoils the figures of
# any other measured across it meanwhile (iperf3 those of sockperf, of perftest).
MEASURING = threading.Lock()


@dataclass(frozen=True)
class Measured:
    """One pairing: its Gb/s (None: it measured nothing), what the tool said, and the figure's data."""

    gbps: float | None
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def rounds(nodes: list[str]) -> list[list[Pair]]:
    """Rounds of disjoint pairs in which every node meets both its neighbours on a ring (in the order given): the
    edges (i, i+1) alternately in two rounds, an odd ring's closing edge in a third; two nodes make one pair. Each
    round's pairs run at once: 2 or 3 rounds whatever the size, n pairings in all."""
    n = len(nodes)
    if n < 2:
        return []
    edges = [(nodes[i], nodes[(i + 1) % n]) for i in range(n if n > 2 else 1)]
    if n % 2 == 0:
        return [r for r in (edges[0::2], edges[1::2]) if r]
    return [edges[0 : n - 1 : 2], edges[1 : n - 1 : 2], [edges[-1]]]


def median_floor(figures: dict[Pair, Measured], fraction: float) -> float:
    """`fraction` of the median pairing's Gb/s (0 when none measured): a floor relative to the cluster itself, for
    a tool whose figure has no threshold of its own."""
    measured = sorted(m.gbps for m in figures.values() if m.gbps is not None)
    return measured[len(measured) // 2] * fraction if measured else 0.0


def bad_nodes(figures: dict[Pair, Measured], floor: float) -> set[str]:
    """The nodes slow (below `floor`, or failed) in every pairing they are part of: on a ring each node is in two,
    so one slow link implicates neither of its ends alone, and a slow node makes both its pairings slow."""
    pairings: dict[str, list[bool]] = {}
    for pair, m in figures.items():
        for node in pair:
            pairings.setdefault(node, []).append(m.gbps is None or m.gbps < floor)
    return {node for node, slow in pairings.items() if len(slow) > 1 and all(slow)}


def measure(nodes: list[str], one: Callable[[Pair], Measured]) -> dict[Pair, Measured]:
    """Every pairing of the ring measured by `one`, a round at a time (holding MEASURING), its pairs at once."""
    figures: dict[Pair, Measured] = {}
    for pairs in rounds(nodes):
        with MEASURING, ThreadPoolExecutor(len(pairs), "ring") as pool:
            figures.update(zip(pairs, pool.map(one, pairs), strict=True))
    return figures


def judge(
    t: Steps, figures: dict[Pair, Measured], floor: float, probe: Probe, pods: dict[str, str], data: dict[str, Any]
) -> None:
    """Each pairing and then each node recorded as its own result (a failing one ends nothing): a pairing passes at
    `floor`, a slow one names the node the other rounds implicate; a node passes when its best pairing reaches
    the floor and it is not slow in every pairing (then it is named the bad node). `pods`: node -> its pod."""
    bad = bad_nodes(figures, floor)
    common = data | {"min_gbps": round(floor, 3)}
    for i, pairs in enumerate(rounds(sorted(pods))):
        for pair in pairs:
            m = figures[pair]
            ok = m.gbps is not None and m.gbps >= floor
            blamed = sorted(set(pair) & bad)
            why = "" if ok else f"; the other rounds implicate {' and '.join(blamed) or 'neither node (their link)'}"
            outcome = Outcome(ok, f"round {i + 1}: {m.detail} (floor {floor:.2f} Gb/s){why}", data=common | m.data)
            _record(t, f"{probe} {pair[0]} -> {pair[1]}", outcome, probe, pods[pair[0]], pods[pair[1]])
    for node in sorted(pods):
        mine = {pair: m.gbps for pair, m in figures.items() if node in pair}
        best = max((g for g in mine.values() if g is not None), default=None)
        seen = ", ".join(
            f"with {b if a == node else a}: {g:.2f}" if g is not None else "failed" for (a, b), g in mine.items()
        )
        verdict = "bad node: slow in every pairing" if node in bad else f"best {best or 0:.2f} Gb/s"
        ok = node not in bad and best is not None and best >= floor
        outcome = Outcome(ok, f"{verdict} ({seen} Gb/s)", data=common | {"average_gbps": round(best or 0.0, 3)})
        _record(t, f"bandwidth of node {node}", outcome, probe, node, "")


def _record(t: Steps, name: str, outcome: Outcome, probe: Probe, source: str, destination: str) -> None:
    """A verdict made from every round's figures, recorded as its own result; a failing one ends nothing."""
    with contextlib.suppress(StepFailed):
        t.step(name, lambda: outcome, probe, source, destination)

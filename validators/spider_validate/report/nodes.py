"""The connectivity matrix by node: what each node passed, with which peers it fails, and which node is to blame.

At 64 nodes the matrix has 4,032 cells per probe; a user asks which node is broken. A node is named bad when it
fails with every peer it was tested with while at least one of those peers passes with some other node: the fault
is then on its side, not everyone's. Two nodes that fail only with each other implicate neither one alone. Table
(formats.py) and HTML (html/view.py) both read this.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class NodeRow:
    node: str
    passed: int = 0  # probes to or from this node (or within it) that passed
    total: int = 0
    failing: list[str] = field(default_factory=list)  # peers with which some probe fails, in name order
    bad: bool = False  # fails with every peer, each of which passes with another node

    @property
    def verdict(self) -> str:
        if self.bad:
            return "bad node: fails with every peer"
        if self.failing:
            return "fails with " + ", ".join(self.failing[:3]) + (" ..." if len(self.failing) > 3 else "")
        return "ok"


def pod_nodes(environment: dict[str, Any]) -> dict[str, str]:
    """pod -> node, as the result's environment recorded the run's pods."""
    return {p["name"]: p["node"] for p in environment.get("pods", []) if p.get("node")}


def by_node(cells: Iterable[tuple[str, str, bool]]) -> list[NodeRow]:
    """Rows for the (source node, destination node, passed) of every probe between two pods, in node order."""
    rows: dict[str, NodeRow] = {}
    peer_ok: dict[str, dict[str, bool]] = {}  # node -> peer -> every probe between them passed
    for src, dst, ok in cells:
        for node, peer in {(src, dst), (dst, src)}:
            row = rows.setdefault(node, NodeRow(node))
            row.total += 1
            row.passed += ok
            if peer != node:
                peers = peer_ok.setdefault(node, {})
                peers[peer] = peers.get(peer, True) and ok
    for node, row in rows.items():
        peers = peer_ok.get(node, {})
        row.failing = sorted(p for p, ok in peers.items() if not ok)
        row.bad = (
            bool(peers)
            and len(row.failing) == len(peers)
            and any(any(ok for other, ok in peer_ok.get(p, {}).items() if other != node) for p in peers)
        )
    return [rows[n] for n in sorted(rows)]

"""The bandwidth rings' schedule and judgement (suites/ring.py), shared by perf/bandwidth-ring and
rdma/bandwidth-ring: every node in two pairings, rounds of disjoint pairs, the bad node named only when slow in both."""

from __future__ import annotations

import pytest
from spider_validate.suites import ring


@pytest.mark.parametrize("n", range(2, 12))
def test_every_node_meets_both_neighbours_in_disjoint_rounds(n: int) -> None:
    nodes = [f"n{i:02d}" for i in range(n)]
    rounds = ring.rounds(nodes)
    pairs = [p for r in rounds for p in r]
    assert len(rounds) == (1 if n == 2 else 2 if n % 2 == 0 else 3)
    assert all(len({x for p in r for x in p}) == 2 * len(r) for r in rounds)  # no node twice in a round
    assert len(pairs) == (1 if n == 2 else n) == len(set(pairs))
    assert all(sum(node in p for p in pairs) == (1 if n == 2 else 2) for node in nodes)
    assert ring.rounds(nodes[:1]) == []


def figures(gbps: dict[tuple[str, str], float | None]) -> dict[ring.Pair, ring.Measured]:
    return {pair: ring.Measured(g, "") for pair, g in gbps.items()}


def test_a_node_slow_in_both_pairings_is_bad_and_a_slow_link_implicates_neither() -> None:
    slow_node = figures({("a", "b"): 50.0, ("b", "c"): 5.0, ("c", "d"): None, ("d", "a"): 48.0})
    assert ring.median_floor(slow_node, 0.5) == 24.0  # of the three measured: 5, 48, 50
    assert ring.bad_nodes(slow_node, 24.0) == {"c"}
    slow_link = figures({("a", "b"): 50.0, ("b", "c"): 5.0, ("c", "d"): 49.0, ("d", "a"): 48.0})
    assert ring.bad_nodes(slow_link, 20.0) == set()
    assert ring.bad_nodes(figures({("a", "b"): 1.0}), 20.0) == set()  # two nodes: one pairing blames neither

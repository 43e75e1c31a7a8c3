"""The lab makes room for its pods in the kernel's IPv4 neighbour table, which is one for every namespace of the
machine (tests/lab/netns.py `neighbour_room`), and never takes room back from the other runs. The limits are read
and written in a copy of /proc/sys/net/ipv4/neigh/default here, so the machine's other runs never see a test's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab import netns
from tests.lab.cluster import LabCluster

pytestmark = pytest.mark.root  # a lab's namespaces (LabCluster, not the lab fixtures the marker is found by)
KERNEL_DEFAULTS = {"gc_thresh1": 128, "gc_thresh2": 512, "gc_thresh3": 1024}  # net/core/neighbour.c arp_tbl


def limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: dict[str, int]) -> Path:
    table = tmp_path / "neigh-default"
    table.mkdir()
    for name, value in values.items():
        (table / name).write_text(f"{value}\n")
    monkeypatch.setattr(netns, "NEIGHBOURS", table, raising=False)
    return table


def read(table: Path) -> dict[str, int]:
    return {name.name: int(name.read_text()) for name in table.iterdir()}


def test_a_lab_starts_with_room_for_its_pods_beside_the_machines_other_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the kernel's 1024, five runs at once filled the table: a pod then sent no ARP reply and curl failed to
    connect (test_servers_lab, test_chart_apps_lab) until entries aged out."""
    table = limits(tmp_path, monkeypatch, KERNEL_DEFAULTS)
    with LabCluster(tmp_path, nodes=3):
        room = read(table)
    assert room["gc_thresh3"] >= 4 * 64 * 64 + 4 * 3 * 3  # a 64-node run's pods beside this one's
    assert room["gc_thresh2"] == room["gc_thresh3"] // 2
    assert room["gc_thresh1"] == KERNEL_DEFAULTS["gc_thresh1"]


def test_the_room_is_a_floor_never_lowered_under_the_runs_still_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    larger = {"gc_thresh1": 128, "gc_thresh2": 40000, "gc_thresh3": 80000}
    table = limits(tmp_path, monkeypatch, larger)
    assert netns.neighbour_room(64) == 80000
    assert read(table) == larger

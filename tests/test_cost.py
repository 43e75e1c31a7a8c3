"""The cost estimate adds up the table's prices for the configured instances."""

from __future__ import annotations

import csv

from cdk import cost
from cdk.config import ClusterConfig, ControlPlane, Workers
from cdk.ec2_types import InstanceTable
from tests.conftest import SHARED


def csv_price(name: str) -> float:
    """The price in the shared table the shipped data was generated from."""
    with (SHARED / "upstream" / "aws-ec2-instance-types.csv").open() as fh:
        return next(float(r["on_demand_usd_per_h_us_east_1"]) for r in csv.DictReader(fh) if r["instance_type"] == name)


def test_estimate_uses_the_table_prices(table: InstanceTable) -> None:
    config = ClusterConfig(
        control_plane=ControlPlane(count=3, instance_type="m7i.large"),
        workers=Workers(count=4, instance_type="c5n.18xlarge"),
    )
    lines = cost.estimate(config, table)
    instances = {line.item: line.usd_per_hour for line in lines}
    assert instances["control plane m7i.large"] == 3 * csv_price("m7i.large")
    assert instances["worker c5n.18xlarge"] == 4 * csv_price("c5n.18xlarge")
    text = cost.render(config, table)
    total = sum(line.usd_per_hour for line in lines)
    assert f"{total:.3f} USD/h" in text and f"{total * 24:,.2f} USD/day" in text
    assert "estimate" in text and "2026-07-20" in text

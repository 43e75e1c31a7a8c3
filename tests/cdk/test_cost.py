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


def test_every_disk_is_counted_the_control_planes_too(table: InstanceTable) -> None:
    config = ClusterConfig(
        control_plane=ControlPlane(count=3, root_volume_gib=60),
        workers=Workers(count=4, root_volume_gib=100),
    )
    (disks,) = [line for line in cost.estimate(config, table) if line.item.startswith("EBS gp3")]
    assert disks.quantity == 3 * 60 + 4 * 100
    assert disks.usd_per_hour == (3 * 60 + 4 * 100) * 0.08 / 730  # gp3 us-east-1: 0.08 USD per GB-month


def test_fixed_charges_are_counted_and_usage_charges_named(table: InstanceTable) -> None:
    single, ha = ClusterConfig(), ClusterConfig(control_plane=ControlPlane(count=3))
    items = {line.item: line.usd_per_hour for line in cost.estimate(single, table)}
    assert items["NAT gateway"] == 0.045
    assert items["public IPv4 address of the NAT gateway"] == 0.005  # charged since 2024-02-01
    assert items["KMS key"] == 1.0 / 730
    assert items["SSM advanced parameter (kubeconfig)"] == 0.05 / 730
    assert not [i for i in items if i.startswith("network load balancer")]
    ha_items = {line.item: line.usd_per_hour for line in cost.estimate(ha, table)}
    assert ha_items["network load balancer (API)"] == 0.0225
    text = cost.render(single, table)
    for usage in ("NAT data processing", "flow-log ingestion", "NLB capacity units", "data transfer"):
        assert usage in text

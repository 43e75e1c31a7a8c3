"""The configured cluster's estimated on-demand cost, from the price column of the instance table."""

from __future__ import annotations

from dataclasses import dataclass

from cdk.config import ClusterConfig
from cdk.ec2_types import InstanceTable

# us-east-1 list prices (estimates): NAT gateway per hour, gp3 per GiB-month, hours in a month.
NAT_USD_PER_HOUR = 0.045
GP3_USD_PER_GIB_MONTH = 0.08
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: int
    usd_per_hour: float


def estimate(config: ClusterConfig, table: InstanceTable) -> list[CostLine]:
    lines = []
    for label, spec in (("control plane", config.control_plane), ("worker", config.workers)):
        itype = table.get(spec.instance_type)
        assert itype is not None, "validated by config.load_config"
        lines.append(CostLine(f"{label} {itype.name}", spec.count, spec.count * (itype.usd_per_hour or 0.0)))
    gib = config.control_plane.count * config.control_plane.root_volume_gib + (
        config.workers.count * config.workers.root_volume_gib
    )
    lines.append(CostLine("NAT gateway (hourly charge, data extra)", 1, NAT_USD_PER_HOUR))
    lines.append(CostLine(f"EBS gp3 {gib} GiB", gib, gib * GP3_USD_PER_GIB_MONTH / HOURS_PER_MONTH))
    return lines


def render(config: ClusterConfig, table: InstanceTable) -> str:
    lines = estimate(config, table)
    total = sum(line.usd_per_hour for line in lines)
    rows = [f"  {line.item:<44} {line.usd_per_hour:>9.3f} USD/h" for line in lines]
    note = "" if config.region == "us-east-1" else f" (us-east-1 prices; {config.region} differs)"
    header = f"Estimated on-demand cost{note}, from instance prices of {table.price_date}: an estimate, not a quote"
    footer = f"  {'total':<44} {total:>9.3f} USD/h  = {total * 24:,.2f} USD/day"
    return "\n".join([header, *rows, footer])

"""The configured cluster's estimated on-demand cost: instance prices from the shipped data, list prices else."""

from __future__ import annotations

from dataclasses import dataclass

from cdk.config import ClusterConfig
from cdk.ec2_types import InstanceTable

HOURS_PER_MONTH = 730
# us-east-1 list prices (estimates) of what the stack creates, per hour unless the name says month.
NAT_USD_PER_HOUR = 0.045  # Amazon VPC pricing, NAT gateway hour
PUBLIC_IPV4_USD_PER_HOUR = 0.005  # Amazon VPC pricing, public IPv4 address (since 2024-02-01): the NAT's EIP
NLB_USD_PER_HOUR = 0.0225  # Elastic Load Balancing pricing, Network Load Balancer hour
GP3_USD_PER_GIB_MONTH = 0.08  # Amazon EBS pricing, gp3 (3000 IOPS, 125 MB/s included)
KMS_KEY_USD_PER_MONTH = 1.0  # AWS KMS pricing, customer managed key
ADVANCED_PARAMETER_USD_PER_MONTH = 0.05  # Systems Manager pricing, advanced parameter (the kubeconfig)
PRIVATE_ZONE_USD_PER_MONTH = 0.50  # Route 53 pricing, hosted zone
DETAILED_MONITORING_USD_PER_MONTH = 2.10  # CloudWatch pricing: 7 EC2 metrics x 0.30 USD
#: What depends on use and is not in the total.
USAGE_CHARGES = (
    "NAT data processing (0.045 USD/GB)",
    "flow-log ingestion (0.50 USD/GB) and storage (0.03 USD/GB-month)",
    "NLB capacity units (HA)",
    "KMS and SSM API requests",
    "data transfer to the internet",
)


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: int
    usd_per_hour: float


def _monthly(item: str, quantity: int, usd_per_month: float) -> CostLine:
    return CostLine(item, quantity, quantity * usd_per_month / HOURS_PER_MONTH)


def estimate(config: ClusterConfig, table: InstanceTable) -> list[CostLine]:
    lines = []
    for label, spec in (("control plane", config.control_plane), ("worker", config.workers)):
        itype = table.get(spec.instance_type)
        assert itype is not None, "validated by config.load_config"
        lines.append(CostLine(f"{label} {itype.name}", spec.count, spec.count * (itype.usd_per_hour or 0.0)))
    nodes = config.control_plane.count + config.workers.count
    gib = config.control_plane.count * config.control_plane.root_volume_gib + (
        config.workers.count * config.workers.root_volume_gib
    )
    lines.append(_monthly(f"EBS gp3 {gib} GiB", gib, GP3_USD_PER_GIB_MONTH))
    lines.append(CostLine("NAT gateway", 1, NAT_USD_PER_HOUR))
    lines.append(CostLine("public IPv4 address of the NAT gateway", 1, PUBLIC_IPV4_USD_PER_HOUR))
    if config.control_plane.count > 1:
        lines.append(CostLine("network load balancer (API)", 1, NLB_USD_PER_HOUR))
    lines.append(_monthly("detailed monitoring", nodes, DETAILED_MONITORING_USD_PER_MONTH))
    lines.append(_monthly("KMS key", 1, KMS_KEY_USD_PER_MONTH))
    lines.append(_monthly("SSM advanced parameter (kubeconfig)", 1, ADVANCED_PARAMETER_USD_PER_MONTH))
    lines.append(_monthly("Route 53 private zone", 1, PRIVATE_ZONE_USD_PER_MONTH))
    return lines


def render(config: ClusterConfig, table: InstanceTable) -> str:
    lines = estimate(config, table)
    total = sum(line.usd_per_hour for line in lines)
    rows = [f"  {line.item:<44} {line.usd_per_hour:>9.3f} USD/h" for line in lines]
    note = "" if config.region == "us-east-1" else f" (us-east-1 prices; {config.region} differs)"
    header = f"Estimated on-demand cost{note}, from instance prices of {table.price_date}: an estimate, not a quote"
    footer = f"  {'total':<44} {total:>9.3f} USD/h  = {total * 24:,.2f} USD/day"
    usage = "  not included (usage-based): " + "; ".join(USAGE_CHARGES)
    return "\n".join([header, *rows, footer, usage])

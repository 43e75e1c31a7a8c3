#!/usr/bin/env python3
"""Generate the shipped instance facts from the shared EC2 table (../shared/upstream/aws-ec2-instance-types.csv).

Writes cdk/data/instance_types.json (what the cdk app loads) and validators/spider_validate/data/
instance_network.json (the validator's line rates; the validator never imports cdk). Run it again when the
shared table changes; `python -m cdk.refresh_instance_types` refreshes the cdk data from the EC2 API instead.

    .venv/bin/python scripts/gen_instance_data.py [CSV]
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from spider_validate.names import INSTANCE_NETWORK_FILE as NETWORK_FILE  # noqa: E402

from cdk.ec2_types import DATA_FILE, DataSource, InstanceTable, InstanceType  # noqa: E402

CSV = REPO.parent / "shared" / "upstream" / "aws-ec2-instance-types.csv"
SOURCE = "aws/karpenter-provider-aws v1.14 generated instance-type docs and pricing tables (prices of 2026-07-20)"
PRICE_DATE = "2026-07-20"  # when the table's us-east-1 on-demand prices were generated (shared/README.md)

# The table has no burstable or placement column. Burstable types are the T2 and later families (EC2 API
# BurstablePerformanceSupported). "Placement group rules and limitations" (EC2 User Guide,
# limitations-placement-groups.html) excludes from cluster placement groups burstable performance, Mac and
# flex instances; DescribeInstanceTypes' PlacementGroupInfo also lacks "cluster" for the previous-generation
# c1/m1/m2/m3 and vt1 families. tests/cdk/test_instance_data.py checks this rule against the real
# DescribeInstanceTypes records that moto ships.
BURSTABLE = re.compile(r"^t[2-9]")  # t1.micro predates burstable credits
NO_CLUSTER_PLACEMENT = re.compile(r"^(t\d|mac|c1\.|m[123]\.|vt1\.)|-flex\.")


def from_row(row: dict[str, str]) -> InstanceType:
    name = row["instance_type"]
    price = row["on_demand_usd_per_h_us_east_1"]
    return InstanceType(
        name=name,
        arch=row["arch"],
        vcpu=int(row["vcpu"]),
        network_gbps=float(row["network_gbps"] or 0),
        max_efa=int(row["max_efa"] or 0),
        max_enis=int(row["max_enis"] or 0),
        ipv4_per_eni=int(row["ipv4_per_eni"] or 0),
        nitro=row["hypervisor"] == "nitro",
        bare_metal=row["bare_metal"] == "true",
        burstable=bool(BURSTABLE.match(name)),
        cluster_placement=not NO_CLUSTER_PLACEMENT.search(name),
        usd_per_hour=float(price) if price else None,
    )


def table_from_csv(path: Path) -> InstanceTable:
    with path.open(newline="") as fh:
        types = {t.name: t for t in map(from_row, csv.DictReader(fh))}
    return InstanceTable(types, DataSource(SOURCE, PRICE_DATE, "us-east-1", PRICE_DATE))


def main(argv: list[str]) -> int:
    table = table_from_csv(Path(argv[0]) if argv else CSV)
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    DATA_FILE.write_text(table.dumps())
    NETWORK_FILE.parent.mkdir(parents=True, exist_ok=True)
    NETWORK_FILE.write_text(table.network_file())
    print(f"wrote {len(table)} types to {DATA_FILE.relative_to(REPO)} and {NETWORK_FILE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

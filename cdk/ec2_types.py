"""Look-ups in the EC2 instance table (EFA, ENI limits, price) that validation and cost need."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

#: The shared table of EC2 instance types; override with SPIDERPOOL_RDMA_EC2_TABLE.
DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "upstream" / "aws-ec2-instance-types.csv"
PRICE_DATE = "2026-07-20"  # when the table's us-east-1 on-demand prices were generated


@dataclass(frozen=True)
class InstanceType:
    name: str
    arch: str  # amd64 | arm64
    vcpu: int
    network_gbps: float
    max_efa: int
    max_enis: int
    ipv4_per_eni: int
    nitro: bool
    bare_metal: bool
    usd_per_hour: float | None

    @property
    def supports_prefixes(self) -> bool:
        """ENI prefix delegation needs the Nitro system (bare metal types are Nitro too)."""
        return self.nitro or self.bare_metal


class InstanceTable:
    """The instance types of one CSV file, by name."""

    def __init__(self, types: dict[str, InstanceType], source: Path) -> None:
        self._types = types
        self.source = source

    @classmethod
    def load(cls, path: Path | None = None) -> InstanceTable:
        path = path or Path(os.environ.get("SPIDERPOOL_RDMA_EC2_TABLE", DEFAULT_TABLE))
        if not path.is_file():
            raise FileNotFoundError(
                f"EC2 instance table not found at {path}; set SPIDERPOOL_RDMA_EC2_TABLE to the CSV "
                "(columns of shared/upstream/aws-ec2-instance-types.csv)"
            )
        types = {}
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                price = row["on_demand_usd_per_h_us_east_1"]
                types[row["instance_type"]] = InstanceType(
                    name=row["instance_type"],
                    arch=row["arch"],
                    vcpu=int(row["vcpu"]),
                    network_gbps=float(row["network_gbps"] or 0),
                    max_efa=int(row["max_efa"] or 0),
                    max_enis=int(row["max_enis"] or 0),
                    ipv4_per_eni=int(row["ipv4_per_eni"] or 0),
                    nitro=row["hypervisor"] == "nitro",
                    bare_metal=row["bare_metal"] == "true",
                    usd_per_hour=float(price) if price else None,
                )
        return cls(types, path)

    def get(self, name: str) -> InstanceType | None:
        return self._types.get(name)

    def cheapest_efa(self, n: int) -> list[InstanceType]:
        """The n cheapest priced types with at least one EFA device."""
        efa = [t for t in self._types.values() if t.max_efa > 0 and t.usd_per_hour is not None]
        return sorted(efa, key=lambda t: (t.usd_per_hour, t.name))[:n]

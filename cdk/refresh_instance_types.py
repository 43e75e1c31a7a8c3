"""Refresh the shipped instance facts from the EC2 API (and on-demand prices from the Price List API).

    python -m cdk.refresh_instance_types --region us-east-1 [--no-prices] [--output FILE]

Reads every type with DescribeInstanceTypes (paginated) in the region; prices come from the Price List
API's GetProducts (Linux, shared tenancy, on-demand). Where prices cannot be read (no permission, no
endpoint), the previous file's prices of the same region are kept and the output says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from spider_validate import names

from cdk.ec2_types import DATA_FILE, Arch, DataSource, InstanceTable, InstanceType

#: The Price List API answers only in these regions (AWS Price List API, "Endpoints").
PRICING_REGION = "us-east-1"
#: GetProducts filters for the on-demand hourly price of a Linux instance on shared tenancy, as the
#: Price List API's AmazonEC2 attributes name them (DescribeServices / GetAttributeValues).
PRICE_FILTERS = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "licenseModel": "No License required",
}


def _arch(architectures: list[str]) -> Arch:
    """ProcessorInfo.SupportedArchitectures (i386, x86_64, arm64, x86_64_mac, arm64_mac) -> amd64 | arm64."""
    return "arm64" if any(a.startswith("arm64") for a in architectures) else "amd64"


def from_api(record: dict[str, Any], usd_per_hour: float | None) -> InstanceType:
    """One DescribeInstanceTypes InstanceTypeInfo record (EC2 API reference, InstanceTypeInfo)."""
    net = record["NetworkInfo"]
    return InstanceType(
        name=record["InstanceType"],
        arch=_arch(record["ProcessorInfo"]["SupportedArchitectures"]),
        vcpu=record["VCpuInfo"]["DefaultVCpus"],
        network_gbps=float(sum(c.get("BaselineBandwidthInGbps", 0) for c in net.get("NetworkCards", []))),
        max_efa=net.get("EfaInfo", {}).get("MaximumEfaInterfaces", 0),
        max_enis=net["MaximumNetworkInterfaces"],
        ipv4_per_eni=net["Ipv4AddressesPerInterface"],
        nitro=record.get("Hypervisor") == "nitro",
        bare_metal=record["BareMetal"],
        burstable=record["BurstablePerformanceSupported"],
        cluster_placement="cluster" in record.get("PlacementGroupInfo", {}).get("SupportedStrategies", []),
        usd_per_hour=usd_per_hour,
    )


def describe_instance_types(ec2: Any) -> Iterable[dict[str, Any]]:
    for page in ec2.get_paginator("describe_instance_types").paginate():
        yield from page["InstanceTypes"]


def on_demand_prices(pricing: Any, region: str) -> dict[str, float]:
    """Instance type -> USD per hour from GetProducts' PriceList (JSON strings, one per product)."""
    filters = [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}] + [
        {"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in PRICE_FILTERS.items()
    ]
    prices: dict[str, float] = {}
    for page in pricing.get_paginator("get_products").paginate(ServiceCode="AmazonEC2", Filters=filters):
        for item in page["PriceList"]:
            product = json.loads(item)
            name = product["product"]["attributes"]["instanceType"]
            for term in product["terms"].get("OnDemand", {}).values():
                for dimension in term["priceDimensions"].values():
                    usd = float(dimension["pricePerUnit"]["USD"])
                    if dimension["unit"] == "Hrs" and usd > 0:
                        prices[name] = usd
    return prices


def refresh(ec2: Any, pricing: Any | None, region: str, previous: InstanceTable | None) -> tuple[InstanceTable, str]:
    """The new table and a line saying where its prices come from."""
    today = datetime.date.today().isoformat()
    prices: dict[str, float] = {}
    price_date: str | None = None
    note = "no prices (--no-prices)"
    if pricing is not None:
        try:
            prices, price_date = on_demand_prices(pricing, region), today
            note = f"{len(prices)} on-demand prices from the Price List API"
        except (BotoCoreError, ClientError) as exc:
            note = f"prices unavailable ({exc})"
    if not prices and previous is not None and previous.origin.price_region == region:
        prices = {t.name: t.usd_per_hour for t in previous if t.usd_per_hour is not None}
        price_date = previous.price_date
        note += f"; kept {len(prices)} prices of {price_date} from {previous.path}"
    types = {r["InstanceType"]: from_api(r, prices.get(r["InstanceType"])) for r in describe_instance_types(ec2)}
    origin = DataSource(f"EC2 DescribeInstanceTypes in {region}", today, region, price_date)
    return InstanceTable(types, origin), note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cdk.refresh_instance_types", description=__doc__.split("\n")[0])
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--output", type=Path, default=DATA_FILE)
    parser.add_argument(
        "--network-file", type=Path, default=names.INSTANCE_NETWORK_FILE, help="the validator's line-rate file"
    )
    parser.add_argument("--no-prices", action="store_true", help="do not call the Price List API")
    args = parser.parse_args(argv)
    previous = InstanceTable.load(args.output) if args.output.is_file() else None
    ec2 = boto3.client("ec2", region_name=args.region)
    pricing = None if args.no_prices else boto3.client("pricing", region_name=PRICING_REGION)
    try:
        table, note = refresh(ec2, pricing, args.region, previous)
    except (BotoCoreError, ClientError) as exc:
        print(f"error: DescribeInstanceTypes failed: {exc}", file=sys.stderr)
        return 1
    args.output.write_text(table.dumps())
    args.network_file.write_text(table.network_file())
    print(f"wrote {len(table)} types to {args.output} and {args.network_file}; {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The shipped instance facts: generated from the shared table, right about placement, refreshable from EC2."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest
from botocore.stub import Stubber

from cdk import refresh_instance_types as refresh
from cdk.ec2_types import DATA_FILE, InstanceTable
from tests.conftest import REPO, SHARED, fresh_clone

sys.path.insert(0, str(REPO / "scripts"))
import gen_instance_data

CSV = SHARED / "upstream" / "aws-ec2-instance-types.csv"
NETWORK_FILE = REPO / "validators" / "spider_validate" / "data" / "instance_network.json"
#: Real DescribeInstanceTypes records that moto serves (moto/ec2/resources/instance_types.json.gz).
MOTO_TYPES: dict[str, dict[str, Any]] = json.loads(
    gzip.decompress((Path(moto.__file__).parent / "ec2" / "resources" / "instance_types.json.gz").read_bytes())
)


def test_shipped_files_are_what_the_script_generates_from_the_shared_table() -> None:
    table = gen_instance_data.table_from_csv(CSV)
    assert DATA_FILE.read_text() == table.dumps(), "run scripts/gen_instance_data.py"
    assert NETWORK_FILE.read_text() == table.network_file(), "run scripts/gen_instance_data.py"
    network = json.loads(NETWORK_FILE.read_text())
    assert set(network) == {"source", "generated", "network_gbps"}  # the validator's contract
    assert network["network_gbps"]["c5n.9xlarge"] == 50.0 and len(network["network_gbps"]) > 1200


def test_loaded_table_agrees_with_the_shared_csv_row_by_row() -> None:
    import csv

    table = InstanceTable.load(DATA_FILE)
    with CSV.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(table) == len(rows)
    for row in rows:
        t = table.get(row["instance_type"])
        assert t is not None
        assert (t.arch, t.vcpu, t.max_efa, t.max_enis, t.ipv4_per_eni) == (
            row["arch"],
            int(row["vcpu"]),
            int(row["max_efa"] or 0),
            int(row["max_enis"] or 0),
            int(row["ipv4_per_eni"] or 0),
        )
        price = row["on_demand_usd_per_h_us_east_1"]
        assert t.usd_per_hour == (float(price) if price else None)


def test_burstable_and_cluster_placement_agree_with_describe_instance_types() -> None:
    """The CSV has neither column: the name rule must match EC2's own PlacementGroupInfo for every shared type."""
    table = InstanceTable.load(DATA_FILE)
    common = [t for t in table if t.name in MOTO_TYPES]
    assert len(common) > 1200
    wrong = [
        t.name
        for t in common
        if t.cluster_placement != ("cluster" in MOTO_TYPES[t.name]["PlacementGroupInfo"]["SupportedStrategies"])
        or t.burstable != MOTO_TYPES[t.name]["BurstablePerformanceSupported"]
    ]
    assert wrong == []
    t3 = table.get("t3.large")
    assert t3 is not None and t3.burstable and not t3.cluster_placement


def test_refresh_from_the_emulated_ec2_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    out, network = tmp_path / "types.json", tmp_path / "network.json"
    out.write_text(DATA_FILE.read_text())  # the previous file: its us-east-1 prices are kept
    with moto.mock_aws():
        rc = refresh.main(
            ["--region", "us-east-1", "--no-prices", "--output", str(out), "--network-file", str(network)]
        )
    assert rc == 0
    fresh, shipped = InstanceTable.load(out), InstanceTable.load(DATA_FILE)
    assert len(fresh) == len(MOTO_TYPES)
    for name in ("c5n.9xlarge", "hpc7g.4xlarge", "m7i.large", "p5.48xlarge"):
        a, b = fresh.get(name), shipped.get(name)
        assert a is not None and b is not None
        assert (a.arch, a.vcpu, a.max_efa, a.max_enis, a.ipv4_per_eni, a.nitro, a.usd_per_hour) == (
            b.arch,
            b.vcpu,
            b.max_efa,
            b.max_enis,
            b.ipv4_per_eni,
            b.nitro,
            b.usd_per_hour,
        )
    assert fresh.price_date == shipped.price_date
    assert json.loads(network.read_text())["network_gbps"]["c5n.9xlarge"] == 50.0


def test_refresh_follows_pages_and_reads_prices() -> None:
    """Stubbed answers shaped as the API references show them: DescribeInstanceTypes pages with NextToken;
    GetProducts' PriceList holds one JSON document per product (Price List API, GetProducts response)."""
    ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    product = {
        "product": {"attributes": {"instanceType": "c5n.9xlarge", "regionCode": "eu-west-1"}},
        "terms": {
            "OnDemand": {
                "SKU.JRTCKXETXF": {
                    "priceDimensions": {
                        "SKU.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": "2.0880000000"}}
                    }
                }
            }
        },
    }
    with Stubber(ec2) as e, Stubber(pricing) as p:
        e.add_response("describe_instance_types", {"InstanceTypes": [MOTO_TYPES["c5n.9xlarge"]], "NextToken": "n1"})
        e.add_response("describe_instance_types", {"InstanceTypes": [MOTO_TYPES["t3.large"]]}, {"NextToken": "n1"})
        p.add_response("get_products", {"PriceList": [json.dumps(product)], "FormatVersion": "aws_v1"})
        table, note = refresh.refresh(ec2, pricing, "eu-west-1", InstanceTable.load(DATA_FILE))
    assert [t.name for t in table] == ["c5n.9xlarge", "t3.large"]
    c5n, t3 = table.get("c5n.9xlarge"), table.get("t3.large")
    assert c5n is not None and c5n.usd_per_hour == 2.088 and c5n.max_efa == 1 and c5n.cluster_placement
    assert t3 is not None and t3.usd_per_hour is None and t3.burstable and not t3.cluster_placement
    assert "1 on-demand prices" in note and table.origin.price_region == "eu-west-1"


@pytest.mark.synth
def test_synth_and_wheel_work_in_a_fresh_clone_without_shared(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    for tool in (".venv", ".tools"):
        (clone / tool).symlink_to(REPO / tool)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPIDERPOOL_RDMA_", "CDKTF_"))}
    env["PATH"] = f"{REPO / '.tools/node_modules/.bin'}:{REPO / '.venv/bin'}:{env['PATH']}"
    env.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(REPO / ".cache" / "jsii"))
    proc = subprocess.run(["cdktn", "synth"], cwd=clone, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (clone / "cdktf.out" / "stacks" / "spiderpool-rdma" / "cdk.tf.json").is_file()
    assert (clone / "cdktf.out" / "helm-values.yaml").is_file()
    # Both distributions (the infrastructure at the root, spider-validate in validators/) carry their data files.
    for source, expected in (
        (clone, {"cdk/data/instance_types.json", "cdk/cluster.yaml"}),
        (clone / "validators", {"spider_validate/data/instance_network.json"}),
    ):
        wheel_dir = tmp_path / f"wheel-{source.name}"
        build = subprocess.run(
            [str(REPO / ".venv/bin/pip"), "wheel", "-q", "--no-deps", "-w", str(wheel_dir), str(source)],
            check=True,
            capture_output=True,
            text=True,
        )
        # The build backend's deprecations reach the user at every install (and fail builds after their due date).
        assert "Warning" not in build.stderr, build.stderr
        (wheel,) = wheel_dir.glob("*.whl")
        assert expected <= set(zipfile.ZipFile(wheel).namelist())

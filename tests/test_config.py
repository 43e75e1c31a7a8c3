"""Bad configurations: one clear message per problem, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdk.config import ClusterConfig, ConfigError, load_config
from cdk.ec2_types import InstanceTable
from tests.conftest import synthesize

BAD_INPUTS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "efa-without-efa",
        {"workers": {"instance_type": "m7i.large", "rdma": "efa"}},
        ["workers.instance_type: m7i.large has no EFA", "c5n.9xlarge", "hpc7g"],
    ),
    (
        "too-many-prefixes",
        {"workers": {"instance_type": "c5n.9xlarge", "ipv4_prefixes": 30}},
        ["workers.ipv4_prefixes: 30 /28 prefixes do not fit on one ENI of c5n.9xlarge", "at most 29"],
    ),
    (
        "apps-exceed-pod-ips",
        {"workers": {"ipv4_prefixes": 1}, "sample_apps": {"count": 4, "ips_per_node": 4}},
        ["sample_apps: 4 apps x 4 IPs per node need 16 addresses but a worker has 16 pod IPs"],
    ),
    (
        "subnet-outside-vpc",
        {"node_subnet_cidr": "10.99.0.0/20"},
        ["node_subnet_cidr: 10.99.0.0/20 does not fit inside vpc_cidr 10.42.0.0/16"],
    ),
    (
        "subnets-overlap",
        {"public_subnet_cidr": "10.42.8.0/24"},
        ["node_subnet_cidr 10.42.0.0/20 overlaps public_subnet_cidr 10.42.8.0/24"],
    ),
    (
        "pods-overlap-vpc",
        {"pod_cidr": "10.42.128.0/17"},
        ["pod_cidr: 10.42.128.0/17 overlaps vpc_cidr 10.42.0.0/16"],
    ),
    (
        "services-overlap-pods",
        {"service_cidr": "172.20.0.0/20"},
        ["pod_cidr 172.20.0.0/16 overlaps service_cidr 172.20.0.0/20"],
    ),
    (
        "subnet-too-small",
        {"node_subnet_cidr": "10.42.0.0/27", "workers": {"count": 4}},
        ["node_subnet_cidr: 10.42.0.0/27 is too small for 4 workers x 2 /28 prefixes"],
    ),
    (
        "az-outside-region",
        {"region": "eu-west-1", "availability_zone": "us-east-1a"},
        ["availability_zone: us-east-1a is not in region eu-west-1"],
    ),
    ("two-control-planes", {"control_plane": {"count": 2}}, ["control_plane.count: Input should be 1 or 3"]),
    ("unknown-key", {"wokers": {"count": 2}}, ["wokers: unknown key (check its spelling)"]),
    ("unknown-nested-key", {"workers": {"ipv4_prefixs": 2}}, ["workers.ipv4_prefixs: unknown key"]),
    (
        "unknown-instance-type",
        {"workers": {"instance_type": "c5n.huge"}},
        ["workers.instance_type: unknown EC2 instance type 'c5n.huge'"],
    ),
    (
        "bad-rdma-mode",
        {"workers": {"rdma": "roce"}},
        ["workers.rdma: Input should be 'efa', 'softroce' or 'none'"],
    ),
    ("open-admin-cidr", {"admin_cidr": "0.0.0.0/0"}, ["admin_cidr: 0.0.0.0/0 would open the Kubernetes API"]),
    ("bad-cidr", {"vpc_cidr": "10.42.0.0/33"}, ["vpc_cidr: "]),
    (
        "mixed-arch",
        {"control_plane": {"instance_type": "m7g.large"}},
        ["different architectures (amd64, arm64)"],
    ),
]


@pytest.mark.parametrize(("data", "expected"), [(d, e) for _, d, e in BAD_INPUTS], ids=[n for n, _, _ in BAD_INPUTS])
def test_bad_input_is_reported_and_nothing_is_written(
    data: dict[str, Any],
    expected: list[str],
    write_config: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outdir = tmp_path / "cdktf.out"
    assert synthesize(outdir, write_config(data)) == 2
    err = capsys.readouterr().err
    for fragment in expected:
        assert fragment in err
    assert not outdir.exists()


def test_every_problem_is_reported_at_once(write_config: Any, table: InstanceTable) -> None:
    path = write_config(
        {
            "region": "eu-west-1",
            "workers": {"instance_type": "m7i.large"},
            "public_subnet_cidr": "10.42.8.0/24",
        }
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, table)
    assert len(err.value.problems) == 3, err.value.problems


def test_default_config_is_valid_and_shipped(table: InstanceTable) -> None:
    from cdk.config import DEFAULT_CONFIG

    config = load_config(DEFAULT_CONFIG, table)
    assert config == ClusterConfig(tags={"project": "spiderpool-rdma"})  # the file spells out the defaults


def test_missing_file_is_a_clear_error(tmp_path: Path, table: InstanceTable) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config(tmp_path / "nope.yaml", table)

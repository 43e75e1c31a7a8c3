"""Bad configurations: one clear message per problem, exit 2, nothing written."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdk.config import (
    DEFAULT_KUBERNETES_VERSION,
    NEWEST_MINOR,
    OLDEST_MINOR,
    SUPPORTED_MINORS,
    ClusterConfig,
    ConfigError,
    load_config,
    validate,
)
from cdk.ec2_types import InstanceTable
from cdk.ipplan import make_plan
from cdk.userdata import kubeadm_init_config
from tests.conftest import REPO, synthesize

BAD_INPUTS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "efa-without-efa",
        {"workers": {"instance_type": "m7i.large", "rdma": "efa"}},
        [
            "workers.instance_type: m7i.large has no EFA",
            "types with EFA for amd64 (the control plane's)",
            "c5n.9xlarge",
        ],
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
    ("open-admin-cidr", {"admin_cidr": "0.0.0.0/0"}, ["admin_cidr: 0.0.0.0/0 is wider than a /8"]),
    ("bad-cidr", {"vpc_cidr": "10.42.0.0/33"}, ["vpc_cidr: "]),
    (
        "mixed-arch",
        {"control_plane": {"instance_type": "m7g.large"}},
        ["different architectures (amd64, arm64)"],
    ),
    (
        "services-overlap-vpc",
        {"service_cidr": "10.42.128.0/20"},
        ["service_cidr: 10.42.128.0/20 overlaps vpc_cidr 10.42.0.0/16"],
    ),
    (
        "vpc-too-large",
        {"vpc_cidr": "10.0.0.0/8", "node_subnet_cidr": "10.0.0.0/20", "public_subnet_cidr": "10.0.16.0/24"},
        ["vpc_cidr: AWS allows a VPC of /16 to /28, got 10.0.0.0/8"],
    ),
    (
        "node-subnet-too-large",
        {"vpc_cidr": "10.42.0.0/16", "node_subnet_cidr": "10.42.0.0/15"},
        ["node_subnet_cidr: AWS allows a subnet of /16 to /28, got 10.42.0.0/15"],
    ),
    (
        "public-subnet-too-small",
        {"public_subnet_cidr": "10.42.16.0/29"},
        ["public_subnet_cidr: AWS allows a subnet of /16 to /28, got 10.42.16.0/29"],
    ),
    (
        "worker-not-nitro",
        {"workers": {"instance_type": "c3.2xlarge", "rdma": "none"}},
        ["workers.instance_type: c3.2xlarge is not Nitro-based and cannot hold ENI prefixes"],
    ),
    (
        "control-plane-not-nitro",
        {"control_plane": {"instance_type": "c3.large"}},
        ["control_plane.instance_type: c3.large is not Nitro-based and cannot hold ENI prefixes"],
    ),
    (
        "retention-not-a-cloudwatch-value",
        {"flow_log_retention_days": 1000},
        ["flow_log_retention_days: 1000 is not a CloudWatch Logs retention", "1096"],
    ),
    (
        "retention-below-a-year",
        {"flow_log_retention_days": 30},
        ["flow_log_retention_days: 30 days is below the one year"],
    ),
    (
        "region-format",
        {"region": "useast1", "availability_zone": "useast1a"},
        ["region: 'useast1' is not an AWS region"],
    ),
    ("aws-tag-prefix", {"tags": {"aws:team": "x"}}, ["tags: key 'aws:team' starts with 'aws:'"]),
    ("tag-key-too-long", {"tags": {"k" * 129: "x"}}, ["tags: key 'kkkk", "longer than 128"]),
    ("tag-value-too-long", {"tags": {"team": "v" * 257}}, ["tags.team: the value is longer than 256"]),
    ("too-many-tags", {"tags": {f"t{i}": "x" for i in range(47)}}, ["tags: 47 tags, at most 46"]),
    ("tag-interpolation", {"tags": {"owner": "${var.x}"}}, ["tags.owner: '${' would be read by Terraform"]),
    ("tag-template", {"tags": {"owner": "%{if x}"}}, ["tags.owner: '%{' would be read by Terraform"]),
    (
        "tag-characters",
        {"tags": {"owner": "O'Brien, ops"}},
        ["tags.owner: \"'\" and ',' are not allowed in AWS tags (letters, digits, spaces and + - = . _ : / @)"],
    ),
    (
        "efa-suggestions-follow-the-control-plane",
        {"control_plane": {"instance_type": "m7g.large"}, "workers": {"instance_type": "m7g.xlarge"}},
        ["m7g.xlarge has no EFA", "hpc7g.16xlarge (arm64"],
    ),
    ("bad-s3-bucket", {"backend": {"type": "s3", "bucket": "No_Such"}}, ["backend.s3.bucket"]),
    (
        "s3-key-interpolated",
        {"backend": {"type": "s3", "bucket": "team-state", "key": "${var.env}/state"}},
        ["backend.s3.key"],
    ),
    ("s3-region", {"backend": {"type": "s3", "bucket": "team-state", "region": "EU"}}, ["backend.s3.region"]),
    (
        "secret-reader-not-an-arn",
        {"secret_readers": ["admin", "arn:aws:sts::123456789012:assumed-role/Admin/me"]},
        ["secret_readers: 'admin', 'arn:aws:sts::123456789012:assumed-role/Admin/me': not the ARN of an IAM role"],
    ),
    (
        "kubernetes-before-v1beta4",
        {"kubernetes_version": "1.30"},
        ["kubernetes_version: kubeadm 1.30 cannot read the kubeadm.k8s.io/v1beta4 configuration", "1.35, 1.36, 1.37"],
    ),
    (
        "kubernetes-not-released",
        {"kubernetes_version": "1.38"},
        ["kubernetes_version: 1.38 is newer than this release"],
    ),
    ("kubernetes-patch", {"kubernetes_version": "1.36.2"}, ["kubernetes_version: must be a Kubernetes minor such"]),
    (
        "dra-before-its-chart-supports",
        {"kubernetes_version": "1.34", "workers": {"rdma_devices": "dra"}},
        ["workers.rdma_devices: 'dra' needs Kubernetes 1.35 or later", "kubernetes_version is 1.34"],
    ),
    (
        "dra-without-efa",
        {"workers": {"instance_type": "m7i.xlarge", "rdma": "softroce", "rdma_devices": "dra"}},
        ["workers.rdma_devices: 'dra' serves EFA only", "workers.rdma is 'softroce'"],
    ),
    ("dra-misspelt", {"workers": {"rdma_devices": "DRA"}}, ["workers.rdma_devices: Input should be 'plugin' or 'dra'"]),
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


@pytest.mark.parametrize("minor", SUPPORTED_MINORS)
def test_dra_mode_is_accepted_for_efa_on_every_minor_in_support(minor: str, table: InstanceTable) -> None:
    config = ClusterConfig.model_validate({"kubernetes_version": minor, "workers": {"rdma_devices": "dra"}})
    assert validate(config, table) == []
    assert ClusterConfig().workers.rdma_devices == "plugin"  # until DRA mode is proven on a real cluster


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


def test_duplicate_keys_are_refused_naming_the_key(tmp_path: Path, table: InstanceTable) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("workers:\n  count: 4\nname: dup\nworkers:\n  instance_type: c5n.18xlarge\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, table)
    assert any("duplicate key 'workers'" in p and "line 4" in p for p in err.value.problems), err.value.problems


def test_nested_duplicate_keys_are_refused_with_their_path(tmp_path: Path, table: InstanceTable) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("workers:\n  count: 4\n  count: 5\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'workers.count'"):
        load_config(path, table)


def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path, table: InstanceTable) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text.*byte 0xe9 at offset 9"):
        load_config(path, table)


def test_an_unquoted_version_read_as_a_number_says_so(tmp_path: Path, table: InstanceTable) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("kubernetes_version: 1.30\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, table)
    (problem,) = err.value.problems
    assert "kubernetes_version: YAML read it as the number 1.3" in problem and '"1.30"' in problem


@pytest.mark.parametrize("days", [365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653])
def test_every_cloudwatch_retention_of_a_year_or_more_is_accepted(days: int) -> None:
    assert ClusterConfig.model_validate({"flow_log_retention_days": days}).flow_log_retention_days == days


def test_the_readme_states_the_tags_default() -> None:
    readme = (REPO / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `tags` |")]
    assert ClusterConfig().tags == {} and "none" in row and "spiderpool-rdma/cluster" in row


def test_a_new_cluster_defaults_to_a_kubernetes_minor_in_upstream_support() -> None:
    """The default was 1.33, whose upstream support ended on 2026-06-28."""
    assert ClusterConfig().kubernetes_version == DEFAULT_KUBERNETES_VERSION in SUPPORTED_MINORS
    for minor in SUPPORTED_MINORS:
        assert ClusterConfig(kubernetes_version=minor).kubernetes_version == minor


def test_accepted_minors_are_those_whose_kubeadm_reads_the_rendered_configuration() -> None:
    """kubeadm reads kubeadm.k8s.io/v1beta4 from 1.31 (kubernetes PR 125029): every configuration the nodes get is
    that version, so 1.28 to 1.30, accepted before, failed on every node."""
    config = ClusterConfig()
    rendered = kubeadm_init_config(config, make_plan(config), make_plan(config).control_planes[0])
    kubeadm_apis = {d["apiVersion"] for d in yaml.safe_load_all(rendered) if d["apiVersion"].startswith("kubeadm")}
    join = (REPO / "bootstrap/join.sh").read_text()
    assert kubeadm_apis == {"kubeadm.k8s.io/v1beta4"} and "apiVersion: kubeadm.k8s.io/v1beta4" in join
    accepted = []
    for minor in range(20, 45):
        with contextlib.suppress(ValueError):
            accepted.append(ClusterConfig(kubernetes_version=f"1.{minor}").kubernetes_version)
    assert accepted == [f"1.{m}" for m in range(OLDEST_MINOR, NEWEST_MINOR + 1)] and OLDEST_MINOR == 31


def test_the_readme_states_the_kubernetes_default_and_the_minors_in_support() -> None:
    readme = (REPO / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `kubernetes_version` |"))  # Configuration
    assert f'`"{DEFAULT_KUBERNETES_VERSION}"`' in row
    assert all(minor in row for minor in SUPPORTED_MINORS) and f"1.{OLDEST_MINOR}" in row


def test_efa_suggestions_have_the_control_planes_architecture(write_config: Any, table: InstanceTable) -> None:
    """Both roles must share one architecture, so an arm64 suggestion for an amd64 control plane would be refused."""
    with pytest.raises(ConfigError) as err:
        load_config(write_config({"workers": {"instance_type": "m7i.large"}}), table)
    (problem,) = err.value.problems
    suggested = re.findall(r"([a-z0-9-]+\.[a-z0-9]+) \((amd64|arm64),", problem)
    assert len(suggested) == 4 and {arch for _, arch in suggested} == {"amd64"}, problem


def test_the_configuration_does_not_import_the_plan() -> None:
    """The plan is made from the configuration (ipplan imports config), never the other way round."""
    probe = "import sys, cdk.config; print(' '.join(sorted(m for m in sys.modules if m.startswith('cdk.'))))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "cdk.config" in out.split() and "cdk.ipplan" not in out.split(), out


@pytest.mark.parametrize(
    ("cidr", "why"),
    [
        ("0.0.0.0/1", "is wider than a /8 (2,147,483,648 addresses): it would open the Kubernetes API"),
        ("128.0.0.0/1", "is wider than a /8"),
        ("10.0.0.0/7", "is wider than a /8"),  # private ranges too: 11.0.0.0/8 is not
        ("100.64.0.0/10", "is a public (not RFC 1918) range wider than a /16 (4,194,304 addresses"),
        ("203.0.0.0/15", "is a public (not RFC 1918) range wider than a /16"),
        ("172.0.0.0/11", "is a public (not RFC 1918) range"),  # 172.0-31: only 172.16/12 is private
    ],
)
def test_an_admin_cidr_wider_than_a_network_of_yours_is_refused_saying_why(
    cidr: str, why: str, table: InstanceTable
) -> None:
    problems = validate(ClusterConfig.model_validate({"admin_cidr": cidr}), table)
    assert len(problems) == 1 and problems[0].startswith(f"admin_cidr: {cidr} ") and why in problems[0], problems


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "198.51.0.0/16", "203.0.113.7/32"])
def test_a_private_range_or_a_public_one_of_a_16_or_narrower_is_accepted(cidr: str, table: InstanceTable) -> None:
    assert validate(ClusterConfig.model_validate({"admin_cidr": cidr}), table) == []

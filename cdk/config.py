"""The typed cluster configuration: load a YAML file, apply defaults, report every problem at once."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cdk.ec2_types import InstanceTable, InstanceType
from cdk.ipplan import PREFIX_SIZE, plan_problems

DEFAULT_CONFIG = Path(__file__).resolve().parent / "cluster.yaml"
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
_K8S_MINOR = re.compile(r"^1\.(2[89]|3[0-9])$")


class ConfigError(Exception):
    """A configuration that cannot be synthesized; `problems` holds one message per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


class RdmaMode(StrEnum):
    EFA = "efa"
    SOFTROCE = "softroce"
    NONE = "none"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ControlPlane(_Strict):
    count: Literal[1, 3] = 1
    instance_type: str = "m7i.large"
    ipv4_prefixes: Annotated[int, Field(ge=1, le=16, description="/28 prefixes on each control plane's ENI")] = 1
    root_volume_gib: Annotated[int, Field(ge=20, le=1024)] = 50


class Workers(_Strict):
    count: Annotated[int, Field(ge=1, le=64)] = 2
    instance_type: str = "c5n.9xlarge"
    rdma: RdmaMode = RdmaMode.EFA
    ipv4_prefixes: Annotated[int, Field(ge=1, le=64, description="/28 prefixes on each worker's ENI")] = 2
    root_volume_gib: Annotated[int, Field(ge=20, le=1024)] = 100


class SampleApps(_Strict):
    count: Annotated[int, Field(ge=0, le=20)] = 3
    ips_per_node: Annotated[int, Field(ge=1, le=64)] = 4


class LocalState(_Strict):
    """Terraform state in `terraform.NAME.tfstate` beside the output directory (the project root for cdktf.out)."""

    type: Literal["local"] = "local"


class S3State(_Strict):
    """Terraform state in S3, locked with a lock object beside it (`use_lockfile`, Terraform >= 1.10)."""

    type: Literal["s3"]
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    key: str | None = None  # default spiderpool-rdma/NAME/terraform.tfstate
    region: str | None = None  # default: the cluster's region


class ClusterConfig(_Strict):
    name: str = "spiderpool-rdma"
    region: str = "us-east-1"
    availability_zone: str = "us-east-1a"
    vpc_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.42.0.0/16")
    node_subnet_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.42.0.0/20")
    public_subnet_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.42.16.0/24")
    pod_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("172.20.0.0/16")
    service_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("172.21.0.0/16")
    admin_cidr: ipaddress.IPv4Network | None = None
    kubernetes_version: str = "1.33"
    tags: dict[str, str] = Field(default_factory=dict)
    control_plane: ControlPlane = ControlPlane()
    workers: Workers = Workers()
    sample_apps: SampleApps = SampleApps()
    flow_log_retention_days: Literal[365, 400, 545, 731, 1827, 3653] = 365
    backend: Annotated[LocalState | S3State, Field(discriminator="type")] = LocalState()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("must be 3-32 characters of a-z, 0-9 and '-', starting with a letter")
        return v

    @field_validator("kubernetes_version")
    @classmethod
    def _minor(cls, v: str) -> str:
        if not _K8S_MINOR.match(v):
            raise ValueError("must be a Kubernetes minor version such as '1.33' (1.28 to 1.39)")
        return v

    @property
    def ssm_path(self) -> str:
        """The SSM parameter path that holds this cluster's join data and kubeconfig."""
        return f"/spiderpool-rdma/{self.name}"


def _pydantic_problems(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = "unknown key (check its spelling)" if e["type"] == "extra_forbidden" else e["msg"]
        problems.append(f"{where}: {msg}")
    return problems


def _cidr_problems(c: ClusterConfig) -> list[str]:
    problems = []
    for key in ("node_subnet_cidr", "public_subnet_cidr"):
        net: ipaddress.IPv4Network = getattr(c, key)
        if not net.subnet_of(c.vpc_cidr):
            problems.append(f"{key}: {net} does not fit inside vpc_cidr {c.vpc_cidr}")
    if c.node_subnet_cidr.overlaps(c.public_subnet_cidr):
        problems.append(f"node_subnet_cidr {c.node_subnet_cidr} overlaps public_subnet_cidr {c.public_subnet_cidr}")
    internal = {"pod_cidr": c.pod_cidr, "service_cidr": c.service_cidr}
    for key, net in internal.items():
        if net.overlaps(c.vpc_cidr):
            problems.append(f"{key}: {net} overlaps vpc_cidr {c.vpc_cidr}")
    if c.pod_cidr.overlaps(c.service_cidr):
        problems.append(f"pod_cidr {c.pod_cidr} overlaps service_cidr {c.service_cidr}")
    if not 16 <= c.vpc_cidr.prefixlen <= 28:
        problems.append(f"vpc_cidr: AWS allows a VPC of /16 to /28, got {c.vpc_cidr}")
    if c.admin_cidr is not None and c.admin_cidr.prefixlen == 0:
        problems.append("admin_cidr: 0.0.0.0/0 would open the Kubernetes API to the internet; name your network")
    return problems


def _prefix_problems(key: str, prefixes: int, itype: InstanceType | None) -> list[str]:
    """Every node's ENI holds /28 prefixes for pods: Nitro only, and no more than the ENI's address slots."""
    if itype is None:
        return []
    if not itype.supports_prefixes:
        return [f"{key}.instance_type: {itype.name} is not Nitro-based and cannot hold ENI prefixes"]
    max_prefixes = itype.ipv4_per_eni - 1  # the primary private IP takes one slot
    if prefixes > max_prefixes:
        return [
            f"{key}.ipv4_prefixes: {prefixes} /28 prefixes do not fit on one ENI of "
            f"{itype.name}, which holds {itype.ipv4_per_eni} IPv4 addresses or prefixes "
            f"(at most {max_prefixes} prefixes beside the primary address)"
        ]
    return []


def _placement_problems(c: ClusterConfig, table: InstanceTable) -> list[str]:
    problems = []
    if not re.fullmatch(re.escape(c.region) + r"[a-z]", c.availability_zone):
        problems.append(
            f"availability_zone: {c.availability_zone} is not in region {c.region} (expected {c.region}a, b, ...)"
        )
    for key, itype in (
        ("control_plane", c.control_plane.instance_type),
        ("workers", c.workers.instance_type),
    ):
        if table.get(itype) is None:
            problems.append(f"{key}.instance_type: unknown EC2 instance type {itype!r}")
    worker = table.get(c.workers.instance_type)
    if worker is None or table.get(c.control_plane.instance_type) is None:
        return problems
    if c.workers.rdma is RdmaMode.EFA and worker.max_efa == 0:
        cheapest = ", ".join(
            f"{t.name} ({t.arch}, {t.network_gbps:g} Gb/s, ~{t.usd_per_hour:.2f} USD/h)" for t in table.cheapest_efa(4)
        )
        problems.append(
            f"workers.instance_type: {worker.name} has no EFA, so rdma 'efa' cannot work; "
            f"the cheapest types with EFA are {cheapest} (prices are estimates), "
            "or use rdma 'softroce'"
        )
    for key, spec in (("control_plane", c.control_plane), ("workers", c.workers)):
        problems += _prefix_problems(key, spec.ipv4_prefixes, table.get(spec.instance_type))
    pod_ips = c.workers.ipv4_prefixes * PREFIX_SIZE
    app_ips = c.sample_apps.count * c.sample_apps.ips_per_node
    if app_ips >= pod_ips:
        problems.append(
            f"sample_apps: {c.sample_apps.count} apps x {c.sample_apps.ips_per_node} IPs per node need "
            f"{app_ips} addresses but a worker has {pod_ips} pod IPs ({c.workers.ipv4_prefixes} x /28) "
            "and the general pool needs at least one; raise workers.ipv4_prefixes or lower the app IPs"
        )
    arches = {t.arch for t in (table.get(c.control_plane.instance_type), worker) if t is not None}
    if len(arches) > 1:
        problems.append(
            "control_plane.instance_type and workers.instance_type have different architectures "
            f"({', '.join(sorted(arches))}); use one architecture so every node runs the same images"
        )
    return problems


def validate(config: ClusterConfig, table: InstanceTable) -> list[str]:
    """Every semantic problem of a parsed configuration, in the user's terms."""
    problems = _cidr_problems(config) + _placement_problems(config, table)
    if not problems:
        problems += plan_problems(config)
    return problems


def load_config(path: Path, table: InstanceTable) -> ClusterConfig:
    """Parse and validate a cluster.yaml; raise ConfigError listing every problem."""
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(source, [f"cannot read the configuration: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the configuration must be a YAML mapping of keys to values"])
    try:
        config = ClusterConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, _pydantic_problems(exc)) from exc
    problems = validate(config, table)
    if problems:
        raise ConfigError(source, problems)
    return config

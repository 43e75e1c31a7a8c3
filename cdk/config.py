"""The typed cluster configuration: load a YAML file, apply defaults, report every problem at once."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from spider_validate import names

from cdk.ec2_types import InstanceTable, InstanceType

DEFAULT_CONFIG = Path(__file__).resolve().parent / "cluster.yaml"
PREFIX_SIZE = 16  # addresses in one /28 ENI prefix, the unit of `ipv4_prefixes`
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
_K8S_MINOR = re.compile(r"^1\.(0|[1-9][0-9]*)$")
#: The Kubernetes minors a new cluster may have: kubeadm reads the kubeadm.k8s.io/v1beta4 configuration the nodes are
#: given from 1.31 on (kubernetes PR 125029; an older kubeadm refuses it on every node), and 1.37 is the newest minor
#: released (pkgs.k8s.io serves one repository per released minor).
OLDEST_MINOR, NEWEST_MINOR = 31, 37
#: The minors in upstream support on 2026-12-07 (kubernetes.io/releases: the three newest, about 14 months each; 1.33
#: ended 2026-06-28, 1.34 2026-10-27, 1.38 is due 2026-12-16). The default is the middle one: a minor with months of
#: patch releases behind it and until mid-2027 before it needs an upgrade.
SUPPORTED_MINORS = ("1.35", "1.36", "1.37")
DEFAULT_KUBERNETES_VERSION = "1.36"
#: The oldest minor `rdma_devices: dra` accepts: the aws-dranet chart's README asks for "Kubernetes 1.35+"
#: (aws/eks-charts stable/aws-dranet/README.md, "Prerequisites"; its DeviceClass is resource.k8s.io/v1, from 1.34).
DRA_OLDEST_MINOR = 35
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")  # us-east-1, us-gov-west-1, ap-southeast-2
#: An IAM role or user a key policy can name ("IAM identifiers", IAM user guide: path and name characters).
_IAM_PRINCIPAL = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:(role|user)/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}$")
#: CloudWatch Logs retention values (PutRetentionPolicy, retentionInDays).
CLOUDWATCH_RETENTION_DAYS = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731),
    *(1096, 1827, 2192, 2557, 2922, 3288, 3653),
)
#: AWS tags: 50 per resource, keys up to 128 and values up to 256 characters, `aws:` reserved ("Tag naming limits
#: and requirements", Tagging AWS resources). The stack adds up to 4 of its own to a resource (the cluster default
#: tag, Name, spiderpool-rdma/node and /role on instances).
MAX_TAGS, OWN_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 50, 4, 128, 256
#: Characters every service the stack tags accepts (IAM, KMS, SSM and CloudWatch Logs are the strictest): letters,
#: digits, spaces and these ("Tag naming limits and requirements").
_TAG_PUNCTUATION = set("+-=._:/@ ")
#: Terraform reads `${` as an interpolation and `%{` as a template directive in any string.
_TERRAFORM_SEQUENCES = {"${": "an interpolation", "%{": "a template directive"}


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


class RdmaDevices(StrEnum):
    """How pods get the RDMA device: the device plugin's extended resource, or a ResourceClaim that aws-dranet (a
    Dynamic Resource Allocation driver) allocates. `plugin` stays the default until DRA mode is proven on a real
    cluster."""

    PLUGIN = "plugin"
    DRA = "dra"


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
    rdma_devices: RdmaDevices = RdmaDevices.PLUGIN
    ipv4_prefixes: Annotated[int, Field(ge=1, le=64, description="/28 prefixes on each worker's ENI")] = 2
    root_volume_gib: Annotated[int, Field(ge=20, le=1024)] = 100


class SampleApps(_Strict):
    count: Annotated[int, Field(ge=0, le=20)] = 3
    ips_per_node: Annotated[int, Field(ge=1, le=64)] = 4


#: An IAM principal that may be named in a bucket policy: an account root, a user or a role (IAM user guide, "IAM
#: identifiers", IAM ARNs; the path and name characters IAM allows). No wildcard: each reader is named.
_IAM_PRINCIPAL = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:(root|(user|role)(/[\w+=,.@-]+)*/[\w+=,.@-]{1,64})$")


class EtcdBackups(_Strict):
    """Hourly etcd snapshots (with the cluster's CA keys, which a restore needs) in an S3 bucket of the stack."""

    retention_days: Annotated[int, Field(ge=1, le=3650, description="days a snapshot is kept, in S3 days")] = 30
    #: Who may read the snapshots besides the control planes (which restore them): they hold every Secret of the
    #: cluster and its CA keys. Principals of the cluster's account; each also needs kms:Decrypt on the cluster key.
    readers: list[str] = Field(default_factory=list)

    @field_validator("readers")
    @classmethod
    def _readers(cls, v: list[str]) -> list[str]:
        bad = [arn for arn in v if not _IAM_PRINCIPAL.match(arn)]
        if bad:
            raise ValueError(
                f"{', '.join(map(repr, bad))}: not the ARN of an IAM role, user or account root "
                "(arn:aws:iam::ACCOUNT:role/NAME); name each reader, without wildcards"
            )
        return v


class LocalState(_Strict):
    """Terraform state in `terraform.NAME.tfstate` beside the output directory (the project root for cdktf.out)."""

    type: Literal["local"] = "local"


class S3State(_Strict):
    """Terraform state in S3, locked with a lock object beside it (`use_lockfile`, Terraform >= 1.10)."""

    type: Literal["s3"]
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    key: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^$%]*$")] | None = None  # default below
    region: Annotated[str, Field(pattern=_REGION.pattern)] | None = None  # default: the cluster's region


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
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    tags: dict[str, str] = Field(default_factory=dict)
    control_plane: ControlPlane = ControlPlane()
    workers: Workers = Workers()
    sample_apps: SampleApps = SampleApps()
    flow_log_retention_days: int = 365
    # IAM roles or users (ARNs) that may decrypt the cluster's secrets (the admin kubeconfig, the join data); empty:
    # whoever the account's IAM policies let use the cluster's key.
    secret_readers: list[str] = Field(default_factory=list)
    etcd_backups: EtcdBackups = EtcdBackups()
    backend: Annotated[LocalState | S3State, Field(discriminator="type")] = LocalState()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("must be 3-32 characters of a-z, 0-9 and '-', starting with a letter")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not _REGION.match(v):
            raise ValueError(f"{v!r} is not an AWS region (such as us-east-1)")
        return v

    @field_validator("secret_readers")
    @classmethod
    def _readers(cls, v: list[str]) -> list[str]:
        bad = [arn for arn in v if not _IAM_PRINCIPAL.match(arn)]
        if bad:
            raise ValueError(
                f"{', '.join(map(repr, bad))}: not the ARN of an IAM role or user (arn:aws:iam::ACCOUNT:role/NAME); "
                "for an assumed role, name the role"
            )
        if len(set(v)) != len(v):
            raise ValueError("an ARN is listed twice")
        return v

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v not in CLOUDWATCH_RETENTION_DAYS:
            raise ValueError(
                f"{v} is not a CloudWatch Logs retention value ({', '.join(map(str, CLOUDWATCH_RETENTION_DAYS))})"
            )
        if v < 365:
            raise ValueError(
                f"{v} days is below the one year this project keeps flow logs (checkov CKV_AWS_338); use 365 or more"
            )
        return v

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version_as_number(cls, v: object) -> object:
        """YAML reads an unquoted 1.30 as the float 1.3: say so instead of "not a valid string"."""
        if isinstance(v, int | float) and not isinstance(v, bool):
            text = f"{v:.2f}" if isinstance(v, float) and len(repr(v).split(".")[-1]) < 2 else repr(v)
            raise ValueError(
                f"YAML read it as the number {v!r} (an unquoted 1.30 is the number 1.3); "
                f'write it in quotes, e.g. kubernetes_version: "{text}"'
            )
        return v

    @field_validator("kubernetes_version")
    @classmethod
    def _minor(cls, v: str) -> str:
        match = _K8S_MINOR.match(v)
        supported = ", ".join(SUPPORTED_MINORS)
        if not match:
            example = DEFAULT_KUBERNETES_VERSION
            raise ValueError(f"must be a Kubernetes minor such as '{example}' (in support: {supported})")
        minor = int(match[1])
        if minor < OLDEST_MINOR:
            raise ValueError(
                f"kubeadm {v} cannot read the kubeadm.k8s.io/v1beta4 configuration the nodes use (it reads it from "
                f"1.{OLDEST_MINOR}); use {supported}, the minors in upstream support"
            )
        if minor > NEWEST_MINOR:
            raise ValueError(
                f"{v} is newer than this release knows (1.{OLDEST_MINOR} to 1.{NEWEST_MINOR}); use {supported}, the "
                "minors in upstream support"
            )
        return v

    @property
    def ssm_path(self) -> str:
        """The SSM parameter path that holds this cluster's join data and kubeconfig."""
        return names.ssm_path(self.name)


def _pydantic_problems(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = "unknown key (check its spelling)" if e["type"] == "extra_forbidden" else e["msg"]
        msg = msg.removeprefix("Value error, ")
        problems.append(f"{where}: {msg}")
    return problems


def _cidr_problems(c: ClusterConfig) -> list[str]:
    problems = []
    for key in ("node_subnet_cidr", "public_subnet_cidr"):
        net: ipaddress.IPv4Network = getattr(c, key)
        if not 16 <= net.prefixlen <= 28:
            problems.append(f"{key}: AWS allows a subnet of /16 to /28, got {net}")
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
    if c.admin_cidr is not None:
        problems += _admin_cidr_problems(c.admin_cidr)
    return problems


#: The private address ranges of RFC 1918, section 3.
RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _admin_cidr_problems(net: ipaddress.IPv4Network) -> list[str]:
    """The admin network reaches the Kubernetes API: it names a network of yours (a VPN, an office, a peered VPC),
    never a large part of the internet. Private ranges up to a /8 (all of 10/8), public ones up to a /16."""
    if net.prefixlen < 8:
        return [
            f"admin_cidr: {net} is wider than a /8 ({net.num_addresses:,} addresses): it would open the Kubernetes "
            "API to a large part of the internet; name your network (VPN, office, peered VPC)"
        ]
    if net.prefixlen < 16 and not any(net.subnet_of(private) for private in RFC1918):
        return [
            f"admin_cidr: {net} is a public (not RFC 1918) range wider than a /16 ({net.num_addresses:,} addresses, "
            "most of them other people's); name your network's own public range, a /16 or narrower"
        ]
    return []


def _tag_problems(tags: dict[str, str]) -> list[str]:
    problems = []
    if len(tags) > MAX_TAGS - OWN_TAGS:
        problems.append(
            f"tags: {len(tags)} tags, at most {MAX_TAGS - OWN_TAGS} (AWS allows {MAX_TAGS} per resource and the stack "
            f"adds up to {OWN_TAGS} of its own)"
        )
    for key, value in tags.items():
        if key.lower().startswith("aws:"):
            problems.append(f"tags: key {key!r} starts with 'aws:', which AWS reserves for its own tags")
        if len(key) > MAX_TAG_KEY:
            problems.append(f"tags: key {key!r} is longer than {MAX_TAG_KEY} characters")
        if len(value) > MAX_TAG_VALUE:
            problems.append(f"tags.{key}: the value is longer than {MAX_TAG_VALUE} characters")
        sequences = [seq for seq in _TERRAFORM_SEQUENCES if seq in key or seq in value]
        for seq in sequences:
            problems.append(f"tags.{key}: {seq!r} would be read by Terraform as {_TERRAFORM_SEQUENCES[seq]}; remove it")
        bad = sorted({ch for ch in key + value if not ch.isalnum() and ch not in _TAG_PUNCTUATION})
        if bad and not sequences:
            problems.append(
                f"tags.{key}: {' and '.join(map(repr, bad))} are not allowed in AWS tags "
                "(letters, digits, spaces and + - = . _ : / @)"
            )
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
    worker, control_plane = table.get(c.workers.instance_type), table.get(c.control_plane.instance_type)
    if worker is None or control_plane is None:
        return problems
    if c.workers.rdma is RdmaMode.EFA and worker.max_efa == 0:
        # Both roles share one architecture: suggest what fits the control plane.
        arch = control_plane.arch
        cheapest = ", ".join(
            f"{t.name} ({t.arch}, {t.network_gbps:g} Gb/s, ~{t.usd_per_hour or 0:.2f} USD/h)"
            for t in table.cheapest_efa(4, arch)
        )
        problems.append(
            f"workers.instance_type: {worker.name} has no EFA, so rdma 'efa' cannot work; "
            f"the cheapest types with EFA for {arch} (the control plane's) are {cheapest} (prices are estimates), "
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
    arches = {control_plane.arch, worker.arch}
    if len(arches) > 1:
        problems.append(
            "control_plane.instance_type and workers.instance_type have different architectures "
            f"({', '.join(sorted(arches))}); use one architecture so every node runs the same images"
        )
    return problems


def _backup_reader_problems(c: ClusterConfig) -> list[str]:
    """With secret_readers, only they decrypt what the cluster key protects: a snapshot reader must be one of them (the
    snapshots hold the same secrets)."""
    if not c.secret_readers:
        return []
    return [
        f"etcd_backups.readers: {arn} could not decrypt the snapshots: with secret_readers set, only those decrypt the "
        "cluster key's data; add it to secret_readers as well (the snapshots hold the same secrets)"
        for arn in c.etcd_backups.readers
        if arn not in c.secret_readers
    ]


def _rdma_devices_problems(c: ClusterConfig) -> list[str]:
    """DRA mode is aws-dranet's: EFA devices only (its DeviceClass efa.networking.k8s.aws selects the EFA PCI device,
    its --filter publishes nothing else) on the minors its chart supports."""
    if c.workers.rdma_devices is not RdmaDevices.DRA:
        return []
    problems = []
    if c.workers.rdma is not RdmaMode.EFA:
        problems.append(
            f"workers.rdma_devices: 'dra' serves EFA only (aws-dranet publishes EFA devices and nothing else), but "
            f"workers.rdma is '{c.workers.rdma}'; use rdma_devices 'plugin' (the default) or rdma 'efa'"
        )
    if int(c.kubernetes_version.split(".")[1]) < DRA_OLDEST_MINOR:
        problems.append(
            f"workers.rdma_devices: 'dra' needs Kubernetes 1.{DRA_OLDEST_MINOR} or later (the aws-dranet chart's "
            f"prerequisite), but kubernetes_version is {c.kubernetes_version}; use "
            f"{', '.join(SUPPORTED_MINORS)} or rdma_devices 'plugin'"
        )
    return problems


def validate(config: ClusterConfig, table: InstanceTable) -> list[str]:
    """Every semantic problem of a parsed configuration, in the user's terms.

    Whether the nodes and their prefixes fit in the node subnet is the plan's question (`ipplan.plan_problems`),
    asked of a configuration without these problems.
    """
    return (
        _cidr_problems(config)
        + _tag_problems(config.tags)
        + _placement_problems(config, table)
        + _backup_reader_problems(config)
        + _rdma_devices_problems(config)
    )


def _duplicate_keys(node: yaml.Node | None, path: tuple[str, ...] = ()) -> list[str]:
    """Keys written twice in one mapping, which PyYAML would silently resolve to the last one."""
    problems = []
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            where = ".".join((*path, key))
            if key in seen:
                problems.append(
                    f"line {key_node.start_mark.line + 1}: duplicate key '{where}' (YAML would keep only the last "
                    "and drop the first silently); write each key once"
                )
            seen.add(key)
            problems += _duplicate_keys(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*path, str(i)))
    return problems


def load_config(path: Path, table: InstanceTable) -> ClusterConfig:
    """Parse and validate a cluster.yaml; raise ConfigError listing every problem.

    `ipplan.load_plan` loads and plans a file, and reports what does not fit in the subnet the same way.
    """
    source = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
        duplicates = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        raw = yaml.safe_load(text) or {}
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        problem = f"the file is not UTF-8 text: byte 0x{byte:02x} at offset {exc.start}; save it as UTF-8"
        raise ConfigError(source, [problem]) from exc
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(source, [f"cannot read the configuration: {exc}"]) from exc
    if duplicates:
        raise ConfigError(source, duplicates)
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

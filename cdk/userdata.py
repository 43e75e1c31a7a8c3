"""Render a node's user data from bootstrap/: a cloud-config part and a shell part, MIME multipart, gzip.

The cloud-config writes the bootstrap scripts, the node's settings and a systemd unit; the shell part
starts that unit, which resumes after reboots until the bootstrap completes. Secrets never pass here:
join data and the kubeconfig travel through SSM SecureString parameters.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import jinja2
import yaml
from spider_validate import names

from cdk.config import ClusterConfig, RdmaDevices, RdmaMode
from cdk.constructs.api_endpoint import api_dns_name
from cdk.ec2_types import InstanceTable, InstanceType
from cdk.ipplan import UNDERLAY_INTERFACE, IpPlan, Node

BOOTSTRAP_DIR = Path(__file__).resolve().parents[1] / "bootstrap"
LIB = "/usr/local/lib/spiderpool-rdma"
EC2_USER_DATA_LIMIT = 16 * 1024
K8S_KEY_FINGERPRINT = "DE15B14486CD377B9E876E1A234654DA9A296436"  # pkgs.k8s.io (isv:kubernetes OBS)
EFA_VERSION = "1.51.0"  # the current release (AWS's EFA changelog, docs.aws.amazon.com/AWSEC2/latest/UserGuide)
EFA_KEY_FINGERPRINT = "4E9091BCBB97A96B26B15E59A05480B1DD2D3CCC"  # AWS EFA installer signing key
# The kubelet's ECR credential provider (kubernetes/cloud-provider-aws): its version and each architecture's
# SHA-256 as artifacts.k8s.io serves them, written by scripts/pin_ecr_credential_provider.py from kubernetes/k8s.io's
# promotion manifest. It speaks the kubelet's credentialprovider.kubelet.k8s.io/v1, GA since Kubernetes 1.26, so one
# release serves every supported minor (kops downloads v1.31.7 for every Kubernetes version it deploys).
ECR_PROVIDER_FILE = Path(__file__).resolve().parent / "data" / "ecr_credential_provider.json"
ECR_PROVIDER_ARCHES = ("amd64", "arm64")
CREDENTIAL_PROVIDER_CONFIG = "/etc/kubernetes/image-credential-provider-config.yaml"
CREDENTIAL_PROVIDER_BIN_DIR = "/usr/local/lib/kubelet/credential-providers"
IMDS_GUARD = "/etc/spiderpool-rdma/imds-guard.nft"  # the nftables rule that keeps pods off the instance metadata
# Pod Security Admission's configuration, on every control plane: joining ones run the same API server manifest.
ADMISSION_CONFIG = "/etc/kubernetes/admission/admission-configuration.yaml"
AUDIT_POLICY = "/etc/kubernetes/audit/audit-policy.yaml"  # bootstrap/audit-policy.yaml, every control plane
# Made on control-plane-0 (init.sh), given to the others through SSM (control-plane.sh, join.sh): the same on each.
ENCRYPTION_CONFIG = "/etc/kubernetes/encryption/encryption-configuration.yaml"
AUDIT_LOG_DIR = "/var/log/kubernetes/audit"
#: A control plane renews its certificates once one expires within this many days, a week earlier on each further one
#: (control-plane-1 at 83 days, control-plane-2 at 76): never two control planes restarting on the same day.
CERT_RENEW_DAYS, CERT_RENEW_STAGGER_DAYS = 90, 7
#: The API server rotates its audit log (--audit-log-*): a new file at 100 MB, gzipped, each kept 90 days, at most 20
#: (2 GB before compression) on the control plane's root volume.
AUDIT_LOG = {"maxsize": 100, "maxbackup": 20, "maxage": 90}
HUGEPAGES = 5128  # 2 MiB pages; the amount the EFA documentation sets for libfabric
JOIN_TIMEOUT_SECONDS = 3600  # waiting for the join parameter and retrying a failed join, together
INSTALL_SECONDS = 2400  # packages, and the EFA installer (about 20 minutes)
#: One kubeadm join at most, ended by `timeout` (join.sh) and then retried: kubeadm's own waits one after another,
#: at v1beta4's default timeouts, are 14 min for a worker (discovery, kubelet health, TLS bootstrap) and 24 min for a
#: control plane (also its etcd member's addition, promotion and health, the control-plane label, its components'
#: health): tests/bootstrap/test_join_retries.py. The rest leaves room for a control plane's image pulls.
JOIN_ATTEMPT_SECONDS = 1800
JOIN_PATTERN = (
    r"^kubeadm join ([a-z0-9.-]+:[0-9]+) --token ([a-z0-9]{6}\.[a-z0-9]{16}) "
    r"--discovery-token-ca-cert-hash (sha256:[a-f0-9]{64})"
    r"( --control-plane --certificate-key ([a-f0-9]{64}))?[[:space:]]*$"
)
# cloud-init's EC2 datasource would put the ENI's secondary addresses on the host (and newer releases may
# do the same for prefixes): the pod IPs must stay off the host. Read at boot, so it holds from the
# second boot on; bootstrap.sh removes any pod address from the host at every run for the first boot.
CLOUD_CFG = {"datasource": {"Ec2": {"apply_full_imds_network_config": False}}}

#: A line that is only a comment (shell, YAML, nftables and systemd units all comment with `#`), but no shebang and no
#: shellcheck directive: the nodes get the files without them, which leaves room under EC2's 16 KB; the repository's
#: files are the documented source.
_COMMENT_LINE = re.compile(r"^[ \t]*#(?!!| shellcheck )[^\n]*\n", re.MULTILINE)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(BOOTSTRAP_DIR),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
_env.filters["shquote"] = lambda v: shlex.quote(str(v))


@dataclass(frozen=True)
class UserData:
    cloud_config: str
    shell: str
    scripts: dict[str, str]  # path on the node -> content, for linting

    def boundary(self) -> str:
        """Derived from the parts: a random one (Python's default) changes the user data, so the instance, at every
        synth; a fixed one could occur in a part. A digest of the parts is stable and never occurs in them."""
        digest = hashlib.sha256((self.cloud_config + "\0" + self.shell).encode()).hexdigest()[:32]
        return f"==spiderpool-rdma-{digest}=="

    def mime(self) -> bytes:
        # us-ascii parts travel as 7bit text; utf-8 would base64 them, and base64 compresses badly.
        msg = MIMEMultipart(boundary=self.boundary())
        msg.attach(MIMEText(self.cloud_config, "cloud-config", "us-ascii"))
        msg.attach(MIMEText(self.shell, "x-shellscript", "us-ascii"))
        return msg.as_bytes()

    def gzipped(self) -> bytes:
        return gzip.compress(self.mime(), compresslevel=9, mtime=0)

    def base64(self) -> str:
        data = self.gzipped()
        assert len(data) <= EC2_USER_DATA_LIMIT, f"user data is {len(data)} bytes, EC2 allows {EC2_USER_DATA_LIMIT}"
        return base64.b64encode(data).decode()


def node_role(node: Node) -> Literal["worker", "control-plane-init", "control-plane-join"]:
    """What its bootstrap does: join as a worker, init the cluster (control-plane-0), join as a control plane."""
    if node.role == "worker":
        return "worker"
    return "control-plane-init" if node.index == 0 else "control-plane-join"


@functools.cache
def _instance_table() -> InstanceTable:
    return InstanceTable.load()


@functools.cache
def ecr_provider() -> dict[str, Any]:
    """The pinned release of the ECR credential provider: {"version", "source", "sha256": {arch: digest}}."""
    return dict(json.loads(ECR_PROVIDER_FILE.read_text()))


def _instance_type(config: ClusterConfig, node: Node) -> InstanceType:
    spec = config.workers if node.role == "worker" else config.control_plane
    itype = _instance_table().get(spec.instance_type)
    assert itype is not None, "validated by config.load_config"
    return itype


def node_labels(config: ClusterConfig, node: Node) -> str:
    spec = config.workers if node.role == "worker" else config.control_plane
    rdma = config.workers.rdma.value if node.role == "worker" else RdmaMode.NONE.value
    labels = [
        f"node.kubernetes.io/instance-type={spec.instance_type}",
        f"topology.kubernetes.io/region={config.region}",
        f"topology.kubernetes.io/zone={config.availability_zone}",
        f"{names.ROLE_LABEL}={node.role}",
        f"{names.RDMA_LABEL}={rdma}",  # the chart places the EFA device plugin by it
    ]
    itype = _instance_type(config, node)
    if itype.network_gbps > 0:  # the validator's RDMA line rate
        labels.append(f"{names.NETWORK_GBPS_LABEL}={itype.network_gbps:g}")
    return ",".join(labels)


def _context(config: ClusterConfig, plan: IpPlan, node: Node) -> dict[str, object]:
    return {
        "config": config,
        "plan": plan,
        "node": node,
        "role": node_role(node),
        "rdma": config.workers.rdma.value if node.role == "worker" else RdmaMode.NONE.value,
        # How pods get the RDMA device: with "dra" the node's containerd enables NRI for aws-dranet (common.sh).
        "rdma_devices": (config.workers.rdma_devices if node.role == "worker" else RdmaDevices.PLUGIN).value,
        "node_labels": node_labels(config, node),
        "api_dns_name": api_dns_name(config.name),
        "k8s_key_fingerprint": K8S_KEY_FINGERPRINT,
        "efa_version": EFA_VERSION,
        "efa_key_fingerprint": EFA_KEY_FINGERPRINT,
        "hugepages": HUGEPAGES,
        "underlay_if": UNDERLAY_INTERFACE,
        "kms_alias": names.kms_alias(config.name),  # as SSM holds it (constructs/secrets.py)
        "join_timeout": JOIN_TIMEOUT_SECONDS,
        "install_seconds": INSTALL_SECONDS,
        "ecr_provider_version": ecr_provider()["version"],
        "ecr_provider_sha256": ecr_provider()["sha256"][_instance_type(config, node).arch],
        "admission_config": ADMISSION_CONFIG,
        "admission_config_dir": str(PurePosixPath(ADMISSION_CONFIG).parent),
        "audit_policy": AUDIT_POLICY,
        "audit_policy_dir": str(PurePosixPath(AUDIT_POLICY).parent),
        "audit_log_dir": AUDIT_LOG_DIR,
        "audit_log": AUDIT_LOG,
        "encryption_config": ENCRYPTION_CONFIG,
        "cert_renew_days": CERT_RENEW_DAYS - CERT_RENEW_STAGGER_DAYS * node.index if node.role != "worker" else 0,
        "encryption_config_dir": str(PurePosixPath(ENCRYPTION_CONFIG).parent),
        "credential_provider_config": CREDENTIAL_PROVIDER_CONFIG,
        "credential_provider_bin_dir": CREDENTIAL_PROVIDER_BIN_DIR,
        "join_attempt_seconds": JOIN_ATTEMPT_SECONDS,
        "join_pattern": JOIN_PATTERN,
        "imds_guard": IMDS_GUARD,
    }


def kubeadm_init_config(config: ClusterConfig, plan: IpPlan, node: Node) -> str:
    return _COMMENT_LINE.sub("", _env.get_template("kubeadm-init.yaml.j2").render(_context(config, plan, node)))


def node_files(config: ClusterConfig, plan: IpPlan, node: Node) -> dict[str, str]:
    """Every file the cloud-config writes on the node, by path."""
    ctx = _context(config, plan, node)
    rdma = ctx["rdma"]
    role_script = "init.sh" if ctx["role"] == "control-plane-init" else "join.sh"

    def read(name: str) -> str:
        return _COMMENT_LINE.sub("", (BOOTSTRAP_DIR / name).read_text())

    def template(name: str) -> str:
        return _COMMENT_LINE.sub("", _env.get_template(name).render(ctx))

    files = {
        f"{LIB}/bootstrap.sh": read("bootstrap.sh"),
        f"{LIB}/lib.sh": read("lib.sh"),
        f"{LIB}/common.sh": read("common.sh"),
        f"{LIB}/rdma-tools.sh": read("rdma-tools.sh"),
        f"{LIB}/rdma.sh": read(f"rdma-{rdma}.sh"),
        f"{LIB}/role.sh": read(role_script),
        "/etc/spiderpool-rdma/node.env": template("node.env.j2"),
        "/etc/systemd/system/spiderpool-rdma-bootstrap.service": template("spiderpool-rdma-bootstrap.service.j2"),
        "/etc/cloud/cloud.cfg.d/99-spiderpool-rdma.cfg": yaml.safe_dump(CLOUD_CFG),
        IMDS_GUARD: template("imds-guard.nft.j2"),
        "/etc/systemd/system/spiderpool-rdma-imds-guard.service": template("spiderpool-rdma-imds-guard.service.j2"),
        CREDENTIAL_PROVIDER_CONFIG: read("image-credential-provider-config.yaml"),
    }
    if node.role != "worker":  # what every control plane runs (control-plane.sh), and its timer
        files[ADMISSION_CONFIG] = read("admission-configuration.yaml")
        files[AUDIT_POLICY] = read("audit-policy.yaml")
        files[f"{LIB}/control-plane.sh"] = read("control-plane.sh")
        # The hourly join refresh, the daily certificate check, the hourly etcd backup, the answer to a replaced
        # control-plane-0 (every minute): a script, a service, a timer.
        for script, unit in (
            ("refresh-join", "join-refresh"),
            ("renew-certificates", "renew-certificates"),
            ("etcd-backup", "etcd-backup"),
            ("replace-member", "member-replacement"),
        ):
            files[f"{LIB}/{script}.sh"] = read(f"{script}.sh")
            for suffix in ("service", "timer"):
                files[f"/etc/systemd/system/spiderpool-rdma-{unit}.{suffix}"] = read(f"spiderpool-rdma-{unit}.{suffix}")
        files[f"{LIB}/etcd.sh"] = read("etcd.sh")
    if ctx["role"] == "control-plane-init":
        files["/etc/spiderpool-rdma/kubeadm-init.yaml"] = kubeadm_init_config(config, plan, node)
        files[f"{LIB}/join.sh"] = read("join.sh")  # a replacement of control-plane-0 in HA joins (init.sh)
    return files


def render(config: ClusterConfig, plan: IpPlan, node: Node) -> UserData:
    files = node_files(config, plan, node)
    executable = {
        f"{LIB}/{s}.sh" for s in ("bootstrap", "refresh-join", "renew-certificates", "etcd-backup", "replace-member")
    }
    private = {"/etc/spiderpool-rdma/node.env", "/etc/spiderpool-rdma/kubeadm-init.yaml"}
    cloud_config = {
        "hostname": node.name,
        "preserve_hostname": False,
        "manage_etc_hosts": True,
        "write_files": [
            {
                "path": path,
                "content": content,
                "owner": "root:root",
                "permissions": "0755" if path in executable else "0600" if path in private else "0644",
            }
            for path, content in files.items()
        ],
    }
    scripts = {path: text for path, text in files.items() if path.endswith((".sh", ".env"))}
    shell = (BOOTSTRAP_DIR / "start.sh").read_text()
    return UserData("#cloud-config\n" + yaml.safe_dump(cloud_config, sort_keys=False, width=1000), shell, scripts)


def user_data_base64(config: ClusterConfig, plan: IpPlan, node: Node) -> str:
    return render(config, plan, node).base64()

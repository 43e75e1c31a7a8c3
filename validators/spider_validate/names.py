"""The names that cross the project's layers, each in one place: who writes it and who reads it is beside it.

The stack (`cdk/`) writes most of them and the nodes, the chart and the validator read them. Standard library only
and nothing else of `spider_validate`: `cdk` imports this module and no other part of the validator. What cannot
import Python writes the literal and a test compares it with this module: the bootstrap's shell scripts
(`tests/bootstrap/test_bootstrap_names.py`) and the chart's templates, as rendered (`tests/charts/test_names.py`).
"""

from __future__ import annotations

from pathlib import Path

# The validator's table of EC2 line rates, shipped in its package: written by cdk/refresh_instance_types.py and
# scripts/gen_instance_data.py (cdk/ec2_types.py network_file), read by spider_validate/probes/linerate.py.
INSTANCE_NETWORK_FILE = Path(__file__).parent / "data" / "instance_network.json"

# AWS tags. The stack tags every resource with the cluster (cdk/stack.py, the provider's default tags) and each
# instance with its node and role (cdk/constructs/nodes.py); `spider-validate kubeconfig` finds control-plane-0 by
# the first two (validators/spider_validate/cluster/kubeconfig.py).
CLUSTER_TAG = "spiderpool-rdma/cluster"
NODE_TAG = "spiderpool-rdma/node"  # the node's name (cdk/ipplan.py node_name)
ROLE_TAG = "spiderpool-rdma/role"
FIRST_CONTROL_PLANE = "control-plane-0"  # the node that runs kubeadm init and publishes the join data and kubeconfig

# SSM parameters under the cluster's path. cdk/constructs/secrets.py creates them with PLACEHOLDER and
# cdk/constructs/iam.py grants them per role; the control planes overwrite them (bootstrap/control-plane.sh).
JOIN_WORKER = "join-worker"  # read by workers (bootstrap/join.sh)
# Read by the other control planes (bootstrap/join.sh); published only while control planes are missing.
JOIN_CONTROL_PLANE = "join-control-plane"
KUBECONFIG = "kubeconfig"  # read by `spider-validate kubeconfig`
# The API servers' EncryptionConfiguration (the key of Secrets in etcd), read by a control plane that joins; published
# only while control planes are missing, like JOIN_CONTROL_PLANE.
ENCRYPTION_CONFIG = "encryption-config"
# The exact Kubernetes version control-plane-0 installed (vX.Y.Z); every later node installs it (bootstrap/common.sh).
KUBERNETES_VERSION = "kubernetes-version"
# The name of the S3 bucket of the etcd snapshots, written by Terraform (cdk/constructs/backups.py), read by the control
# planes (bootstrap/etcd-backup.sh, etcd-restore.sh).
ETCD_BACKUP_BUCKET = "etcd-backup-bucket"
# A replaced control-plane-0's request that its dead etcd member leave etcd before it joins the live control planes,
# and their answer (bootstrap/init.sh asks, bootstrap/replace-member.sh answers): written only by control planes.
ETCD_MEMBER_REPLACEMENT = "etcd-member-replacement"
# The value until a control plane publishes, and once it withdrew a credential; `spider-validate kubeconfig` names it.
PLACEHOLDER = "pending"


def ssm_path(cluster: str) -> str:
    """The SSM path of a cluster's parameters (the stack's; the nodes get it as SPR_SSM_PATH, bootstrap/node.env.j2)."""
    return f"/spiderpool-rdma/{cluster}"


def ssm_parameter(cluster: str, parameter: str) -> str:
    """The full name of one of the cluster's parameters (JOIN_WORKER, KUBECONFIG, ...)."""
    return f"{ssm_path(cluster)}/{parameter}"


def kms_alias(cluster: str) -> str:
    """The alias of the cluster's KMS key: cdk/constructs/secrets.py creates it and gives it to SSM as KeyId, the
    nodes encrypt with it (SPR_KMS_KEY, bootstrap/node.env.j2), `spider-validate kubeconfig` names it when denied."""
    return f"alias/spiderpool-rdma-{cluster}"


# Node labels, set by the kubelet from the user data's --node-labels (cdk/userdata.py).
ROLE_LABEL = "spiderpool-rdma/role"  # worker or control-plane: for people and selectors
RDMA_LABEL = "spiderpool-rdma/rdma"  # the RDMA mode; the chart places its device plugins by it (values-*.yaml)
NETWORK_GBPS_LABEL = "spiderpool-rdma/network-gbps"  # the line rate; read by spider_validate/probes/linerate.py

# Labels the chart writes (templates/_network.tpl).
ATTACHMENT_LABEL = "spiderpool-rdma/attachment"  # on the SpiderMultusConfig; discovery.py picks the network by it
APP_LABEL = "spiderpool-rdma/app"  # on each sample app's objects; read by the apps suite and the helm test
GENERATION_LABEL = "spiderpool-rdma/generation"  # what rendered an applied object; the apply job prunes by it


def install_hint(extra: str) -> str:
    """How to add one of spider-validate's extras: from the repository, because the distribution is not published
    (a PyPI name anyone could register is no install hint)."""
    return f"pip install './validators[{extra}]' (from the repository's root; spider-validate is not on PyPI)"

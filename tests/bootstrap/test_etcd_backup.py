"""etcd's backup and restore on the control planes, run as their units and SSM run them, against the stand-ins of
ctr, etcdctl, etcdutl, kubeadm and the AWS CLI (tests/bootstrap/etcd_stub.py), each as strict as its upstream."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from spider_validate import names

from cdk.config import ClusterConfig
from cdk.userdata import BOOTSTRAP_DIR as BOOTSTRAP
from cdk.userdata import ENCRYPTION_CONFIG
from tests.bootstrap import etcd_stub
from tests.bootstrap.sandbox import LIB, Keys, Sandbox, make_sandbox

pytestmark = pytest.mark.slow  # the bootstrap sandbox
ONE = ClusterConfig.model_validate({"name": "backups", "workers": {"instance_type": "m7i.xlarge", "rdma": "none"}})
BUCKET = "backups-etcd-20261207000000000000000001"


def cluster(tmp_path: Path, keys: Keys) -> tuple[Sandbox, Sandbox]:
    """control-plane-0 and worker-0 bootstrapped; the bucket's name in SSM, as Terraform writes it."""
    cp = make_sandbox(tmp_path / "control-plane-0", ONE, "control-plane-0", keys)
    cp.cluster.ssm(names.ETCD_BACKUP_BUCKET).write_text(BUCKET + "\n")
    assert cp.run().returncode == 0, cp.log()
    worker = make_sandbox(tmp_path / "worker-0", ONE, "worker-0", keys, cp.cluster.path)
    assert worker.run().returncode == 0, worker.log()
    return cp, worker


def backups(sb: Sandbox) -> list[Path]:
    return sorted((sb.cluster.path / "s3" / BUCKET).rglob("*.tar.gz"))


def test_every_control_plane_enables_the_hourly_backup(tmp_path: Path, keys: Keys) -> None:
    cp, _ = cluster(tmp_path, keys)
    assert "systemctl enable --now spiderpool-rdma-etcd-backup.timer" in cp.calls()
    timer = (cp.root / "etc/systemd/system/spiderpool-rdma-etcd-backup.timer").read_text()
    assert "OnCalendar=hourly" in timer and "Persistent=true" in timer


def test_a_backup_is_the_snapshot_and_the_certificate_authorities_checked_and_uploaded(
    tmp_path: Path, keys: Keys
) -> None:
    cp, _ = cluster(tmp_path, keys)
    cp.reset_calls()
    proc = cp.run(f"{LIB}/etcd-backup.sh")
    assert proc.returncode == 0, proc.stderr + cp.log()
    calls = cp.calls()
    image = etcd_stub.etcd_image(36)
    runs = [c for c in calls if c.startswith("ctr ")]
    assert len(runs) == 2 and all(c.startswith("ctr --namespace k8s.io run --rm --net-host --mount") for c in runs)
    assert f"{image} spiderpool-rdma-etcd-backup-" in runs[0] and runs[0].endswith("snapshot save /backup/snapshot.db")
    assert "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt" in runs[0]
    assert runs[1].endswith("/usr/local/bin/etcdutl --write-out=json snapshot status /backup/snapshot.db")
    (archive,) = backups(cp)
    assert archive.relative_to(cp.cluster.path / "s3" / BUCKET).parts[:2] == ("etcd", "control-plane-0")
    reads = [c.split("--name ")[1].split()[0] for c in calls if c.startswith("aws ssm get-parameter")]
    assert reads == [names.ssm_parameter(ONE.name, names.ETCD_BACKUP_BUCKET)]  # what the stack creates and grants
    upload = next(c for c in calls if c.startswith("aws s3 cp"))
    assert upload.endswith(f"s3://{BUCKET}/etcd/control-plane-0/{archive.name}")
    with tarfile.open(archive) as tar:
        members = {m.name.removeprefix("./") for m in tar.getmembers() if m.isfile()}
        tar.extractall(tmp_path / "archive", filter="data")
    assert {"snapshot.db", "status.json", "etcd-image", "SHA256SUMS", "pki/ca.key", "pki/sa.key"} <= members
    assert "encryption-config.yaml" in members
    check = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=tmp_path / "archive")
    assert check.returncode == 0
    assert (tmp_path / "archive/etcd-image").read_text().strip() == image
    assert "worker-0" in json.loads((tmp_path / "archive/snapshot.db").read_text()[:-32])["keyspace"]["nodes.json"]
    assert not (cp.root / "var/lib/spiderpool-rdma/etcd-backup").exists()  # the secrets do not stay on the node


def test_a_backup_on_a_node_without_etcd_fails_and_uploads_nothing(tmp_path: Path, keys: Keys) -> None:
    cp, _ = cluster(tmp_path, keys)
    (cp.root / "etc/kubernetes/manifests/etcd.yaml").unlink()
    proc = cp.run(f"{LIB}/etcd-backup.sh")
    assert proc.returncode != 0 and not backups(cp)
    assert "no etcd image in" in (cp.root / "var/log/spiderpool-rdma/etcd-backup.log").read_text()


def restore_script(sb: Sandbox) -> str:
    """etcd-restore.sh where SSM Run Command puts the script it is sent (ops/ssm.py), beside the node's library."""
    target = sb.root / "var/lib/amazon/ssm/etcd-restore.sh"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(BOOTSTRAP / "etcd-restore.sh", target)
    target.chmod(0o700)
    return str(target.relative_to(sb.root))


def test_a_lost_control_plane_is_rebuilt_from_the_newest_backup(tmp_path: Path, keys: Keys) -> None:
    """The keyspace (nodes, tokens) and the CAs come back; kubeadm init keeps both; no second CA."""
    cp, _ = cluster(tmp_path, keys)
    assert cp.run(f"{LIB}/etcd-backup.sh").returncode == 0
    ca = (cp.root / "etc/kubernetes/pki/ca.key").read_text()
    encryption = cp.root / ENCRYPTION_CONFIG.lstrip("/")
    key = encryption.read_text()
    for name in etcd_stub.KEYSPACE:  # the instance and its disk are gone: etcd's data with them
        (cp.cluster.path / name).unlink(missing_ok=True)
    etcd_stub.stop_api(cp.cluster.path, "control-plane-0")
    new = make_sandbox(tmp_path / "replacement", ONE, "control-plane-0", keys, cp.cluster.path)
    assert new.run().returncode == 1  # the cluster exists: it stops before kubeadm init, saying how to restore
    assert "spiderpool-rdma restore --cluster backups --region us-east-1" in new.log()
    assert not any(c.startswith("kubeadm init") for c in new.calls())
    new.reset_calls()
    proc = new.run(restore_script(new), SPR_LIB=str(new.root / LIB))
    assert proc.returncode == 0, proc.stderr + (new.root / "var/log/spiderpool-rdma/etcd-restore.log").read_text()
    calls = new.calls()
    restore = next(c for c in calls if "etcdutl snapshot restore" in c)
    assert "--name control-plane-0 --initial-cluster control-plane-0=https://" in restore
    assert "--bump-revision 1000000000 --mark-compacted" in restore
    assert calls[-2:] == [
        "systemctl reset-failed spiderpool-rdma-bootstrap.service",
        "systemctl start --no-block spiderpool-rdma-bootstrap.service",
    ]
    proc = new.run()
    assert proc.returncode == 0, proc.stderr + new.log()
    init = next(c for c in new.calls() if c.startswith("kubeadm init --config"))
    assert init.endswith("--ignore-preflight-errors=DirAvailable--var-lib-etcd")
    assert (new.root / "etc/kubernetes/pki/ca.key").read_text() == ca
    assert (new.root / ENCRYPTION_CONFIG.lstrip("/")).read_text() == key  # the Secrets in etcd stay readable
    assert "worker-0" in new.cluster.nodes()


def test_kubeadm_init_refuses_the_restored_data_without_the_preflight_exception(tmp_path: Path, keys: Keys) -> None:
    """Control for the stand-in: kubeadm's DirAvailable--var-lib-etcd check (cmd/kubeadm/app/preflight/checks.go)."""
    cp = make_sandbox(tmp_path / "cp", ONE, "control-plane-0", keys)
    (cp.root / "var/lib/etcd/member").mkdir(parents=True)
    proc = cp.run()
    assert proc.returncode == 1
    assert "[ERROR DirAvailable--var-lib-etcd]" in (cp.root / "var/log/spiderpool-rdma/kubeadm-init.log").read_text()


# --- the stand-ins' own rules, from etcd's and containerd's code --------------------------------------------------


def run_tool(root: Path, cluster: Path, *command: str, mounts: tuple[str, ...] = ()) -> int:
    args = ["--namespace", "k8s.io", "run", "--rm", "--net-host"]
    for mount in mounts:
        args += ["--mount", mount]
    return etcd_stub.ctr([*args, etcd_stub.etcd_image(36), "t", *command], root, cluster)


@pytest.fixture
def node(tmp_path: Path) -> tuple[Path, Path]:
    root, cluster_dir = tmp_path / "root", tmp_path / "cluster"
    cluster_dir.mkdir()
    etcd_stub.init_control_plane(root, cluster_dir, "control-plane-0", 36)
    return root, cluster_dir


def test_etcdutl_restore_refuses_what_etcd_refuses(node: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root, cluster_dir = node
    mount = ("type=bind,src=/var/lib,dst=/var/lib,options=rbind:rw",)
    (root / "var/lib/snap").mkdir(parents=True)
    pki = ("type=bind,src=/etc/kubernetes/pki/etcd,dst=/etc/kubernetes/pki/etcd,options=rbind:ro",)
    etcd = "/etc/kubernetes/pki/etcd"
    save = [
        "/usr/local/bin/etcdctl",
        "--endpoints=https://127.0.0.1:2379",
        f"--cacert={etcd}/ca.crt",
        f"--cert={etcd}/healthcheck-client.crt",
        f"--key={etcd}/healthcheck-client.key",
        "snapshot",
        "save",
        "/var/lib/snap/db",
    ]
    assert run_tool(root, cluster_dir, *save, mounts=mount + pki) == 0
    restore = ["/usr/local/bin/etcdutl", "snapshot", "restore", "/var/lib/snap/db", "--data-dir", "/var/lib/new"]
    member = ["--name", "m", "--initial-cluster", "m=https://10.0.0.1:2380", "--initial-advertise-peer-urls"]
    cases = {
        "--mark-compacted required if --revision-bump > 0": [*member, "https://10.0.0.1:2380", "--bump-revision", "5"],
        "couldn't find local name": ["--name", "x", *member[2:], "https://10.0.0.1:2380"],
        "missing from --initial-advertise-peer-urls": [*member, "https://10.0.0.2:2380"],
    }
    for message, extra in cases.items():
        assert run_tool(root, cluster_dir, *restore, *extra, mounts=mount) == 1
        assert message in capsys.readouterr().err
    (root / "var/lib/new/member").mkdir(parents=True)
    assert run_tool(root, cluster_dir, *restore, *member, "https://10.0.0.1:2380", mounts=mount) == 1
    assert "not empty or could not be read" in capsys.readouterr().err
    shutil.rmtree(root / "var/lib/new")
    db = root / "var/lib/snap/db"
    db.write_text(db.read_text().replace('"revision": 100', '"revision": 101'))  # its sha256 no longer matches
    assert run_tool(root, cluster_dir, *restore, *member, "https://10.0.0.1:2380", mounts=mount) == 1
    assert "expected sha256" in capsys.readouterr().err


def test_ctr_and_etcdctl_refuse_what_they_refuse(node: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root, cluster_dir = node
    image = etcd_stub.etcd_image(36)
    # options after the image are the container's arguments, not ctr's (run.go, SkipArgReorder)
    assert etcd_stub.ctr(
        ["--namespace", "k8s.io", "run", image, "t", "--rm", "/usr/local/bin/etcdctl"], root, cluster_dir
    )
    assert 'exec: "--rm"' in capsys.readouterr().err
    # the kubelet's images live in containerd's k8s.io namespace only
    assert etcd_stub.ctr(["run", "--rm", image, "t", "/usr/local/bin/etcdctl"], root, cluster_dir) == 1
    assert "not found" in capsys.readouterr().err
    # etcd listens on the host's 127.0.0.1: a container in its own network namespace does not reach it
    args = ["--namespace", "k8s.io", "run", "--rm", image, "t", "/usr/local/bin/etcdctl"]
    assert etcd_stub.ctr([*args, "--endpoints=https://127.0.0.1:2379", "snapshot", "save", "/x"], root, cluster_dir)
    assert "context deadline exceeded" in capsys.readouterr().err
    # one endpoint for a snapshot (client/v3/snapshot/v3_snapshot.go)
    two = "--endpoints=https://127.0.0.1:2379,https://10.0.0.2:2379"
    assert run_tool(root, cluster_dir, "/usr/local/bin/etcdctl", two, "snapshot", "save", "/x") == 1
    assert "not multiple" in capsys.readouterr().err
    assert etcd_stub.ctr([*args[:-2], "bad id!", "/usr/local/bin/etcdctl"], root, cluster_dir) == 1
    assert "identifier" in capsys.readouterr().err


def test_the_archive_layout_is_what_the_restore_reads() -> None:
    """The CA files the backup copies are the ones kubeadm's certs phase writes, and the restore reads the same list."""
    text = (BOOTSTRAP / "etcd.sh").read_text()
    listed = text.split("CA_FILES=(", 1)[1].split(")", 1)[0].split()
    assert {f.removeprefix("pki/") for f in listed} <= set(etcd_stub.PKI)

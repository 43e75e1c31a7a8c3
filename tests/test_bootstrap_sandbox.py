"""The bootstrap scripts run for real, with every system command replaced by a recording stub on PATH."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cdk import userdata
from cdk.config import ClusterConfig
from cdk.ipplan import make_plan

STUB = Path(__file__).resolve().parent / "bootstrap" / "stub.py"
STUBBED = [
    "apt-get",
    "apt-mark",
    "modprobe",
    "sysctl",
    "systemctl",
    "containerd",
    "curl",
    "gpg",
    "kubeadm",
    "aws",
    "snap",
    "ip",
    "tar",
    "fi_info",
    "rdma",
    "sleep",
]
#: Calls that only read: a finished node may make these and nothing else.
READ_ONLY = ("ip -4 -o addr show",)


@dataclass
class Sandbox:
    root: Path
    stubs: Path
    env: dict[str, str]

    def run(self, **extra_env: str) -> subprocess.CompletedProcess[str]:
        script = self.root / "usr/local/lib/spiderpool-rdma/bootstrap.sh"
        return subprocess.run(
            ["bash", str(script)], env={**self.env, **extra_env}, capture_output=True, text=True, timeout=120
        )

    def calls(self) -> list[str]:
        log = self.stubs / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def reset_calls(self) -> None:
        (self.stubs / "calls.log").unlink(missing_ok=True)

    def log(self) -> str:
        return (self.root / "var/log/spiderpool-rdma/bootstrap.log").read_text()

    def status(self) -> str:
        return (self.root / "var/lib/spiderpool-rdma/status").read_text().strip()

    def set_env(self, key: str, value: str) -> None:
        env_file = self.root / "etc/spiderpool-rdma/node.env"
        lines = [f"{key}={value}" if line.startswith(f"{key}=") else line for line in env_file.read_text().splitlines()]
        env_file.write_text("\n".join(lines) + "\n")


def make_sandbox(tmp_path: Path, config: ClusterConfig, node_name: str) -> Sandbox:
    plan = make_plan(config)
    node = next(n for n in plan.nodes if n.name == node_name)
    root, stubs = tmp_path / "root", tmp_path / "stubs"
    for path, content in userdata.node_files(config, plan, node).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    stubs.mkdir()
    for name in STUBBED:
        (stubs / name).symlink_to(STUB)
    env = {
        "PATH": f"{stubs}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SPR_ROOT": str(root),
        "STUB_DIR": str(stubs),
        "STUB_GPG_FPR_K8S": userdata.K8S_KEY_FINGERPRINT,
        "STUB_GPG_FPR_EFA": userdata.EFA_KEY_FINGERPRINT,
        "TMPDIR": str(tmp_path),
    }
    return Sandbox(root, stubs, env)


def index_of(calls: list[str], prefix: str) -> int:
    return next(i for i, c in enumerate(calls) if c.startswith(prefix))


EFA = ClusterConfig()
SOFTROCE = ClusterConfig.model_validate({"workers": {"instance_type": "m7i.xlarge", "rdma": "softroce"}})
HA = ClusterConfig.model_validate({"control_plane": {"count": 3}})


def test_control_plane_initializes_then_publishes_join_and_kubeconfig(tmp_path: Path) -> None:
    sb = make_sandbox(tmp_path, HA, "control-plane-0")
    proc = sb.run()
    assert proc.returncode == 0, proc.stderr
    calls = sb.calls()
    order = [
        "modprobe overlay",
        "apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends containerd",
        "systemctl restart containerd",
        "curl -fsSL -o",
        "apt-mark hold kubelet kubeadm kubectl",
        "kubeadm init --config",
        "kubeadm token create",
        "aws ssm put-parameter",
        "kubeadm init phase upload-certs",
    ]
    positions = [index_of(calls, p) for p in order]
    assert positions == sorted(positions), calls
    assert "--upload-certs" in next(c for c in calls if c.startswith("kubeadm init --config"))
    assert (sb.stubs / "ssm-join-worker").read_text().startswith("kubeadm join api.test.internal:6443 --token ")
    assert "--control-plane --certificate-key " + "b" * 64 in (sb.stubs / "ssm-join-control-plane").read_text()
    puts = [c for c in calls if c.startswith("aws ssm put-parameter")]
    assert any("/kubeconfig" in c and "--tier Advanced" in c for c in puts)
    assert all("--type SecureString" in c and "--value file://" in c for c in puts)  # never on the command line
    assert sb.status() == "ready"


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    sb = make_sandbox(tmp_path, EFA, "worker-0")
    assert sb.run().returncode == 0
    sb.reset_calls()
    proc = sb.run()
    assert proc.returncode == 0, proc.stderr
    assert sb.calls() == [], sb.calls()  # the unit's condition stops earlier on a node; the script itself too
    (sb.root / "var/lib/spiderpool-rdma/done/bootstrap").unlink()  # even with every step marker alone:
    assert sb.run().returncode == 0
    assert all(c.startswith(READ_ONLY) for c in sb.calls()), sb.calls()


def test_efa_worker_verifies_the_installer_before_running_it_and_joins_last(tmp_path: Path) -> None:
    sb = make_sandbox(tmp_path, EFA, "worker-1")
    proc = sb.run()
    assert proc.returncode == 0, proc.stderr
    calls = sb.calls()
    verify = next(i for i, c in enumerate(calls) if "--verify" in c)
    assert verify < index_of(calls, "tar -xzf") < index_of(calls, "efa_installer.sh -y")
    assert index_of(calls, "efa_installer.sh -y") < index_of(calls, "fi_info -p efa") < index_of(calls, "kubeadm join")
    assert index_of(calls, "aws ssm get-parameter") < index_of(calls, "kubeadm join --config")
    join_config = (sb.root / "etc/spiderpool-rdma/kubeadm-join.yaml").read_text()
    assert 'caCertHashes: ["sha256:' + "a" * 64 in join_config and 'name: "worker-1"' in join_config
    assert "node.kubernetes.io/instance-type=c5n.9xlarge" in join_config
    sysctl = (sb.root / "etc/sysctl.d/91-efa.conf").read_text()
    assert "kernel.yama.ptrace_scope = 0" in sysctl and "vm.nr_hugepages" in sysctl
    assert "LimitMEMLOCK=infinity" in (sb.root / "etc/systemd/system/containerd.service.d/memlock.conf").read_text()
    assert "SystemdCgroup = true" in (sb.root / "etc/containerd/config.toml").read_text()


def test_a_wrong_signing_key_stops_before_anything_is_installed(tmp_path: Path) -> None:
    sb = make_sandbox(tmp_path, EFA, "worker-0")
    proc = sb.run(STUB_GPG_FPR_EFA="0" * 40)
    assert proc.returncode != 0
    assert not any("efa_installer.sh" in c for c in sb.calls())
    assert "EFA installer key has fingerprint" in sb.log() and "[efa-installer] FAILED" in sb.log()


def test_reboot_requested_by_the_efa_installer_resumes_after_boot(tmp_path: Path) -> None:
    sb = make_sandbox(tmp_path, EFA, "worker-0")
    flag = sb.root / "var/run/reboot-required"
    flag.parent.mkdir(parents=True)
    flag.write_text("")
    assert sb.run().returncode == 0
    assert "systemctl reboot" in sb.calls() and not any(c.startswith("kubeadm join") for c in sb.calls())
    sb.reset_calls()  # the node reboots; a package may leave the flag behind: no second reboot
    assert sb.run().returncode == 0
    calls = sb.calls()
    assert "systemctl reboot" not in calls and not any("efa_installer.sh" in c for c in calls)
    assert any(c.startswith("kubeadm join") for c in calls) and sb.status() == "ready"


def test_failing_step_stops_with_a_clear_log_line(tmp_path: Path) -> None:
    sb = make_sandbox(tmp_path, EFA, "control-plane-0")
    proc = sb.run(STUB_FAIL="^kubeadm init")
    assert proc.returncode == 1
    assert "[kubeadm-init] FAILED: exit 1; see " in sb.log()
    assert sb.status().startswith("failed step=kubeadm-init")
    assert not any(c.startswith("aws ssm put-parameter") for c in sb.calls())


def test_worker_waits_with_backoff_until_the_join_parameter_appears(tmp_path: Path) -> None:
    sb = make_sandbox(tmp_path, SOFTROCE, "worker-0")
    assert sb.run(STUB_JOIN_READY_AFTER="3").returncode == 0
    calls = sb.calls()
    assert sum(c.startswith("aws ssm get-parameter") for c in calls) == 3
    assert [c for c in calls if c.startswith("sleep")] == ["sleep 5", "sleep 10"]
    assert (
        "rdma link add rxe0 type rxe netdev ens5"
        in (sb.root / "etc/systemd/system/spiderpool-rdma-rxe.service").read_text()
    )


def test_worker_gives_up_after_its_deadline(tmp_path: Path) -> None:
    sb = make_sandbox(tmp_path, EFA, "worker-0")
    sb.set_env("SPR_JOIN_TIMEOUT", "12")
    proc = sb.run(STUB_JOIN_READY_AFTER="0")  # never published
    assert proc.returncode == 1
    assert "not published within 12s" in sb.log()
    assert not any(c.startswith("kubeadm join") for c in sb.calls())


def test_pod_addresses_are_removed_from_the_host(tmp_path: Path) -> None:
    sb = make_sandbox(tmp_path, EFA, "worker-0")
    plan = make_plan(EFA)
    pod_ip = plan.workers[0].prefixes[0][3]
    node_ip = plan.workers[0].private_ip
    addrs = f"2: ens5    inet {node_ip}/20 brd x scope global ens5\n2: ens5    inet {pod_ip}/20 scope global ens5"
    awk_ready = "\n".join(" ".join(line.split()) for line in addrs.splitlines())
    assert sb.run(STUB_IP_ADDRS=awk_ready).returncode == 0
    calls = sb.calls()
    assert f"ip addr del {pod_ip}/20 dev ens5" in calls
    assert not any(f"del {node_ip}/" in c for c in calls)
    assert os.path.exists(sb.root / "etc/cloud/cloud.cfg.d/99-spiderpool-rdma.cfg")

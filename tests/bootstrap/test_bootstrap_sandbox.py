"""The bootstrap scripts run for real, as their systemd unit runs them, with stand-ins at the real binaries' paths."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from spider_validate import names

from cdk import userdata
from cdk.config import ClusterConfig
from cdk.ipplan import make_plan
from tests.bootstrap.sandbox import (
    ECR_PROVIDER,
    LIB,
    MAC,
    Keys,
    Sandbox,
    make_sandbox,
    serve_ecr_provider,
)
from tests.bootstrap.stub import embedded, issue_certificate
from tests.upstream import encryption_config as encryption

#: Calls that only read: a finished node may make these and nothing else.
READ_ONLY = ("ip -4 -o addr show", "curl -fsS -X PUT -H X-aws-ec2-metadata-token-ttl-seconds", "curl -fsS -H X-aws")

#: How the stub logs a parameter's put, up to its name.
PUT = "aws ssm put-parameter --region us-east-1 --name /spiderpool-rdma/spiderpool-rdma"
EFA = ClusterConfig()
SOFTROCE = ClusterConfig.model_validate({"workers": {"instance_type": "m7i.xlarge", "rdma": "softroce"}})
HA = ClusterConfig.model_validate({"control_plane": {"count": 3}})
EFA_DRA = ClusterConfig.model_validate({"workers": {"rdma_devices": "dra"}})


def index_of(calls: list[str], prefix: str) -> int:
    return next(i for i, c in enumerate(calls) if c.startswith(prefix))


def sandbox(tmp_path: Path, keys: Keys, config: ClusterConfig, node: str, cluster: Sandbox | None = None) -> Sandbox:
    """A node's sandbox; nodes given the same `cluster` sandbox share its API server and SSM parameters."""
    return make_sandbox(tmp_path / node, config, node, keys, cluster.cluster.path if cluster else None)


def bootstrapped_control_plane(tmp_path: Path, keys: Keys, config: ClusterConfig) -> Sandbox:
    cp = sandbox(tmp_path, keys, config, "control-plane-0")
    proc = cp.run()
    assert proc.returncode == 0, proc.stderr
    return cp


def consumer_match(node: Sandbox, value: str) -> list[str] | None:
    """join.sh's own test of a parameter: `[[ "${value}" =~ ${SPR_JOIN_PATTERN} ]]` on the value as
    `$(aws ssm get-parameter ... --output text)` returns it (trailing newlines stripped, spaces kept)."""
    script = 'source "$1"; v="$(cat)"; [[ "${v}" =~ ${SPR_JOIN_PATTERN} ]] && printf "%s\\n" "${BASH_REMATCH[@]}"'
    env_file = str(node.root / "etc/spiderpool-rdma/node.env")
    proc = subprocess.run(["bash", "-c", script, "_", env_file], input=value, capture_output=True, text=True)
    return proc.stdout.split("\n")[:6] if proc.returncode == 0 else None


def test_control_plane_initializes_then_publishes_join_and_kubeconfig(tmp_path: Path, keys: Keys) -> None:
    sb = bootstrapped_control_plane(tmp_path, keys, HA)
    calls = sb.calls()
    order = [
        "modprobe overlay",
        "apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends containerd",
        "systemctl restart containerd",
        "curl -fsSL -o",
        "apt-mark hold kubelet kubeadm kubectl",
        f"{PUT}/kubernetes-version ",
        "kubeadm init --config",
        "kubeadm token create",
        f"{PUT}/join-worker ",
        "kubeadm init phase upload-certs",
        f"{PUT}/join-control-plane ",
    ]
    positions = [index_of(calls, p) for p in order]
    assert positions == sorted(positions), calls
    # The certificates are uploaded only for the control planes still missing, not by init itself.
    assert "--upload-certs" not in next(c for c in calls if c.startswith("kubeadm init --config"))
    puts = [c for c in calls if c.startswith("aws ssm put-parameter")]
    assert any("/kubeconfig" in c and "--tier Advanced" in c for c in puts)
    assert all("--type SecureString" in c and "--value file://" in c for c in puts)  # never on the command line
    assert sb.status() == "ready"


def test_published_join_values_pass_the_consumers_pattern(tmp_path: Path, keys: Keys) -> None:
    """kubeadm's worker command ends with a space; each parameter must still pass join.sh's pattern, the
    worker one without a certificate key, the control-plane one with the key kubeadm uploaded."""
    cp = bootstrapped_control_plane(tmp_path, keys, HA)
    worker = sandbox(tmp_path, keys, HA, "worker-0", cp)
    cp1 = sandbox(tmp_path, keys, HA, "control-plane-1", cp)
    worker_value = cp.cluster.ssm("join-worker").read_text()
    assert worker_value.endswith(" \n")  # byte-exact kubeadm output, trailing space included
    groups = consumer_match(worker, worker_value)
    assert groups is not None, repr(worker_value)
    assert groups[1] == "api.spiderpool-rdma.internal:6443" and groups[5] == ""
    cp_value = cp.cluster.ssm("join-control-plane").read_text()
    groups = consumer_match(cp1, cp_value)
    assert groups is not None, repr(cp_value)
    uploaded = (cp.cluster.path / "certificate-keys").read_text().split()
    assert groups[5] == uploaded[-1] and len(groups[5]) == 64


def test_second_control_plane_joins_as_a_control_plane_and_never_runs_init(tmp_path: Path, keys: Keys) -> None:
    cp = bootstrapped_control_plane(tmp_path, keys, HA)
    cp1 = sandbox(tmp_path, keys, HA, "control-plane-1", cp)
    proc = cp1.run()
    assert proc.returncode == 0, proc.stderr
    calls = cp1.calls()
    assert not any(c.startswith("kubeadm init") for c in calls), calls
    gets = {c.split("--name ")[1].split()[0].rsplit("/", 1)[1] for c in calls if c.startswith("aws ssm get-parameter")}
    assert gets == {"kubernetes-version", "join-control-plane", "encryption-config"}, gets
    config = (cp1.root / "etc/spiderpool-rdma/kubeadm-join.yaml").read_text()
    key = (cp.cluster.path / "certificate-keys").read_text().split()[-1]
    assert f'certificateKey: "{key}"' in config and 'name: "control-plane-1"' in config
    assert not any("efa_installer" in c or "fi_info" in c for c in calls)


def test_control_planes_get_no_rdma_steps(tmp_path: Path, keys: Keys) -> None:
    sb = bootstrapped_control_plane(tmp_path, keys, EFA)
    calls = sb.calls()
    assert not any("efa-installer" in c or "efa_installer" in c or "fi_info" in c or "perftest" in c for c in calls)
    assert not (sb.root / "etc/sysctl.d/91-efa.conf").exists()


def test_second_run_changes_nothing(tmp_path: Path, keys: Keys) -> None:
    cp = bootstrapped_control_plane(tmp_path, keys, EFA)
    sb = sandbox(tmp_path, keys, EFA, "worker-0", cp)
    assert sb.run().returncode == 0
    for node in (sb, cp):
        node.reset_calls()
        proc = node.run()
        assert proc.returncode == 0, proc.stderr
        assert node.calls() == [], node.calls()  # the unit's condition stops earlier on a node; the script too
        (node.root / "var/lib/spiderpool-rdma/done/bootstrap").unlink()  # even with every step marker alone:
        assert node.run().returncode == 0
        assert all(c.startswith(READ_ONLY) for c in node.calls()), node.calls()


def test_efa_worker_verifies_the_installer_before_running_it_and_joins_last(tmp_path: Path, keys: Keys) -> None:
    cp = bootstrapped_control_plane(tmp_path, keys, EFA)
    sb = sandbox(tmp_path, keys, EFA, "worker-1", cp)
    proc = sb.run()
    assert proc.returncode == 0, proc.stderr + sb.log()
    calls = sb.calls()
    assert index_of(calls, "efa_installer.sh -y") < index_of(calls, "fi_info -p efa") < index_of(calls, "kubeadm join")
    assert index_of(calls, "aws ssm get-parameter") < index_of(calls, "kubeadm join --config")
    join_config = (sb.root / "etc/spiderpool-rdma/kubeadm-join.yaml").read_text()
    assert 'caCertHashes: ["sha256:' + "a" * 64 in join_config and 'name: "worker-1"' in join_config
    assert "node.kubernetes.io/instance-type=c5n.9xlarge" in join_config
    sysctl = (sb.root / "etc/sysctl.d/91-efa.conf").read_text()
    assert "vm.nr_hugepages" in sysctl and "ptrace_scope" not in sysctl  # Yama stays as Ubuntu sets it
    assert "LimitMEMLOCK=infinity" in (sb.root / "etc/systemd/system/containerd.service.d/memlock.conf").read_text()
    assert "SystemdCgroup = true" in (sb.root / "etc/containerd/config.toml").read_text()


def nri_section(config_toml: str) -> str:
    return config_toml.split('[plugins."io.containerd.nri.v1.nri"]')[1].split("[")[0]


def test_a_dra_worker_enables_containerds_nri_for_aws_dranet_and_no_other_node_does(tmp_path: Path, keys: Keys) -> None:
    """dranet's chart mounts the NRI socket's directory: the socket containerd serves once NRI is enabled."""
    cp = bootstrapped_control_plane(tmp_path, keys, EFA_DRA)
    assert "disable = true" in nri_section((cp.root / "etc/containerd/config.toml").read_text())
    sb = sandbox(tmp_path, keys, EFA_DRA, "worker-1", cp)
    proc = sb.run()
    assert proc.returncode == 0, proc.stderr + sb.log()
    config_toml = (sb.root / "etc/containerd/config.toml").read_text()
    section = nri_section(config_toml)
    assert "    disable = false" in section and "disable_connections = false" in section
    assert 'socket_path = "/var/run/nri/nri.sock"' in section
    assert "SystemdCgroup = true" in config_toml
    plugin = sandbox(
        tmp_path / "plugin", keys, EFA, "worker-1", bootstrapped_control_plane(tmp_path / "plugin", keys, EFA)
    )
    assert plugin.run().returncode == 0
    assert "disable = true" in nri_section((plugin.root / "etc/containerd/config.toml").read_text())


def test_fi_info_is_not_found_by_name_in_a_units_environment(tmp_path: Path, keys: Keys) -> None:
    """Control for the sandbox itself: after the EFA installer ran, a bare `fi_info` is not on systemd's PATH."""
    cp = bootstrapped_control_plane(tmp_path, keys, EFA)
    sb = sandbox(tmp_path, keys, EFA, "worker-0", cp)
    assert sb.run().returncode == 0
    assert (sb.root / "opt/amazon/efa/bin/fi_info").exists()
    found = subprocess.run(["bash", "-c", "command -v fi_info"], env=sb.env, capture_output=True, text=True)
    assert found.returncode != 0, found.stdout


@pytest.mark.parametrize("fault", ["tampered-tarball", "signed-by-another-key"])
def test_an_efa_installer_that_does_not_verify_never_runs(tmp_path: Path, keys: Keys, fault: str) -> None:
    sb = sandbox(tmp_path, keys, EFA, "worker-0")
    if fault == "tampered-tarball":
        sb.serve_efa_installer(keys.efa, tamper=True)
    else:
        sb.serve_efa_installer(keys.other)
    proc = sb.run()
    assert proc.returncode != 0
    assert not any("efa_installer.sh" in c for c in sb.calls())
    assert "[efa-installer] FAILED" in sb.log() and sb.status().startswith("failed step=efa-installer")


@pytest.mark.parametrize("key", ["efa", "k8s"])
def test_a_wrong_signing_key_stops_before_anything_is_installed(tmp_path: Path, keys: Keys, key: str) -> None:
    sb = sandbox(tmp_path, keys, EFA, "worker-0")
    if key == "efa":
        sb.serve("https://efa-installer.amazonaws.com/aws-efa-installer.key", keys.gpg.export(keys.other))
    else:
        sb.serve(
            f"https://pkgs.k8s.io/core:/stable:/v{EFA.kubernetes_version}/deb/Release.key", keys.gpg.export(keys.other)
        )
    proc = sb.run()
    assert proc.returncode != 0
    calls = sb.calls()
    assert not any("efa_installer.sh" in c for c in calls)
    if key == "k8s":
        assert not any(c.startswith("apt-get") and "kubeadm" in c for c in calls)
    step = "efa-installer" if key == "efa" else "kubernetes-packages"
    assert f"[{step}] FAILED: exit 1" in sb.log()
    assert f"has fingerprint '{keys.other}', expected" in (sb.root / f"var/log/spiderpool-rdma/{step}.log").read_text()


@pytest.mark.parametrize("order", ["genuine-first", "genuine-last"])
def test_a_key_file_holding_another_key_beside_the_pinned_one_is_refused(
    tmp_path: Path, keys: Keys, order: str
) -> None:
    """pkgs.k8s.io's Release.key with the genuine key and an attacker's: trusted as a keyring, it would let apt accept
    an InRelease the attacker signed (real gpgv, as apt runs it). Nothing of it may reach apt's keyring."""
    sb = sandbox(tmp_path, keys, EFA, "control-plane-0")
    both = (keys.k8s, keys.other) if order == "genuine-first" else (keys.other, keys.k8s)
    sb.serve(f"https://pkgs.k8s.io/core:/stable:/v{EFA.kubernetes_version}/deb/Release.key", keys.gpg.export(*both))
    proc = sb.run()
    keyring = sb.root / "etc/apt/keyrings/kubernetes.gpg"
    if keyring.exists():  # what apt would do with it: verify the attacker's InRelease
        in_release = tmp_path / "InRelease"
        in_release.write_bytes(b"Origin: obs://build.opensuse.org/isv:kubernetes\n")
        signature = tmp_path / "InRelease.sig"
        signature.write_bytes(keys.gpg.sign(keys.other, in_release.read_bytes(), tmp_path))
        gpgv = subprocess.run(["gpgv", "--keyring", str(keyring), str(signature), str(in_release)], capture_output=True)
        assert gpgv.returncode != 0, "apt would trust an InRelease signed by the other key"
    assert proc.returncode == 1 and not keyring.exists()
    log = (sb.root / "var/log/spiderpool-rdma/kubernetes-packages.log").read_text()
    assert f"holds 2 keys, not only the one with fingerprint {keys.k8s}" in log
    assert not any(c.startswith("apt-get") and "kubeadm" in c for c in sb.calls())


def test_reboot_requested_by_the_efa_installer_resumes_after_boot(tmp_path: Path, keys: Keys) -> None:
    cp = bootstrapped_control_plane(tmp_path, keys, EFA)
    sb = sandbox(tmp_path, keys, EFA, "worker-0", cp)
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


def test_failing_step_stops_with_a_clear_log_line(tmp_path: Path, keys: Keys) -> None:
    sb = sandbox(tmp_path, keys, EFA, "control-plane-0")
    proc = sb.run(STUB_FAIL="^kubeadm init")
    assert proc.returncode == 1
    assert "[kubeadm-init] FAILED: exit 1; see " in sb.log()
    assert sb.status().startswith("failed step=kubeadm-init")
    puts = [c for c in sb.calls() if c.startswith("aws ssm put-parameter")]
    assert len(puts) == 1 and "/kubernetes-version " in puts[0], puts  # recorded before init, nothing else


def test_worker_waits_with_backoff_until_the_join_parameter_appears(tmp_path: Path, keys: Keys) -> None:
    cp = bootstrapped_control_plane(tmp_path, keys, SOFTROCE)
    sb = sandbox(tmp_path, keys, SOFTROCE, "worker-0", cp)
    assert sb.run(STUB_JOIN_READY_AFTER="3").returncode == 0
    calls = sb.calls()
    assert sum(c.startswith("aws ssm get-parameter") and "/join-worker " in c for c in calls) == 3
    assert [c for c in calls if c.startswith("sleep")] == ["sleep 5", "sleep 10"]
    assert (
        "rdma link add rxe0 type rxe netdev ens5"
        in (sb.root / "etc/systemd/system/spiderpool-rdma-rxe.service").read_text()
    )


def test_worker_gives_up_after_its_deadline(tmp_path: Path, keys: Keys) -> None:
    sb = sandbox(tmp_path, keys, EFA, "worker-0")
    sb.set_env("SPR_JOIN_TIMEOUT", "12")
    proc = sb.run(STUB_JOIN_READY_AFTER="0")  # never published
    assert proc.returncode == 1
    assert "not published within 12s" in sb.log()
    assert not any(c.startswith("kubeadm join") for c in sb.calls())


def test_pod_addresses_are_removed_from_the_host(tmp_path: Path, keys: Keys) -> None:
    cp = bootstrapped_control_plane(tmp_path, keys, EFA)
    sb = sandbox(tmp_path, keys, EFA, "worker-0", cp)
    plan = make_plan(EFA)
    pod_ip = plan.workers[0].prefixes[0][3]
    node_ip = plan.workers[0].private_ip
    addrs = f"2: ens5    inet {node_ip}/20 brd x scope global ens5\n2: ens5    inet {pod_ip}/20 scope global ens5"
    awk_ready = "\n".join(" ".join(line.split()) for line in addrs.splitlines())
    assert sb.run(STUB_IP_ADDRS=awk_ready).returncode == 0
    calls = sb.calls()
    assert f"ip addr del {pod_ip}/20 dev ens5" in calls
    assert not any(f"del {node_ip}/" in c for c in calls)


def test_a_failed_snap_install_is_retried(tmp_path: Path, keys: Keys) -> None:
    """First boot races the NAT gateway and snapd's seeding: the store may be unreachable for a while."""
    cp = sandbox(tmp_path, keys, EFA, "control-plane-0")
    proc = cp.run(STUB_FAIL="^snap install aws-cli", STUB_FAIL_TIMES="2")
    assert proc.returncode == 0, proc.stderr
    assert sum(c.startswith("snap install aws-cli") for c in cp.calls()) == 3
    assert cp.calls().index("snap wait system seed.loaded") < cp.calls().index("snap install aws-cli --classic")


def test_a_restart_after_a_failure_resumes_at_the_failed_step(tmp_path: Path, keys: Keys) -> None:
    """What Restart=on-failure does: the unit runs again and finishes what failed, and nothing before it."""
    cp = bootstrapped_control_plane(tmp_path, keys, EFA)
    sb = sandbox(tmp_path, keys, EFA, "worker-0", cp)
    assert sb.run(STUB_FAIL="^apt-get .*install.* kubelet").returncode == 1
    sb.reset_calls()
    proc = sb.run()
    assert proc.returncode == 0, proc.stderr
    calls = sb.calls()
    assert not any(c.startswith(("snap install", "systemctl restart containerd")) for c in calls)
    assert any("install" in c and "kubelet" in c for c in calls) and sb.status() == "ready"


def test_the_refresh_publishes_a_fresh_token_and_certificate_key(tmp_path: Path, keys: Keys) -> None:
    cp = bootstrapped_control_plane(tmp_path, keys, HA)
    assert "systemctl enable --now spiderpool-rdma-join-refresh.timer" in cp.calls()
    before = {p: cp.cluster.ssm(p).read_text() for p in ("join-worker", "join-control-plane")}
    proc = cp.run(f"{LIB}/refresh-join.sh")
    assert proc.returncode == 0, proc.stderr
    worker, cp1 = sandbox(tmp_path, keys, HA, "worker-0", cp), sandbox(tmp_path, keys, HA, "control-plane-1", cp)
    for node, param in ((worker, "join-worker"), (cp1, "join-control-plane")):
        value = cp.cluster.ssm(param).read_text()
        old, new = consumer_match(node, before[param]), consumer_match(node, value)
        assert old and new, value
        assert new[2] != old[2] and cp.cluster.token_valid(new[2])  # a new token
        if param == "join-control-plane":
            assert new[5] != old[5] and new[5] == (cp.cluster.path / "certificate-keys").read_text().split()[-1]
    assert not any(c.startswith("kubeadm init --config") for c in cp.calls()[-6:])


@pytest.mark.parametrize(
    ("config", "node", "param"), [(EFA, "worker-0", "join-worker"), (HA, "control-plane-1", "join-control-plane")]
)
def test_a_failed_join_is_retried_with_the_value_published_next(
    tmp_path: Path, keys: Keys, config: ClusterConfig, node: str, param: str
) -> None:
    """The published credential (the token; for a control plane, the certificate key) expired before this node
    joined; control-plane-0's refresh publishes new ones meanwhile."""
    cp = bootstrapped_control_plane(tmp_path, keys, config)
    stale = cp.cluster.ssm(param).read_text()
    assert cp.run(f"{LIB}/refresh-join.sh").returncode == 0
    fresh = cp.cluster.ssm(param)
    fresh.rename(fresh.with_suffix(".next"))
    fresh.write_text(stale)
    joining = sandbox(tmp_path, keys, config, node, cp)
    stale_groups = consumer_match(joining, stale)
    assert stale_groups
    cp.cluster.expire(stale_groups[5] or stale_groups[2])  # the certificate key expires first (2 h)
    proc = joining.run()
    assert proc.returncode == 0, proc.stderr + joining.log()
    calls = joining.calls()
    joins = [i for i, c in enumerate(calls) if c.startswith("kubeadm join")]
    assert len(joins) == 2 and joins[0] < calls.index("kubeadm reset --force") < joins[1]
    config_text = (joining.root / "etc/spiderpool-rdma/kubeadm-join.yaml").read_text()
    fresh_groups = consumer_match(joining, fresh.read_text())
    assert fresh_groups and fresh_groups[2] in config_text and fresh_groups[5] in config_text
    assert joining.status() == "ready"


def kubelet_args(config_text: str) -> dict[str, str]:
    nodereg = next(d for d in yaml.safe_load_all(config_text) if d and "nodeRegistration" in d)["nodeRegistration"]
    return {a["name"]: a["value"] for a in nodereg["kubeletExtraArgs"]}


def test_the_kubelets_ecr_credential_provider_is_installed_verified_and_wired(tmp_path: Path, keys: Keys) -> None:
    cp = bootstrapped_control_plane(tmp_path, keys, EFA)
    sb = sandbox(tmp_path, keys, EFA, "worker-0", cp)
    assert sb.run().returncode == 0
    for node, config in ((sb, "kubeadm-join.yaml"), (cp, "kubeadm-init.yaml")):
        args = kubelet_args((node.root / "etc/spiderpool-rdma" / config).read_text())
        provider_config = yaml.safe_load((node.root / args["image-credential-provider-config"].lstrip("/")).read_text())
        # The kubelet runs <bin-dir>/<provider name> (cloud-provider-aws docs/credential_provider.md).
        for provider in provider_config["providers"]:
            binary = node.root / args["image-credential-provider-bin-dir"].lstrip("/") / provider["name"]
            assert binary.is_file() and os.access(binary, os.X_OK), binary
    calls = sb.calls()
    assert index_of(calls, "curl -fsSL -o") < index_of(calls, "kubeadm join")


def test_an_ecr_credential_provider_with_another_digest_is_refused_before_it_is_installed_or_run(
    tmp_path: Path, keys: Keys
) -> None:
    """A substituted binary, served with a `.sha256` of its own beside it (whoever can replace the one can replace the
    other): only the digest the repository pins counts."""
    sb = sandbox(tmp_path, keys, EFA, "control-plane-0")
    serve_ecr_provider(sb, b"#!/bin/sh\necho 'substituted binary ran' >>\"$STUB_DIR/calls.log\"\n")
    assert sb.run().returncode == 1
    assert "[ecr-credential-provider] FAILED" in sb.log()
    log = (sb.root / "var/log/spiderpool-rdma/ecr-credential-provider.log").read_text()
    assert "not installing it" in log and f"not {hashlib.sha256(ECR_PROVIDER).hexdigest()} pinned" in log
    assert not list(sb.root.glob("usr/local/lib/kubelet/credential-providers/*"))
    assert not list(sb.root.glob("var/lib/spiderpool-rdma/ecr-credential-provider/*"))
    assert not any("ran" in c for c in sb.calls()) and not any(c.startswith("kubeadm init") for c in sb.calls())


def test_a_restart_after_a_failed_init_resets_and_runs_init_again(tmp_path: Path, keys: Keys) -> None:
    """kubeadm writes admin.conf before it waits for the control plane: a failed init leaves it behind."""
    sb = sandbox(tmp_path, keys, HA, "control-plane-0")
    assert sb.run(STUB_FAIL="^kubeadm init --config", STUB_FAIL_TIMES="1").returncode == 1
    assert (sb.root / "etc/kubernetes/admin.conf").exists()
    sb.reset_calls()
    proc = sb.run()
    assert proc.returncode == 0, proc.stderr
    calls = sb.calls()
    assert index_of(calls, "kubeadm reset --force") < index_of(calls, "kubeadm init --config")
    assert sb.status() == "ready" and (sb.cluster.ssm("join-worker")).exists()


def test_kubernetes_version_is_pinned_to_the_installed_kubeadm(tmp_path: Path, keys: Keys) -> None:
    sb = bootstrapped_control_plane(tmp_path, keys, EFA)
    init = (sb.root / "etc/spiderpool-rdma/kubeadm-init.yaml").read_text()
    cluster = next(d for d in yaml.safe_load_all(init) if d["kind"] == "ClusterConfiguration")
    assert cluster["kubernetesVersion"] == "v1.36.4"  # what the kubeadm stub reports as installed
    other = sandbox(tmp_path / "other", keys, EFA, "control-plane-0")
    assert other.run(STUB_KUBEADM_VERSION="v1.37.1").returncode == 1
    log = (other.root / "var/log/spiderpool-rdma/record-version.log").read_text()
    assert "kubeadm v1.37.1 is not a 1.36 release" in log
    assert not other.cluster.ssm("kubernetes-version").exists()  # nothing recorded for the nodes to follow


#: cloud-init 22.4's netplan file for the primary ENI, made by its own code: DataSourceEc2's network config with
#: apply_full_imds_network_config off (convert_ec2_metadata_network_config), rendered by its netplan renderer.
CLOUD_INIT_NETPLAN = """
import sys
from cloudinit.net import netplan, network_state
from cloudinit.sources.DataSourceEc2 import convert_ec2_metadata_network_config
mac, nic, root = sys.argv[1:]
md = {"interfaces": {"macs": {mac: {"device-number": "0"}}}}
cfg = convert_ec2_metadata_network_config(md, {mac: nic}, fallback_nic=nic, full_network_config=False)
renderer = netplan.Renderer({"netplan_path": "etc/netplan/50-cloud-init.yaml", "postcmds": False})
renderer.render_network_state(network_state.parse_net_config_data(cfg), target=root)
"""


def netplan_result(tmp: Path, nic: str, ours: Path) -> dict[str, str]:
    """The systemd-networkd files real `netplan generate` makes from cloud-init's file and ours."""
    subprocess.run(["/usr/bin/python3", "-c", CLOUD_INIT_NETPLAN, MAC, nic, str(tmp)], check=True)
    shutil.copy(ours, tmp / "etc/netplan" / ours.name)
    for f in (tmp / "etc/netplan").iterdir():
        f.chmod(0o600)
    subprocess.run(["netplan", "generate", "--root-dir", str(tmp)], check=True, capture_output=True)
    return {f.suffix: f.read_text() for f in (tmp / "run/systemd/network").iterdir()}


def test_a_primary_interface_named_otherwise_is_renamed_at_the_next_boot(tmp_path: Path, keys: Keys) -> None:
    """The primary ENI is found by its MAC, not assumed to be ens5 (multi-card types name it by PCI path)."""
    cp = bootstrapped_control_plane(tmp_path, keys, EFA)
    sb = sandbox(tmp_path, keys, EFA, "worker-0", cp)
    net = sb.root / "sys/class/net"
    (net / "ens5").rename(net / "enp39s0")
    assert sb.run().returncode == 0
    assert sb.calls()[-1] == "systemctl reboot" and not any(c.startswith("apt-get") for c in sb.calls())
    ours = sb.root / "etc/netplan/90-spiderpool-rdma-underlay.yaml"
    networkd = netplan_result(tmp_path / "netplan", "enp39s0", ours)
    assert f"PermanentMACAddress={MAC}" in networkd[".link"] and "Name=ens5" in networkd[".link"]
    assert "Name=ens5" in networkd[".network"] and "DHCP=ipv4" in networkd[".network"]
    (net / "enp39s0").rename(net / "ens5")  # what udev does at the next boot
    sb.reset_calls()
    proc = sb.run()
    assert proc.returncode == 0, proc.stderr
    assert "systemctl reboot" not in sb.calls() and sb.status() == "ready"


@pytest.mark.parametrize("fault", ["name-taken", "rename-did-not-happen"])
def test_a_primary_interface_that_cannot_be_renamed_stops_the_bootstrap(tmp_path: Path, keys: Keys, fault: str) -> None:
    sb = sandbox(tmp_path, keys, EFA, "worker-0")
    net = sb.root / "sys/class/net"
    (net / "ens5").rename(net / "enp39s0")
    if fault == "name-taken":
        (net / "ens5").mkdir()
        (net / "ens5" / "address").write_text("0e:00:00:00:00:01\n")  # another card's interface
        message = "is 'enp39s0' and another interface is ens5: cannot rename it"
    else:
        assert sb.run().returncode == 0  # asks for the reboot, after which the name is still wrong
        message = "is still 'enp39s0' after a reboot to rename it ens5"
    assert sb.run().returncode == 1
    assert message in sb.log()
    assert not any(c.startswith(("apt-get", "ip addr del")) for c in sb.calls())


def test_soft_roce_modules_follow_kernel_upgrades(tmp_path: Path, keys: Keys) -> None:
    cp = bootstrapped_control_plane(tmp_path, keys, SOFTROCE)
    sb = sandbox(tmp_path, keys, SOFTROCE, "worker-0", cp)
    assert sb.run().returncode == 0
    install = next(c for c in sb.calls() if "linux-modules-extra" in c).split()
    assert {"linux-modules-extra-6.8.0-1015-aws", "linux-modules-extra-aws"} <= set(install)


def test_the_efa_installers_apt_calls_wait_for_the_lock_and_a_failed_run_is_retried(tmp_path: Path, keys: Keys) -> None:
    cp = bootstrapped_control_plane(tmp_path, keys, EFA)
    sb = sandbox(tmp_path, keys, EFA, "worker-0", cp)
    proc = sb.run(STUB_EFA_FAIL_ONCE="1")
    assert proc.returncode == 0, proc.stderr
    assert sb.calls().count("efa_installer.sh -y") == 2
    assert "efa_installer.sh saw apt settings" in sb.calls()
    settings = (sb.root / "etc/apt/apt.conf.d/90spiderpool-rdma").read_text()
    assert 'DPkg::Lock::Timeout "600";' in settings and 'Acquire::Retries "5";' in settings


def joined_ha_cluster(tmp_path: Path, keys: Keys) -> list[Sandbox]:
    """control-plane-0, then control-plane-1 and -2 joining it, each bootstrapped to the end."""
    cp0 = bootstrapped_control_plane(tmp_path, keys, HA)
    nodes = [cp0]
    for name in ("control-plane-1", "control-plane-2"):
        node = sandbox(tmp_path, keys, HA, name, cp0)
        proc = node.run()
        assert proc.returncode == 0, proc.stderr + node.log()
        nodes.append(node)
    return nodes


def test_the_control_plane_join_credentials_are_withdrawn_once_every_control_plane_joined(
    tmp_path: Path, keys: Keys
) -> None:
    """The CA keys (kubeadm-certs Secret) and the certificate key stay published only while a control plane is missing:
    the last one to join withdraws them, and the hourly refresh of any control plane does not bring them back."""
    cp0 = bootstrapped_control_plane(tmp_path, keys, HA)
    assert cp0.cluster.secret_exists() and consumer_match(cp0, cp0.cluster.ssm("join-control-plane").read_text())
    cp1 = sandbox(tmp_path, keys, HA, "control-plane-1", cp0)
    assert cp1.run().returncode == 0
    assert cp0.cluster.secret_exists()  # control-plane-2 still needs them
    cp2 = sandbox(tmp_path, keys, HA, "control-plane-2", cp0)
    assert cp2.run().returncode == 0, cp2.log()
    assert not cp0.cluster.secret_exists()
    assert cp0.cluster.ssm("join-control-plane").read_text() == names.PLACEHOLDER
    for node in (cp0, cp1, cp2):
        node.reset_calls()
        assert node.run(f"{LIB}/refresh-join.sh").returncode == 0
        assert not any("upload-certs" in c or ("join-control-plane" in c and "put-" in c) for c in node.calls())
    assert not cp0.cluster.secret_exists()
    assert cp0.cluster.ssm("join-control-plane").read_text() == names.PLACEHOLDER
    worker = consumer_match(cp0, cp0.cluster.ssm("join-worker").read_text())
    assert worker and cp0.cluster.token_valid(worker[2])  # workers still join


def test_a_single_control_plane_never_uploads_the_certificate_authorities(tmp_path: Path, keys: Keys) -> None:
    cp0 = bootstrapped_control_plane(tmp_path, keys, EFA)
    assert cp0.run(f"{LIB}/refresh-join.sh").returncode == 0
    assert not cp0.cluster.secret_exists()
    assert not any("upload-certs" in c for c in cp0.calls()), cp0.calls()
    assert not cp0.cluster.ssm("join-control-plane").exists()  # never written: Terraform's placeholder stays


def test_a_replaced_control_plane_gets_the_credentials_again(tmp_path: Path, keys: Keys) -> None:
    """A control plane whose kubelet stopped posting status (its instance is gone) is missing: the first live one
    publishes the control-plane join credentials again at its next refresh, and the replacement joins with them."""
    cp0, _, _ = joined_ha_cluster(tmp_path, keys)
    cp0.cluster.set_node("control-plane-2", ready="Unknown")
    assert cp0.run(f"{LIB}/refresh-join.sh").returncode == 0
    assert cp0.cluster.secret_exists()
    replacement = sandbox(tmp_path / "replacement", keys, HA, "control-plane-2", cp0)
    proc = replacement.run()
    assert proc.returncode == 0, proc.stderr + replacement.log()
    assert not cp0.cluster.secret_exists()
    assert cp0.cluster.ssm("join-control-plane").read_text() == names.PLACEHOLDER


def test_the_first_live_control_plane_and_only_it_keeps_the_worker_join_fresh(tmp_path: Path, keys: Keys) -> None:
    cp0, cp1, cp2 = joined_ha_cluster(tmp_path, keys)

    def refreshed_by(node: Sandbox) -> bool:
        before = cp0.cluster.ssm("join-worker").read_text()
        assert node.run(f"{LIB}/refresh-join.sh").returncode == 0
        return cp0.cluster.ssm("join-worker").read_text() != before

    assert [refreshed_by(n) for n in (cp0, cp1, cp2)] == [True, False, False]
    cp0.cluster.set_node("control-plane-0", ready="Unknown")  # control-plane-0 is gone: the next one takes over
    assert [refreshed_by(n) for n in (cp1, cp2)] == [True, False]
    assert "enable --now spiderpool-rdma-join-refresh.timer" in " ".join(cp2.calls())


def test_every_later_node_installs_exactly_the_version_control_plane_0_recorded(tmp_path: Path, keys: Keys) -> None:
    """pkgs.k8s.io published a newer patch after control-plane-0 installed its own: a worker that joins later must not
    take it (the nodes would run different patches), and it follows the record to another minor after an upgrade."""
    cp0 = bootstrapped_control_plane(tmp_path, keys, EFA)
    assert cp0.cluster.ssm("kubernetes-version").read_text().strip() == "v1.36.4"
    worker = sandbox(tmp_path, keys, EFA, "worker-0", cp0)
    proc = worker.run(STUB_KUBEADM_VERSION="v1.36.9")
    assert proc.returncode == 0, proc.stderr + worker.log()
    install = next(c for c in worker.calls() if c.startswith("apt-get") and "kubeadm" in c).split()
    assert {"kubelet=1.36.4-*", "kubeadm=1.36.4-*", "kubectl=1.36.4-*"} <= set(install), install
    assert (worker.root / "var/lib/dpkg/kubeadm.version").read_text() == "v1.36.4"
    cp0.cluster.ssm("kubernetes-version").write_text("v1.34.2\n")  # what the day-two upgrade records
    later = sandbox(tmp_path, keys, EFA, "worker-1", cp0)
    later.serve("https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key", keys.gpg.export(keys.k8s))
    assert later.run().returncode == 0, later.log()
    sources = (later.root / "etc/apt/sources.list.d/kubernetes.list").read_text()
    assert "https://pkgs.k8s.io/core:/stable:/v1.34/deb/" in sources
    assert any("kubeadm=1.34.2-*" in c for c in later.calls())


def encryption_config(node: Sandbox) -> Path:
    return node.root / "etc/kubernetes/encryption/encryption-configuration.yaml"


def test_every_control_plane_encrypts_secrets_with_one_key_that_only_ssm_hands_over(tmp_path: Path, keys: Keys) -> None:
    """control-plane-0 makes the key before its API server first starts; a joining control plane has the same file
    before kubeadm join (the stub's API server would not start without it), fetched from SSM while it is published."""
    nodes = joined_ha_cluster(tmp_path, keys)
    files = [encryption_config(node) for node in nodes]
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert files[1].read_bytes() == files[0].read_bytes() == files[2].read_bytes()
    config = yaml.safe_load(files[0].read_text())
    assert config["kind"] == "EncryptionConfiguration" and encryption.validate(encryption.defaults(config)) == []
    (resource,) = config["resources"]
    assert resource["resources"] == ["secrets"]
    assert list(resource["providers"][0]) == ["secretbox"] and resource["providers"][-1] == {"identity": {}}
    fetch = "aws ssm get-parameter --region us-east-1 --with-decryption --name /spiderpool-rdma/spiderpool-rdma/"
    for node in nodes[1:]:  # joined with it: the file came before kubeadm join
        assert index_of(node.calls(), fetch + "encryption-config ") < index_of(node.calls(), "kubeadm join")
    assert nodes[0].cluster.ssm("encryption-config").read_text() == names.PLACEHOLDER  # withdrawn with the join


def test_a_single_control_plane_keeps_its_encryption_key_to_itself(tmp_path: Path, keys: Keys) -> None:
    cp0 = bootstrapped_control_plane(tmp_path, keys, EFA)
    assert encryption.validate(encryption.defaults(yaml.safe_load(encryption_config(cp0).read_text()))) == []
    assert not cp0.cluster.ssm("encryption-config").exists()


#: The leaf certificates kubeadm init makes (cmd/kubeadm/app/phases/certs), besides the three authorities.
LEAF_CERTIFICATES = (
    "apiserver.crt",
    "apiserver-kubelet-client.crt",
    "apiserver-etcd-client.crt",
    "front-proxy-client.crt",
    "etcd/server.crt",
    "etcd/peer.crt",
    "etcd/healthcheck-client.crt",
)


def kubeadm_pki(node: Sandbox, days: int = 365, admin_days: int = 365) -> None:
    """What kubeadm init leaves: authorities for ten years, leaves for a year (here `days`), admin.conf's client
    certificate embedded (`admin_days`); real certificates, made by openssl."""
    pki = node.root / "etc/kubernetes/pki"
    for name in ("ca.crt", "front-proxy-ca.crt", "etcd/ca.crt"):
        issue_certificate(pki / name, 3650)
    for name in LEAF_CERTIFICATES:
        issue_certificate(pki / name, days)
    admin = node.root / "etc/kubernetes/admin.conf"
    user = f"users:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: {embedded(admin_days)}\n"
    admin.write_text(admin.read_text().split("users:")[0] + user)


def renewal(node: Sandbox) -> list[str]:
    node.reset_calls()
    proc = node.run(f"{LIB}/renew-certificates.sh")
    assert proc.returncode == 0, (
        proc.stderr + (node.root / "var/log/spiderpool-rdma/renew-certificates.log").read_text()
    )
    return node.calls()


@pytest.mark.parametrize("expiring", ["apiserver", "admin.conf"])
def test_certificates_are_renewed_before_they_expire_one_component_restart_at_a_time(
    tmp_path: Path, keys: Keys, expiring: str
) -> None:
    """Around day 365 kubeadm's certificates expire: the daily check renews them all once one has fewer than 90 days
    left, restarts etcd, the API server, the controller manager and the scheduler one after the other (each running
    again before the next stops), and republishes the admin kubeconfig; the next check finds nothing to do."""
    cp0 = bootstrapped_control_plane(tmp_path, keys, EFA)
    assert "systemctl enable --now spiderpool-rdma-renew-certificates.timer" in cp0.calls()
    kubeadm_pki(cp0)
    assert not any(c.startswith(("kubeadm certs", "crictl")) and "ps" not in c for c in renewal(cp0))
    kubeadm_pki(cp0, days=30 if expiring == "apiserver" else 365, admin_days=30 if expiring == "admin.conf" else 365)
    calls = [
        c.replace("crictl --runtime-endpoint unix:///run/containerd/containerd.sock ", "crictl ") for c in renewal(cp0)
    ]
    order = [
        "kubeadm certs renew all",
        "crictl stop etcd-1",
        "crictl ps --name ^kube-apiserver$ --state running -q",
        "crictl stop kube-apiserver-1",
        "crictl stop kube-controller-manager-1",
        "crictl stop kube-scheduler-1",
        f"{PUT}/kubeconfig ",
    ]
    positions = [index_of(calls, c) for c in order]
    assert positions == sorted(positions), calls
    for component in ("etcd", "kube-apiserver", "kube-controller-manager"):  # running again before the next stops
        stopped = calls.index(f"crictl stop {component}-1")
        assert calls[stopped + 1] == f"crictl ps --name ^{component}$ --state running -q", calls
    published = cp0.cluster.ssm("kubeconfig").read_text()
    assert published == (cp0.root / "etc/kubernetes/admin.conf").read_text()  # with its renewed certificate
    assert not any(c.startswith("kubeadm certs") for c in renewal(cp0))  # renewed for a year: nothing to do


def test_no_two_control_planes_renew_their_certificates_on_the_same_day() -> None:
    plan = make_plan(HA)
    days = [
        int(
            next(
                line
                for line in userdata.node_files(HA, plan, cp)["/etc/spiderpool-rdma/node.env"].splitlines()
                if line.startswith("SPR_CERT_RENEW_DAYS=")
            ).split("=")[1]
        )
        for cp in plan.control_planes
    ]
    assert days == [90, 83, 76]  # a week apart, all long before the year ends

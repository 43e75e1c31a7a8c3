"""A node's file system under a temporary root, where the bootstrap runs as its systemd unit would run it.

Each run gets only the environment systemd gives a unit (its PATH, mapped into the sandbox root; no HOME, no
login profile, no terminal), plus the sandbox's own plumbing (SPR_ROOT, STUB_*). Real tools of the Ubuntu
image are linked from the host; everything else is the recording stub, at the path of the real binary
(tests/bootstrap/layout.py). Downloads come from files the test serves, signed with keys the test made.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import os
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cdk import userdata
from cdk.config import NEWEST_MINOR, OLDEST_MINOR, ClusterConfig
from cdk.ipplan import make_plan
from tests.bootstrap.layout import IMAGE_STUBS, REAL_TOOLS, SYSTEMD_PATH
from tests.bootstrap.stub import KUBEADM_VERSION, Cluster

STUB = Path(__file__).resolve().parent / "stub.py"
LIB = "usr/local/lib/spiderpool-rdma"
MAC = "0e:12:34:56:78:9a"

#: The EFA installer's current release (AWS's EFA changelog, "Amazon EFA installer release notes", EC2 user guide): the
#: only one the sandbox serves, so a node pinned to another fails its download.
EFA_RELEASE = "1.51.0"

#: The EFA installer's stand-in: records its call and leaves what the real installer leaves where the
#: bootstrap looks (libfabric's tools in /opt/amazon/efa/bin, the PATH addition in /etc/profile.d/efa.sh).
EFA_INSTALLER = f"""#!/bin/sh
echo "efa_installer.sh $*" >>"$STUB_DIR/calls.log"
settings="$SPR_ROOT/etc/apt/apt.conf.d/90spiderpool-rdma"
[ -e "$settings" ] && echo "efa_installer.sh saw apt settings" >>"$STUB_DIR/calls.log"
if [ -n "$STUB_EFA_FAIL_ONCE" ] && [ ! -e "$STUB_DIR/efa-failed" ]; then touch "$STUB_DIR/efa-failed"; exit 1; fi
mkdir -p "$SPR_ROOT/opt/amazon/efa/bin" "$SPR_ROOT/etc/profile.d"
ln -sf {STUB} "$SPR_ROOT/opt/amazon/efa/bin/fi_info"
echo 'PATH="$PATH:/opt/amazon/efa/bin"' >"$SPR_ROOT/etc/profile.d/efa.sh"
"""

#: The ECR credential provider's stand-in (its digest is what the sandbox pins): it records any run, which the
#: bootstrap never makes (the kubelet does).
ECR_PROVIDER = b"""#!/bin/sh
echo "ecr-credential-provider $*" >>"$STUB_DIR/calls.log"
"""


class Gpg:
    """A real gpg home with signing keys made for the test (ed25519, no passphrase)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        # gpg starts a gpg-agent for this home that outlives it: ended when the test process ends (a failure and
        # Ctrl-C included), so no run leaves agents behind
        atexit.register(self.stop_agent)

    def stop_agent(self) -> None:
        kill = ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"]
        subprocess.run(kill, check=False, capture_output=True)

    def _gpg(self, *args: str) -> bytes:
        return subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--yes", *args], check=True, capture_output=True
        ).stdout

    def new_key(self, uid: str) -> str:
        self._gpg("--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
        colons = self._gpg("--with-colons", "--list-keys", uid).decode()
        return next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))

    def export(self, *fprs: str) -> bytes:
        """One armored block holding these public keys, as a key file served for download."""
        return self._gpg("--armor", "--export", *fprs)

    def sign(self, fpr: str, data: bytes, tmp: Path) -> bytes:
        path = tmp / "to-sign"
        path.write_bytes(data)
        self._gpg("--local-user", fpr, "--detach-sign", "-o", str(path) + ".sig", str(path))
        return Path(str(path) + ".sig").read_bytes()


@dataclass
class Keys:
    """The test's stand-ins for the pkgs.k8s.io and EFA installer signing keys."""

    gpg: Gpg
    k8s: str
    efa: str
    other: str  # signs nothing that is expected: a wrong key


def make_keys(home: Path) -> Keys:
    gpg = Gpg(home)
    return Keys(gpg, gpg.new_key("pkgs.k8s.io test"), gpg.new_key("EFA test"), gpg.new_key("someone else"))


def efa_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = EFA_INSTALLER.encode()
        info = tarfile.TarInfo("aws-efa-installer/efa_installer.sh")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Sandbox:
    root: Path
    stubs: Path
    cluster: Cluster
    env: dict[str, str]
    www: Path
    keys: Keys
    tmp: Path = field(repr=False)

    def run(
        self, script: str = f"{LIB}/bootstrap.sh", args: Sequence[str] = (), **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run a script as systemd runs ExecStart (and SSM Run Command as root): this environment only, stdin from
        /dev/null."""
        process = self.start(script, args, **extra_env)
        try:
            stdout, stderr = process.communicate(timeout=120)
        finally:
            self.stop(process)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def start(
        self, script: str = f"{LIB}/bootstrap.sh", args: Sequence[str] = (), **extra_env: str
    ) -> subprocess.Popen[str]:
        """Start a script as `run` runs it, without waiting: a node that waits for what other nodes do meanwhile."""
        return subprocess.Popen(
            [str(self.root / script), *args],
            env={**self.env, **extra_env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # no controlling terminal, as for a unit; its own process group
            text=True,
        )

    @staticmethod
    def stop(process: subprocess.Popen[str]) -> None:
        """End what is left of a started script, its children too (its session's process group): a power loss."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()

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

    def serve(self, url: str, data: bytes) -> None:
        path = self.www / url.split("://", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def serve_efa_installer(self, signer: str, tamper: bool = False) -> None:
        base = f"https://efa-installer.amazonaws.com/aws-efa-installer-{EFA_RELEASE}.tar.gz"
        tarball = efa_tarball()
        self.serve(base, tarball + (b"\0" if tamper else b""))
        self.serve(base + ".sig", self.keys.gpg.sign(signer, tarball, self.tmp))


def _link(target: Path, source: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source)


def make_sandbox(
    tmp_path: Path, config: ClusterConfig, node_name: str, keys: Keys, cluster: Path | None = None
) -> Sandbox:
    plan = make_plan(config)
    node = next(n for n in plan.nodes if n.name == node_name)
    root, stubs = tmp_path / "root", tmp_path / "stubs"
    www = stubs / "www"  # what the curl stub serves
    for path, content in userdata.node_files(config, plan, node).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    (root / LIB / "bootstrap.sh").chmod(0o755)
    for script in root.glob(f"{LIB}/*.sh"):
        script.chmod(0o755)
    for merged in ("bin", "sbin"):  # Ubuntu 24.04: merged /usr
        (root / "usr" / merged).mkdir(parents=True)
        (root / merged).symlink_to(f"usr/{merged}")
    for name, rel in REAL_TOOLS.items():
        real = shutil.which(name, path="/usr/bin:/bin")
        if real:
            _link(root / rel, Path(real))
    for rel in IMAGE_STUBS.values():
        _link(root / rel, STUB)
    net = root / "sys/class/net"  # the primary ENI (a PCI device: sysfs links it as `device`) and an ipvlan link
    for name, device in ((userdata.UNDERLAY_INTERFACE, True), ("ipvl0", False)):
        (net / name).mkdir(parents=True)
        (net / name / "address").write_text(MAC + "\n")
        if device:
            (net / name / "device").mkdir()
    stubs.mkdir()
    cluster_dir = cluster or tmp_path / "cluster"
    env = {
        "PATH": ":".join(f"{root}{d}" for d in SYSTEMD_PATH),
        "SPR_ROOT": str(root),
        "STUB_DIR": str(stubs),
        "STUB_CLUSTER": str(cluster_dir),
        "STUB_MAC": MAC,
    }
    sb = Sandbox(root, stubs, Cluster(cluster_dir), env, www, keys, tmp_path)
    if cluster is None and userdata.node_role(node) != "control-plane-init":
        # A node tested without control-plane-0 finds the version it would have recorded (control-plane.sh).
        sb.cluster.ssm("kubernetes-version").write_text(KUBEADM_VERSION + "\n")
    sb.set_env("SPR_K8S_KEY_FINGERPRINT", keys.k8s)
    sb.set_env("SPR_EFA_KEY_FINGERPRINT", keys.efa)
    sb.set_env("SPR_JOIN_TIMEOUT", "20")  # a node that never gets a valid join command fails in seconds
    for minor in range(OLDEST_MINOR, NEWEST_MINOR + 1):  # one repository per released minor, one signing key
        sb.serve(f"https://pkgs.k8s.io/core:/stable:/v1.{minor}/deb/Release.key", keys.gpg.export(keys.k8s))
    sb.serve("https://efa-installer.amazonaws.com/aws-efa-installer.key", keys.gpg.export(keys.efa))
    sb.serve_efa_installer(keys.efa)
    sb.set_env("SPR_ECR_PROVIDER_SHA256", hashlib.sha256(ECR_PROVIDER).hexdigest())
    serve_ecr_provider(sb, ECR_PROVIDER)
    return sb


def serve_ecr_provider(sb: Sandbox, binary: bytes) -> None:
    """The release files as cloud-provider-aws publishes them: the binary and `<binary>.sha256` holding its bare hex
    digest and a newline (Makefile `copy-bins-for-upload`, hack/sha256: `sha256sum $in | cut -d' ' -f1`)."""
    arch = "amd64"  # the uname stub's x86_64
    url = (
        f"https://artifacts.k8s.io/binaries/cloud-provider-aws/{userdata.ecr_provider()['version']}/linux/{arch}/"
        f"ecr-credential-provider-linux-{arch}"
    )
    sb.serve(url, binary)
    sb.serve(url + ".sha256", (hashlib.sha256(binary).hexdigest() + "\n").encode())

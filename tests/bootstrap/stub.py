#!/usr/bin/env python3
"""A recording stand-in for the system commands the bootstrap calls, linked at each command's real path.

Appends `name args...` to $STUB_DIR/calls.log, fails when the call matches $STUB_FAIL (the first
$STUB_FAIL_TIMES matches only, when set), and otherwise answers like the real command where the bootstrap
reads the answer. What a cluster keeps (SSM parameters, bootstrap tokens) lives in $STUB_CLUSTER, shared by
the sandboxes of one test as the nodes of one cluster share the API server and SSM.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layout import PACKAGE_STUBS

CA_HASH = "sha256:" + "a" * 64
KUBEADM_VERSION = "v1.33.4"
ECR_PROVIDER_VERSION = "v1.33.4"
IMDS = "http://169.254.169.254/latest/"
#: Ubuntu 24.04's AWS kernel as `uname -r` prints it: <version>-<ABI>-<flavour> (linux-aws, noble).
KERNEL = "6.8.0-1015-aws"


def join_command(server: str, token: str, certificate_key: str = "") -> str:
    """What `kubeadm token create --print-join-command [--certificate-key K]` prints, byte for byte.

    kubernetes cmd/kubeadm/app/cmd/util/join.go, joinCommandTemplate (tab-indented since kubernetes PR 97413):
      `kubeadm join {{.ControlPlaneHostPort}} --token {{.Token}} \\
      <TAB>{{range $h := .CAPubKeyPins}}--discovery-token-ca-cert-hash {{$h}} {{end}}{{if .ControlPlane}}\\
      <TAB>--control-plane {{if .CertificateKey}}--certificate-key {{.CertificateKey}}{{end}}{{end}}`
    cmd/kubeadm/app/cmd/token.go, RunCreateToken: ReplaceAll("\\\\\\n", ""), ReplaceAll("\\t", ""), Fprintln.
    The worker command therefore ends with a space after the CA hash, then the newline.
    """
    text = f"kubeadm join {server} --token {token} \\\n\t--discovery-token-ca-cert-hash {CA_HASH} "
    if certificate_key:
        text += f"\\\n\t--control-plane --certificate-key {certificate_key}"
    return text.replace("\\\n", "").replace("\t", "") + "\n"


class Cluster:
    """The state real kubeadm keeps in the API server and real SSM keeps per parameter."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "ssm").mkdir(parents=True, exist_ok=True)

    def _lines(self, name: str) -> list[str]:
        f = self.path / name
        return f.read_text().split() if f.exists() else []

    def _append(self, name: str, value: str) -> None:
        with (self.path / name).open("a") as fh:
            fh.write(value + "\n")

    def new_token(self) -> str:
        n = len(self._lines("tokens")) + 1
        token = f"tok{n:03d}.{n:016d}"  # [a-z0-9]{6}.[a-z0-9]{16}, bootstrapapi.BootstrapTokenPattern
        self._append("tokens", token)
        return token

    def new_certificate_key(self) -> str:
        n = len(self._lines("certificate-keys")) + 1
        key = f"{n:064x}"
        self._append("certificate-keys", key)
        return key

    def expire(self, credential: str) -> None:
        self._append("expired", credential)

    def token_valid(self, token: str) -> bool:
        return token in self._lines("tokens") and token not in self._lines("expired")

    def certificate_key_valid(self, key: str) -> bool:
        return key in self._lines("certificate-keys") and key not in self._lines("expired")

    def ssm(self, name: str) -> Path:
        return self.path / "ssm" / name


def install(root: Path, package: str) -> None:
    for rel in PACKAGE_STUBS.get(package, {}).values():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(Path(__file__).resolve())


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def yaml_value(text: str, key: str) -> str:
    match = re.search(rf"^\s*{key}: \"?([^\"\n]+)\"?$", text, re.M)
    return match.group(1) if match else ""


def read_config(args: list[str], root: Path) -> str:
    return (root / flag(args, "--config").removeprefix(str(root)).lstrip("/")).read_text()


def kubeadm(args: list[str], root: Path, cluster: Cluster, failing: bool) -> int:
    conf = root / "etc/kubernetes"
    if args[:2] == ["version", "-o"]:
        print(os.environ.get("STUB_KUBEADM_VERSION", KUBEADM_VERSION))
    elif args[:1] == ["init"] and not re.search(
        r'^kubernetesVersion: "?v\d+\.\d+\.\d+"?(\s+#.*)?$', read_config(args, root), re.M
    ):
        # Without a version kubeadm resolves "stable-1" from dl.k8s.io (cmd/kubeadm/app/util/version.go,
        # KubernetesReleaseVersion); a node without internet, or this sandbox, gets this error.
        print(
            'could not fetch a Kubernetes version from the internet: unable to get URL "https://dl.k8s.io/release/stable-1.txt"'
        )
        return 1
    elif args[:1] == ["init"] and "phase" not in args:
        config = read_config(args, root)
        # kubeadm init's phases (cmd/kubeadm/app/cmd/init.go): certs and kubeconfig come before
        # wait-control-plane, so a failed init leaves admin.conf behind.
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "admin.conf").write_text(f"server: https://{yaml_value(config, 'controlPlaneEndpoint')}\n")
        if failing:
            print("[wait-control-plane] timed out waiting for the condition", file=sys.stderr)
            return 1
    elif failing:
        return 1
    elif args[:3] == ["init", "phase", "upload-certs"]:
        # cmd/kubeadm/app/cmd/phases/init/uploadcerts.go: the key is printed last, on its own line.
        key = cluster.new_certificate_key()
        print('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
        print(f"[upload-certs] Using certificate key:\n{key}")
    elif args[:2] == ["token", "create"]:
        server = yaml_value((conf / "admin.conf").read_text(), "server").removeprefix("https://")
        key = flag(args, "--certificate-key") if "--certificate-key" in args else ""
        sys.stdout.write(join_command(server, cluster.new_token(), key))
    elif args[:1] == ["join"]:
        config = read_config(args, root)
        token = yaml_value(config, "token")
        if not cluster.token_valid(token):
            # cmd/kubeadm/app/discovery/token/token.go, for a token the cluster does not know (any more)
            print(f'could not find a JWS signature in the cluster-info ConfigMap for token ID "{token[:6]}"')
            return 1
        key = yaml_value(config, "certificateKey")
        if key and not cluster.certificate_key_valid(key):
            # The uploaded certificates' Secret is gone after 2 h (cmd/kubeadm/app/phases/copycerts/copycerts.go).
            print(
                "error execution phase control-plane-prepare/download-certs: error downloading certs: "
                'error downloading the secret: Secret "kubeadm-certs" was not found in the "kube-system" Namespace'
            )
            return 1
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "kubelet.conf").write_text("stub\n")
    elif args[:1] == ["reset"]:
        for name in ("admin.conf", "kubelet.conf", "manifests/kube-apiserver.yaml"):
            (conf / name).unlink(missing_ok=True)
    return 0


def curl(args: list[str]) -> int:
    url = next(a for a in args if a.startswith("http"))
    if url == IMDS + "api/token":
        print("imds-token", end="")
    elif url == IMDS + "meta-data/mac":
        print(os.environ["STUB_MAC"], end="")
    else:
        source = Path(os.environ["STUB_DIR"]) / "www" / url.split("://", 1)[1]
        if not source.is_file():
            print("curl: (22) The requested URL returned error: 404", file=sys.stderr)
            return 22
        Path(flag(args, "-o")).write_bytes(source.read_bytes())
    return 0


def aws(args: list[str], cluster: Cluster) -> int:
    name = flag(args, "--name").rsplit("/", 1)[-1]
    param = cluster.ssm(name)
    if args[:2] == ["ssm", "put-parameter"]:
        param.write_text(Path(flag(args, "--value").removeprefix("file://")).read_text())
        return 0
    polls = cluster.path / f"polls-{name}"
    count = int(polls.read_text()) + 1 if polls.exists() else 1
    polls.write_text(str(count))
    later = param.with_suffix(".next")  # what control-plane-0's refresh publishes after this read
    if count > 1 and later.exists():
        later.rename(param)
    ready_after = int(os.environ.get("STUB_JOIN_READY_AFTER", "1"))
    # Terraform creates each parameter with the placeholder "pending" (cdk/constructs/secrets.py).
    value = param.read_text() if param.exists() and 0 < ready_after <= count else "pending"
    print(value.rstrip("\n"))  # --output text prints the value and a newline
    return 0


def main() -> int:
    name = Path(sys.argv[0]).name.replace("aws-cli.aws", "aws")  # the snap's app, called by its path
    args = sys.argv[1:]
    stub = Path(os.environ["STUB_DIR"])
    root = Path(os.environ["SPR_ROOT"])
    cluster = Cluster(Path(os.environ["STUB_CLUSTER"]))
    line = " ".join([name, *args])
    with (stub / "calls.log").open("a") as log:
        log.write(line + "\n")
    failing = False
    fail = os.environ.get("STUB_FAIL")
    if fail and re.search(fail, line):
        counter = stub / "failures"
        failures = int(counter.read_text()) if counter.exists() else 0
        failing = failures < int(os.environ.get("STUB_FAIL_TIMES", "1000000"))
        counter.write_text(str(failures + 1))
    if name == "kubeadm":
        return kubeadm(args, root, cluster, failing)
    if failing:
        print(f"{name}: simulated failure", file=sys.stderr)
        return 1
    if name == "apt-get" and "install" in args:
        for package in args[args.index("install") + 1 :]:
            install(root, package)
    elif name == "snap" and args[:1] == ["install"]:
        install(root, f"snap:{args[1]}")
    elif name == "containerd" and args[:2] == ["config", "default"]:
        print("    SystemdCgroup = false")
    elif name == "curl":
        return curl(args)
    elif name == "aws" and args[:1] == ["ssm"]:
        return aws(args, cluster)
    elif name == "ip" and "show" in args:
        print(os.environ.get("STUB_IP_ADDRS", ""))
    elif name == "fi_info":
        print("provider: efa\n    fabric: efa\n    domain: rdmap0s6-rdm\n    version: 122.0\n    type: FI_EP_RDM")
    elif name == "uname":
        print({"-r": os.environ.get("STUB_KERNEL", KERNEL), "-m": "x86_64"}[args[0]])
    elif name == "sleep":
        time.sleep(0.01)
    return 0


if __name__ == "__main__":
    sys.exit(main())

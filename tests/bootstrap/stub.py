#!/usr/bin/env python3
"""A recording stand-in for the system commands the bootstrap calls, linked at each command's real path.

Appends `name args...` to $STUB_DIR/calls.log, fails when the call matches $STUB_FAIL (the first
$STUB_FAIL_TIMES matches only, when set), and otherwise answers like the real command where the bootstrap
reads the answer. What a cluster keeps (SSM parameters, bootstrap tokens) lives in $STUB_CLUSTER, shared by
the sandboxes of one test as the nodes of one cluster share the API server and SSM.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import etcd_stub
import upgrade_stub
from layout import PACKAGE_STUBS

CA_HASH = "sha256:" + "a" * 64
KUBEADM_VERSION = "v1.36.4"  # a patch of the default minor (cdk.config.DEFAULT_KUBERNETES_VERSION)
IMDS = "http://169.254.169.254/latest/"
#: Ubuntu 24.04's AWS kernel as `uname -r` prints it: <version>-<ABI>-<flavour> (linux-aws, noble).
KERNEL = "6.8.0-1015-aws"
#: The parts of `containerd config default` the bootstrap edits, as containerd 1.7 (Ubuntu 24.04's) prints them: the
#: CRI runtime's cgroup driver, and the NRI section with NRI disabled (containerd release/1.7 docs/NRI.md, "Enabling
#: NRI Support in Containerd", which lists the section's keys and defaults).
CONTAINERD_1_7_DEFAULT = """\
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = false
  [plugins."io.containerd.nri.v1.nri"]
    disable = true
    disable_connections = false
    plugin_config_path = "/etc/nri/conf.d"
    plugin_path = "/opt/nri/plugins"
    plugin_registration_timeout = "5s"
    plugin_request_timeout = "2s"
    socket_path = "/var/run/nri/nri.sock"
  [plugins."io.containerd.runtime.v1.linux"]
    no_shim = false
"""


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
        """The kubeadm-certs Secret exists and holds the certificates encrypted with this key: the last one uploaded
        (cmd/kubeadm/app/phases/copycerts/copycerts.go, UploadCerts replaces the Secret's data)."""
        keys = self._lines("certificate-keys")
        return self.secret_exists() and bool(keys) and key == keys[-1] and key not in self._lines("expired")

    def upload_certs(self) -> str:
        key = self.new_certificate_key()
        (self.path / "kubeadm-certs").write_text(key + "\n")
        return key

    def secret_exists(self) -> bool:
        return (self.path / "kubeadm-certs").exists()

    def delete_secret(self) -> None:
        (self.path / "kubeadm-certs").unlink(missing_ok=True)

    def nodes(self) -> dict[str, dict[str, object]]:
        """Node name -> {"control_plane": bool, "ready": "True" | "False" | "Unknown"}, as registered by kubeadm."""
        f = self.path / "nodes.json"
        return json.loads(f.read_text()) if f.exists() else {}

    def register(self, name: str, control_plane: bool) -> None:
        """The kubelet registers its Node (Ready False until a CNI is installed); kubeadm's mark-control-plane phase
        labels a control plane node-role.kubernetes.io/control-plane (cmd/kubeadm/app/phases/markcontrolplane)."""
        self.set_node(name, control_plane=control_plane, ready="False")

    def set_node(self, name: str, **fields: object) -> None:
        nodes = self.nodes()
        nodes[name] = {**nodes.get(name, {}), **fields}
        (self.path / "nodes.json").write_text(json.dumps(nodes))

    def ssm(self, name: str) -> Path:
        return self.path / "ssm" / name


def install(root: Path, spec: str) -> None:
    """`apt-get install PACKAGE[=VERSION]`: the package's binaries appear; a Kubernetes package records the version
    apt resolved (upgrade_stub.resolve: a pkgs.k8s.io version such as 1.36.4-1.1, or the `1.36.4-*` glob apt resolves
    to it; unpinned: the configured repository's newest, $STUB_KUBEADM_VERSION or KUBEADM_VERSION)."""
    package, _, version = spec.partition("=")
    for rel in PACKAGE_STUBS.get(package, {}).values():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(Path(__file__).resolve())
    if package in upgrade_stub.KUBERNETES_PACKAGES:
        resolved, _ = upgrade_stub.resolve(root, package, version, newest_kubeadm())
        assert resolved, spec  # apt_get refused it before
        path = upgrade_stub.dpkg(root, package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(resolved)


def newest_kubeadm() -> str:
    return os.environ.get("STUB_KUBEADM_VERSION", KUBEADM_VERSION)


def apt_get_install(root: Path, specs: list[str]) -> int:
    """apt resolves every package before it installs any: one it cannot resolve fails the call (exit 100)."""
    for spec in specs:
        package, _, version = spec.partition("=")
        if package in upgrade_stub.KUBERNETES_PACKAGES:
            resolved, error = upgrade_stub.resolve(root, package, version, newest_kubeadm())
            if resolved is None:
                print(error, file=sys.stderr)
                return 100
    for spec in specs:
        install(root, spec)
    return 0


def installed_kubeadm(root: Path) -> Path:
    return root / "var/lib/dpkg/kubeadm.version"


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def yaml_value(text: str, key: str) -> str:
    match = re.search(rf"^\s*{key}: \"?([^\"\n]+)\"?$", text, re.M)
    return match.group(1) if match else ""


def read_config(args: list[str], root: Path) -> str:
    return (root / flag(args, "--config").removeprefix(str(root)).lstrip("/")).read_text()


#: Flags of the API server that name a file it reads at start (kube-apiserver's options).
FILE_FLAGS = ("admission-control-config-file", "audit-policy-file", "encryption-provider-config")


def api_server_cannot_start(cluster_config: str, root: Path) -> list[str]:
    """What keeps the API server's static pod from running on this node, as kubeadm's ClusterConfiguration builds it:
    a hostPath volume of type Directory that does not exist (the kubelet refuses the pod) or a file a flag names that
    is not there (the API server exits). kubeadm's wait-control-plane phase then times out."""
    doc = next(d for d in yaml.safe_load_all(cluster_config) if d and d.get("kind") == "ClusterConfiguration")
    api = doc.get("apiServer", {})
    missing = [
        v["hostPath"]
        for v in api.get("extraVolumes", [])
        if v.get("pathType") == "Directory" and not (root / v["hostPath"].lstrip("/")).is_dir()
    ]
    files = [a["value"] for a in api.get("extraArgs", []) if a["name"] in FILE_FLAGS]
    return missing + [f for f in files if not (root / f.lstrip("/")).is_file()]


def kubeadm(args: list[str], root: Path, cluster: Cluster, failing: bool) -> int:
    conf = root / "etc/kubernetes"
    if args[:2] == ["version", "-o"]:
        print(installed_kubeadm(root).read_text())
    elif args[:1] == ["upgrade"] and not failing:
        return upgrade_stub.upgrade(args, root, cluster.path, etcd_stub.etcd_image)
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
        preflight = etcd_stub.init_preflight(root, args)
        if preflight:
            print(preflight, file=sys.stderr)
            return 1
        # kubeadm init's phases (cmd/kubeadm/app/cmd/init.go): certs and kubeconfig come before
        # wait-control-plane, so a failed init leaves admin.conf behind.
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "admin.conf").write_text(f"server: https://{yaml_value(config, 'controlPlaneEndpoint')}\n")
        if failing or api_server_cannot_start(config, root):
            print("[wait-control-plane] timed out waiting for the condition", file=sys.stderr)
            return 1
        # The ClusterConfiguration kubeadm stores in the kubeadm-config ConfigMap, which a joining control plane reads.
        (cluster.path / "kubeadm-config.yaml").write_text(config)
        cluster.register(yaml_value(config, "name"), control_plane=True)
        minor = int(installed_kubeadm(root).read_text().split(".")[1])
        etcd_stub.init_control_plane(
            root, cluster.path, yaml_value(config, "name"), minor, yaml_value(config, "advertiseAddress")
        )
        upgrade_stub.initialized(root, cluster.path)
        upgrade_stub.kubelet_started(root, cluster.path)  # kubeadm's kubelet-start phase
        if "--upload-certs" in args:  # init's upload-certs phase (cmd/kubeadm/app/cmd/phases/init/uploadcerts.go)
            print(f"[upload-certs] Using certificate key:\n{cluster.upload_certs()}")
    elif failing:
        return 1
    elif args[:3] == ["init", "phase", "upload-certs"]:
        # cmd/kubeadm/app/cmd/phases/init/uploadcerts.go: the key is printed last, on its own line.
        key = cluster.upload_certs()
        print('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
        print(f"[upload-certs] Using certificate key:\n{key}")
    elif args[:2] == ["token", "create"]:
        server = yaml_value((conf / "admin.conf").read_text(), "server").removeprefix("https://")
        key = flag(args, "--certificate-key") if "--certificate-key" in args else ""
        sys.stdout.write(join_command(server, cluster.new_token(), key))
    elif args[:1] == ["join"]:
        hung = Path(os.environ["STUB_DIR"]) / "join-hung"
        if os.environ.get("STUB_JOIN_HANG_ONCE") and not hung.exists():
            hung.touch()  # an attempt that never ends by itself (kubeadm's waits add up to 14-24 min)
            time.sleep(100)
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
        if key and api_server_cannot_start((cluster.path / "kubeadm-config.yaml").read_text(), root):
            print("[wait-control-plane] timed out waiting for the condition", file=sys.stderr)
            return 1
        preflight = join_preflight(root, control_plane=bool(key))
        if preflight:
            print(preflight, file=sys.stderr)
            return 1
        # kubeadm join's phases in order (cmd/kubeadm/app/cmd/join.go, newCmdJoin): preflight, control-plane-prepare (a
        # control plane's kubeconfigs, admin.conf among them, and its manifests), check-etcd, kubelet-start (the CA,
        # then kubelet.conf once the kubelet's TLS bootstrap is done: phases/join/kubelet.go), control-plane-join (the
        # etcd member, the control-plane label: phases/join/controlplanejoin.go).
        if key:
            (conf / "manifests").mkdir(parents=True, exist_ok=True)
            (conf / "manifests/kube-apiserver.yaml").write_text("stub\n")
            (conf / "admin.conf").write_text(f"server: https://{yaml_value(config, 'apiServerEndpoint')}\n")
            killed_after("control-plane-prepare")
        (conf / "pki").mkdir(parents=True, exist_ok=True)
        (conf / "pki/ca.crt").write_text("the cluster's CA\n")
        (conf / "kubelet.conf").write_text("stub\n")
        name = yaml_value(config, "name")
        cluster.register(name, control_plane=False)  # the kubelet registers its Node
        upgrade_stub.kubelet_started(root, cluster.path)
        killed_after("kubelet-start")
        if key:  # the control plane's certificates from the downloaded CAs, its etcd static pod, its member
            ip, minor = yaml_value(config, "advertiseAddress"), int(installed_kubeadm(root).read_text().split(".")[1])
            etcd_stub.write_certificates(root, cluster.path, name)
            etcd_stub.write_etcd_manifest(root, name, ip, minor)
            etcd_stub.add_member(cluster.path, name, ip)
            cluster.set_node(name, control_plane=True)  # mark-control-plane
    elif args[:3] == ["certs", "renew", "all"]:
        renew_certificates(root)
    elif args[:1] == ["reset"]:
        for name in ("admin.conf", "kubelet.conf", "manifests/kube-apiserver.yaml"):
            (conf / name).unlink(missing_ok=True)
        etcd_stub.reset(root)
    return 0


def join_preflight(root: Path, control_plane: bool) -> str | None:
    """kubeadm join's preflight (cmd/kubeadm/app/preflight/checks.go, RunJoinNodeChecks): the manifests directory
    absent or empty (DirAvailableCheck), kubelet.conf and bootstrap-kubelet.conf absent (FileAvailableCheck), and on a
    worker the CA certificate too; each check is named after its path with every / as - (FileAvailableCheck.Name)."""
    conf, errors = root / "etc/kubernetes", []
    manifests = conf / "manifests"
    if manifests.is_dir() and any(manifests.iterdir()):
        errors.append("DirAvailable--etc-kubernetes-manifests]: /etc/kubernetes/manifests is not empty")
    for name in ("kubelet.conf", "bootstrap-kubelet.conf", *(() if control_plane else ("pki/ca.crt",))):
        if (conf / name).exists():
            path = f"/etc/kubernetes/{name}"
            errors.append(f"FileAvailable-{path.replace('/', '-')}]: {path} already exists")
    if not errors:
        return None
    return "[preflight] Some fatal errors occurred:\n" + "".join(f"\t[ERROR {e}\n" for e in errors)


def killed_after(phase: str) -> None:
    """STUB_JOIN_KILLED_AFTER=PHASE: the node dies right after that phase of kubeadm join (a power loss, systemd
    stopping the unit): the bootstrap (the sandbox's session leader) and its whole process group, then this process's
    own group (`timeout` runs kubeadm in a group of its own)."""
    if os.environ.get("STUB_JOIN_KILLED_AFTER") == phase:
        os.killpg(os.getsid(0), signal.SIGKILL)
        os.killpg(os.getpgrp(), signal.SIGKILL)


#: What kubeadm makes and `certs renew all` renews (cmd/kubeadm/app/phases/certs/renewal/manager.go): the leaf
#: certificates under pki/, each signed for CertificateValidityPeriod (a year); the certificate authorities stay.
CERTIFICATE_AUTHORITIES = ("ca.crt", "front-proxy-ca.crt")


def renew_certificates(root: Path) -> None:
    for cert in sorted((root / "etc/kubernetes/pki").rglob("*.crt")):
        if cert.name not in CERTIFICATE_AUTHORITIES:
            issue_certificate(cert, days=365)
    for conf in (root / "etc/kubernetes").glob("*.conf"):  # the kubeconfig files' client certificates too
        text = conf.read_text()
        if "client-certificate-data:" in text:
            conf.write_text(re.sub(r"client-certificate-data: \S+", "client-certificate-data: " + embedded(365), text))


def embedded(days: int) -> str:
    """A client certificate as a kubeconfig embeds it: base64 of its PEM."""
    with tempfile.TemporaryDirectory() as tmp:
        cert = Path(tmp) / "client.crt"
        issue_certificate(cert, days)
        return base64.b64encode(cert.read_bytes()).decode()


def issue_certificate(cert: Path, days: int) -> None:
    """A certificate valid `days` from now, by the real openssl (its key beside it)."""
    cert.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(cert.with_suffix(".key")),
            "-out",
            str(cert),
            "-days",
            str(days),
            "-subj",
            f"/CN={cert.stem}",
        ],
        check=True,
        capture_output=True,
    )


def crictl(args: list[str], root: Path) -> int:
    """`ps --name ^NAME$ --state running -q` prints the static pod's running container; `stop ID` stops it and the
    kubelet starts a new one (a static pod's restartPolicy is Always), with the next ID."""
    state = root / "run/stub-containers.json"
    containers: dict[str, int] = json.loads(state.read_text()) if state.exists() else {}
    if "ps" in args:
        name = flag(args, "--name").strip("^$")
        print(f"{name}-{containers.get(name, 1)}")
    elif "stop" in args:
        name, _, number = args[args.index("stop") + 1].rpartition("-")
        containers[name] = int(number) + 1
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps(containers))
    return 0


def curl(args: list[str]) -> int:
    url = next(a for a in args if a.startswith("http"))
    if url.endswith(":6443/livez"):
        return etcd_stub.livez(Path(os.environ["STUB_CLUSTER"]))
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


def kubectl(args: list[str], cluster: Cluster) -> int:
    """`get nodes -l node-role.kubernetes.io/control-plane -o json` (a List as kubectl prints it, the Ready condition
    as the node lifecycle controller leaves it) and `-n kube-system delete secret kubeadm-certs --ignore-not-found`."""
    if "get" in args and "nodes" in args:
        selector = flag(args, "-l") if "-l" in args else ""
        assert selector in ("", "node-role.kubernetes.io/control-plane"), selector
        items = [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {"node-role.kubernetes.io/control-plane": ""} if node["control_plane"] else {},
                },
                "status": {"conditions": [{"type": "Ready", "status": node["ready"]}]},
            }
            for name, node in sorted(cluster.nodes().items())
            if node["control_plane"] or not selector
        ]
        print(json.dumps({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}))
    elif "delete" in args:
        assert args[args.index("delete") + 1 : args.index("delete") + 3] == ["secret", "kubeadm-certs"], args
        cluster.delete_secret()
    return 0


def enable(args: list[str], root: Path) -> int:
    """`systemctl enable [--now] UNIT...`: the real systemctl links a unit the bootstrap wrote where its [Install]
    section says (`--root` works on a directory tree without a running systemd); units that packages bring are not in
    the sandbox and are only recorded. Starting (`--now`) is the test's business, as booting is."""
    units = [u for u in args if not u.startswith("-") and (root / "etc/systemd/system" / u).is_file()]
    if not units:
        return 0
    real = shutil.which("systemctl", path="/usr/bin:/bin")
    assert real, "systemd's systemctl"
    return subprocess.run([real, f"--root={root}", "enable", *units], capture_output=True, check=False).returncode


def aws(args: list[str], cluster: Cluster) -> int:
    name = flag(args, "--name").rsplit("/", 1)[-1]
    param = cluster.ssm(name)
    if args[:2] == ["ssm", "put-parameter"]:
        param.write_text(Path(flag(args, "--value").removeprefix("file://")).read_text())
        return 0
    polls = Path(os.environ["STUB_DIR"]) / f"polls-{name}"  # this node's reads: STUB_JOIN_READY_AFTER counts them
    count = int(polls.read_text()) + 1 if polls.exists() else 1
    polls.write_text(str(count))
    later = param.with_suffix(".next")  # what control-plane-0's refresh publishes after this read
    if count > 1 and later.exists():
        later.rename(param)
    ready_after = int(os.environ.get("STUB_JOIN_READY_AFTER", "1")) if name.startswith("join-") else 1
    # Terraform creates each parameter with the placeholder "pending" (cdk/constructs/secrets.py).
    value = param.read_text() if param.exists() and 0 < ready_after <= count else "pending"
    print(value.rstrip("\n"))  # --output text prints the value and a newline
    return 0


def mirror_down(name: str, args: list[str], stub: Path) -> bool:
    """STUB_MIRRORS_DOWN_UNTIL=T: the package mirrors, the snap store and every download site do not answer until T
    seconds of the virtual clock (tests/bootstrap/clock.py); the instance metadata service and the API still do."""
    until = os.environ.get("STUB_MIRRORS_DOWN_UNTIL")
    clock = stub / "clock"
    if not until or (clock.exists() and float(clock.read_text()) >= float(until)):
        return False
    if name == "curl":
        return any(a.startswith("https://") and not a.endswith(":6443/livez") for a in args)
    return (name == "apt-get" and bool({"update", "install"} & set(args))) or (
        name == "snap" and args[:1] == ["install"]
    )


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
    if mirror_down(name, args, stub):
        print(f"{name}: the mirror does not answer (an outage)", file=sys.stderr)
        return 100 if name == "apt-get" else 1  # apt-get's exit code on a failed fetch
    if name == "kubeadm":
        return kubeadm(args, root, cluster, failing)
    if failing:
        print(f"{name}: simulated failure", file=sys.stderr)
        return 1
    if name == "apt-get" and "install" in args:
        return apt_get_install(root, [a for a in args[args.index("install") + 1 :] if not a.startswith("-")])
    elif name == "apt-mark":
        return upgrade_stub.apt_mark(args, root)
    elif name == "apt-cache" and args[:1] == ["madison"]:
        return upgrade_stub.madison(root, args[1])
    elif name == "kubelet" and args == ["--version"]:
        print(f"Kubernetes {upgrade_stub.installed(root, 'kubelet')}")
    elif name == "systemctl" and args == ["restart", "kubelet"]:
        upgrade_stub.kubelet_started(root, cluster.path)
    elif name == "snap" and args[:1] == ["install"]:
        install(root, f"snap:{args[1]}")
    elif name == "containerd" and args[:2] == ["config", "default"]:
        print(CONTAINERD_1_7_DEFAULT, end="")
    elif name == "curl":
        return curl(args)
    elif name == "aws" and args[:1] == ["ssm"]:
        return aws(args, cluster)
    elif name == "aws" and args[:1] in (["s3"], ["s3api"]):
        return etcd_stub.s3(args, cluster.path)
    elif name == "ctr":
        return etcd_stub.ctr(args, root, cluster.path)
    elif name == "kubectl":
        answered = upgrade_stub.kubectl(args, root, cluster.path)
        return kubectl(args, cluster) if answered is None else answered
    elif name == "crictl":
        return crictl(args, root)
    elif name == "systemctl" and args[:1] == ["enable"]:
        return enable(args[1:], root)
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

"""Rendered user data: cloud-init schema, shellcheck, MIME/gzip round trip, EC2's 16 KB limit, no secrets."""

from __future__ import annotations

import base64
import configparser
import csv
import dataclasses
import email
import email.policy
import fnmatch
import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from cdk import userdata
from cdk.config import ClusterConfig
from cdk.ipplan import IpPlan, Node, make_plan
from tests.conftest import REPO

SHARED = Path(__file__).resolve().parents[3] / "shared"

CONFIGS = {
    "default": ClusterConfig(),
    "softroce": ClusterConfig.model_validate({"workers": {"instance_type": "m7i.xlarge", "rdma": "softroce"}}),
    "none": ClusterConfig.model_validate({"workers": {"instance_type": "m7i.large", "rdma": "none"}}),
    # The largest supported configuration: HA, the most workers, as many prefixes as a /16 VPC leaves room for
    # (64 x 7 /28 + 3 control planes x 1 in the /19 pod block of a /17 node subnet), the most apps, the longest name.
    "largest": ClusterConfig.model_validate(
        {
            "name": "a-cluster-name-of-thirty-two-chr",
            "control_plane": {"count": 3},
            "workers": {"count": 64, "instance_type": "c5n.18xlarge", "ipv4_prefixes": 7},
            "sample_apps": {"count": 20, "ips_per_node": 6},
            "vpc_cidr": "10.0.0.0/16",
            "node_subnet_cidr": "10.0.0.0/17",
            "public_subnet_cidr": "10.0.255.0/24",
            "tags": {f"tag{i}": "x" * 64 for i in range(20)},
        }
    ),
}


def every_node() -> list[tuple[str, ClusterConfig, IpPlan, Node]]:
    out = []
    for name, config in CONFIGS.items():
        plan = make_plan(config)
        roles = {userdata.node_role(n): n for n in plan.nodes}  # one node per distinct role
        out += [(f"{name}-{role}", config, plan, node) for role, node in roles.items()]
    return out


NODES = every_node()
IDS = [n[0] for n in NODES]


@pytest.mark.parametrize(("name", "config", "plan", "node"), NODES, ids=IDS)
def test_user_data_fits_ec2_and_decodes_back_to_its_parts(
    name: str, config: ClusterConfig, plan: IpPlan, node: Node
) -> None:
    ud = userdata.render(config, plan, node)
    raw = base64.b64decode(ud.base64())
    assert len(raw) <= userdata.EC2_USER_DATA_LIMIT, f"{name}: {len(raw)} bytes"
    message = email.message_from_bytes(gzip.decompress(raw), policy=email.policy.default)
    parts = [(p.get_content_type(), p.get_content()) for p in message.walk() if not p.is_multipart()]
    assert parts == [("text/cloud-config", ud.cloud_config), ("text/x-shellscript", ud.shell)]


@pytest.mark.parametrize(("name", "config", "plan", "node"), NODES, ids=IDS)
def test_cloud_config_passes_cloud_init_schema(
    name: str, config: ClusterConfig, plan: IpPlan, node: Node, tmp_path: Path
) -> None:
    path = tmp_path / "cloud-config.yaml"
    path.write_text(userdata.render(config, plan, node).cloud_config)
    proc = subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Valid cloud-config" in proc.stdout


@pytest.mark.parametrize(("name", "config", "plan", "node"), NODES, ids=IDS)
def test_scripts_pass_shellcheck(name: str, config: ClusterConfig, plan: IpPlan, node: Node, tmp_path: Path) -> None:
    """Lay the node's files out as on the node and check them the way bash will source them."""
    ud = userdata.render(config, plan, node)
    for path, text in {**ud.scripts, "/var/lib/cloud/start.sh": ud.shell}.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    files = sorted(str(p) for p in tmp_path.rglob("*") if p.suffix in {".sh", ".env"})
    proc = subprocess.run(
        ["shellcheck", "--shell=bash", "--external-sources", "--source-path=SCRIPTDIR", "--severity=style", *files],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout


def test_no_secret_travels_in_user_data() -> None:
    for _name, config, plan, node in NODES:
        text = gzip.decompress(base64.b64decode(userdata.render(config, plan, node).base64())).decode()
        assert "--token " not in text.replace("--token ([a-z0-9]", "")  # only the pattern, never a token
        assert "BEGIN CERTIFICATE" not in text and "BEGIN RSA PRIVATE KEY" not in text
        assert "discovery-token-unsafe-skip-ca-verification" not in text


def test_every_bootstrap_script_is_shipped() -> None:
    """A script in bootstrap/ that no node receives would be dead code."""
    shipped = set()
    for _name, config, plan, node in NODES:
        shipped |= {Path(p).name for p in userdata.node_files(config, plan, node)}
    templates = {p.name for p in userdata.BOOTSTRAP_DIR.iterdir()}
    rendered_as = {"rdma-efa.sh": "rdma.sh", "init.sh": "role.sh", "join.sh": "role.sh"}  # templates lose .j2
    # sent to a node through SSM when an operation needs it (ops/ssm.py), never in the user data
    operations = {"etcd-restore.sh", "upgrade-node.sh"}
    for t in templates - {"start.sh", "rdma-softroce.sh", "rdma-none.sh", "__pycache__"} - operations:
        assert rendered_as.get(t, t.removesuffix(".j2")) in shipped, t
    for script in operations:
        assert f'"{script}"' in "".join(p.read_text() for p in (REPO / "ops").glob("*.py")), script


@pytest.mark.parametrize("control_planes", [1, 3])
def test_kubeadm_init_configuration(control_planes: int) -> None:
    config = ClusterConfig.model_validate({"control_plane": {"count": control_planes}})
    plan = make_plan(config)
    docs = list(yaml.safe_load_all(userdata.kubeadm_init_config(config, plan, plan.control_planes[0])))
    init, cluster, kubelet = docs
    assert init["apiVersion"] == cluster["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert init["kind"] == "InitConfiguration" and cluster["kind"] == "ClusterConfiguration"
    assert init["nodeRegistration"]["name"] == "control-plane-0"
    args = {a["name"]: a["value"] for a in init["nodeRegistration"]["kubeletExtraArgs"]}
    assert args["node-ip"] == str(plan.control_planes[0].private_ip)
    assert "node.kubernetes.io/instance-type=m7i.large" in args["node-labels"].split(",")
    assert cluster["networking"] == {"podSubnet": str(config.pod_cidr), "serviceSubnet": str(config.service_cidr)}
    sans = cluster["apiServer"]["certSANs"]
    assert {"127.0.0.1", "localhost", f"api.{config.name}.internal"} <= set(sans)
    assert {str(cp.private_ip) for cp in plan.control_planes} <= set(sans)
    assert cluster["controlPlaneEndpoint"] == f"api.{config.name}.internal:6443"
    assert kubelet["cgroupDriver"] == "systemd"


def test_linters_reject_what_they_should(tmp_path: Path) -> None:
    """Controls: the same linter calls fail on a wrong cloud-config and a sloppy script."""
    assert shutil.which("shellcheck") and shutil.which("cloud-init")
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("#cloud-config\nwrite_files:\n  - path: /x\n    permissions: 644\n    bogus: 1\n")
    proc = subprocess.run(["cloud-init", "schema", "--config-file", str(bad_config)], capture_output=True, text=True)
    assert proc.returncode != 0
    bad_script = tmp_path / "bad.sh"
    bad_script.write_text("#!/bin/bash\nrm -rf $DIR/*\n")
    proc = subprocess.run(["shellcheck", "--severity=style", str(bad_script)], capture_output=True, text=True)
    assert proc.returncode != 0 and "SC2086" in proc.stdout


@pytest.mark.parametrize(("name", "config", "plan", "node"), NODES[:3], ids=IDS[:3])
def test_rendering_twice_gives_the_same_bytes(name: str, config: ClusterConfig, plan: IpPlan, node: Node) -> None:
    """A changed user_data stops and starts the instance: an unchanged configuration must render identically."""
    first, second = userdata.render(config, plan, node), userdata.render(config, plan, node)
    assert first.mime() == second.mime()
    assert first.base64() == second.base64()


def test_the_mime_boundary_changes_with_the_content() -> None:
    """The boundary is derived from the parts: different content, different boundary, and never inside a part."""
    _, config, plan, node = NODES[0]
    ud = userdata.render(config, plan, node)
    other = userdata.UserData(ud.cloud_config + "# changed\n", ud.shell, ud.scripts)
    boundaries = [email.message_from_bytes(u.mime()).get_boundary() for u in (ud, other)]
    assert boundaries[0] != boundaries[1]
    assert all(b and b not in ud.cloud_config + ud.shell for b in boundaries)


def units(config: ClusterConfig, plan: IpPlan, node: Node) -> dict[str, str]:
    return {p: t for p, t in userdata.node_files(config, plan, node).items() if p.endswith((".service", ".timer"))}


@pytest.mark.parametrize(("name", "config", "plan", "node"), NODES, ids=IDS)
def test_units_pass_systemd_analyze_verify(
    name: str, config: ClusterConfig, plan: IpPlan, node: Node, tmp_path: Path
) -> None:
    """systemd's own check (unknown keys, Restart= a oneshot cannot have, missing units), with the scripts
    the units run laid out under tmp_path and the units pointed at them."""
    files = userdata.node_files(config, plan, node)
    for path, text in files.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o755)
    paths = []
    for path, text in units(config, plan, node).items():
        target = tmp_path / Path(path).name
        target.write_text(text.replace(f"ExecStart={userdata.LIB}", f"ExecStart={tmp_path}{userdata.LIB}"))
        paths.append(str(target))
    proc = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_the_bootstrap_unit_restarts_on_failure_and_outlasts_the_join_deadline() -> None:
    _, config, plan, node = next(n for n in NODES if n[0] == "default-worker")
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string(units(config, plan, node)["/etc/systemd/system/spiderpool-rdma-bootstrap.service"])
    env = dict(
        line.split("=", 1)
        for line in userdata.node_files(config, plan, node)["/etc/spiderpool-rdma/node.env"].splitlines()
        if line.startswith("SPR_JOIN_TIMEOUT=")
    )
    service = unit["Service"]
    assert service["Type"] == "oneshot" and service["Restart"] == "on-failure" and int(service["RestartSec"]) >= 10
    assert int(unit["Unit"]["StartLimitBurst"]) >= 3
    # The README's "20 minutes with the EFA installer", and the whole join deadline, must fit in one start.
    assert int(service["TimeoutStartSec"]) > 20 * 60 + int(env["SPR_JOIN_TIMEOUT"])


def kubelet_matches(glob: str, image: str) -> bool:
    """The kubelet's rule for matchImages (kubernetes pkg/credentialprovider/keyring.go, urlsMatch): same number
    of dot-separated host labels, each matched by filepath.Match, equal ports, the glob's path a prefix."""
    g, t = urlsplit("https://" + glob), urlsplit("https://" + image)
    g_parts, t_parts = (g.hostname or "").split("."), (t.hostname or "").split(".")
    return (
        g.port == t.port
        and len(g_parts) == len(t_parts)
        and t.path.startswith(g.path)
        and all(fnmatch.fnmatchcase(tp, gp) for gp, tp in zip(g_parts, t_parts, strict=True))
    )


#: The hosts cloud-provider-aws's plugin serves (cmd/ecr-credential-provider/main.go, ecrPrivateHostPattern).
ECR_PRIVATE_HOST = re.compile(
    r"^(\d{12})\.dkr[\.\-]ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|"
    r"amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$"
)


def test_the_credential_provider_covers_the_efa_device_plugins_registry() -> None:
    _, config, plan, node = NODES[0]
    provider_config = yaml.safe_load(userdata.node_files(config, plan, node)[userdata.CREDENTIAL_PROVIDER_CONFIG])
    assert provider_config["apiVersion"] == "kubelet.config.k8s.io/v1"
    globs = provider_config["providers"][0]["matchImages"]
    # The EFA device plugin chart's own image, and the same registry in other regions.
    values = yaml.safe_load((SHARED / "upstream/aws-efa-k8s-device-plugin/values.yaml").read_text())
    images = [values["image"]["repository"]] + [
        f"602401143452.dkr.ecr.{r}.amazonaws.com/eks/aws-efa-k8s-device-plugin" for r in ("us-east-1", "eu-west-1")
    ]
    for image in images:
        assert any(kubelet_matches(g, image) for g in globs), image
        assert ECR_PRIVATE_HOST.match(image.split("/")[0]), image
    assert not any(kubelet_matches(g, "registry.k8s.io/pause") for g in globs)
    assert not any(kubelet_matches(g, "602401143452.dkr.ecr.us-east-1.amazonaws.com.evil.io/x") for g in globs)


def admits(admission: dict, namespace: str, labels: dict[str, str], pod_spec: dict) -> bool:
    """Pod Security Admission's decision for a pod's host namespaces: an exempt namespace admits anything; otherwise
    the namespace's enforce label, else the configured default, decides (kubernetes staging pod-security-admission
    admission/admission.go); baseline forbids hostNetwork, hostPID and hostIPC (policy/check_hostNamespaces.go)."""
    psa = next(p["configuration"] for p in admission["plugins"] if p["name"] == "PodSecurity")
    if namespace in psa["exemptions"]["namespaces"]:
        return True
    level = labels.get("pod-security.kubernetes.io/enforce", psa["defaults"]["enforce"])
    return level == "privileged" or not any(pod_spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))


def test_pod_security_admission_keeps_host_network_pods_out_of_ordinary_namespaces() -> None:
    config = CONFIGS["largest"]  # HA: joining control planes need the file too
    plan = make_plan(config)
    init = yaml.safe_load_all(userdata.kubeadm_init_config(config, plan, plan.control_planes[0]))
    api = next(d for d in init if d["kind"] == "ClusterConfiguration")["apiServer"]
    flag = {a["name"]: a["value"] for a in api["extraArgs"]}["admission-control-config-file"]
    assert any(Path(flag).parent == Path(v["hostPath"]) == Path(v["mountPath"]) for v in api["extraVolumes"])
    for node in plan.control_planes:
        admission = yaml.safe_load(userdata.node_files(config, plan, node)[flag])
        assert admission["kind"] == "AdmissionConfiguration"
        host = {"hostNetwork": True}
        assert not admits(admission, "default", {}, host) and not admits(admission, "apps", {}, host)
        assert admits(admission, "kube-system", {}, host)  # Spiderpool, device plugins, the chart's job
        assert admits(admission, "default", {}, {"containers": []})
    assert flag not in userdata.node_files(config, plan, plan.workers[0])


#: A label value (k8s.io/apimachinery pkg/util/validation/validation.go, IsValidLabelValue): at most 63 characters.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def shared_network_gbps(instance_type: str) -> float:
    with (SHARED / "upstream/aws-ec2-instance-types.csv").open(newline="") as fh:
        return float(next(r for r in csv.DictReader(fh) if r["instance_type"] == instance_type)["network_gbps"])


@pytest.mark.parametrize("config_name", ["default", "softroce"])
def test_nodes_are_labelled_with_their_network_bandwidth(config_name: str) -> None:
    config = CONFIGS[config_name]
    plan = make_plan(config)
    for node, itype in ((plan.workers[0], config.workers.instance_type), (plan.control_planes[0], "m7i.large")):
        labels = dict(kv.split("=", 1) for kv in userdata.node_labels(config, node).split(","))
        assert float(labels["spiderpool-rdma/network-gbps"]) == shared_network_gbps(itype)
        assert all(LABEL_VALUE.match(v) and len(v) <= 63 for v in labels.values()), labels
        assert labels["spiderpool-rdma/rdma"] == (config.workers.rdma.value if node.role == "worker" else "none")


def test_no_bandwidth_label_when_the_type_has_no_known_bandwidth(monkeypatch: pytest.MonkeyPatch) -> None:
    config = CONFIGS["default"]
    plan = make_plan(config)
    unknown = dataclasses.replace(userdata._instance_table().get("c5n.9xlarge"), network_gbps=0)  # type: ignore[type-var]
    monkeypatch.setattr(userdata._instance_table(), "get", lambda name: unknown)
    assert "network-gbps" not in userdata.node_labels(config, plan.workers[0])


#: How cloud-init 22.4 (Debian's, the one installed here) reads the setting: the merged system configuration
#: (/etc/cloud/cloud.cfg and cloud.cfg.d/*.cfg, util.read_conf_with_confd), the datasource's section
#: (sources/__init__.py: ds_cfg = get_cfg_by_path(sys_cfg, ("datasource", dsname))), and DataSourceEc2's default on.
CLOUD_INIT_READS = """
import sys
from cloudinit import util
from cloudinit.sources.DataSourceEc2 import DataSourceEc2
sys_cfg = util.read_conf_with_confd(sys.argv[1])
ds_cfg = util.get_cfg_by_path(sys_cfg, ("datasource", DataSourceEc2.dsname), {})
print(util.get_cfg_option_bool(ds_cfg, "apply_full_imds_network_config", True))
"""


@pytest.mark.parametrize(("name", "config", "plan", "node"), NODES[:3], ids=IDS[:3])
def test_cloud_init_does_not_put_the_enis_addresses_on_the_host(
    name: str, config: ClusterConfig, plan: IpPlan, node: Node, tmp_path: Path
) -> None:
    source = Path("/usr/lib/python3/dist-packages/cloudinit/sources/DataSourceEc2.py").read_text()
    assert '"apply_full_imds_network_config", True' in source  # the key DataSourceEc2 reads, on by default
    etc = tmp_path / "etc/cloud"
    (etc / "cloud.cfg.d").mkdir(parents=True)
    (etc / "cloud.cfg").write_text("datasource_list: [Ec2]\n")
    for path, text in userdata.node_files(config, plan, node).items():
        if path.startswith("/etc/cloud/cloud.cfg.d/"):
            (etc / "cloud.cfg.d" / Path(path).name).write_text(text)
    proc = subprocess.run(
        ["/usr/bin/python3", "-c", CLOUD_INIT_READS, str(etc / "cloud.cfg")], capture_output=True, text=True
    )
    assert proc.stdout.strip() == "False", proc.stdout + proc.stderr


sys.path.insert(0, str(REPO / "scripts"))
import pin_ecr_credential_provider as pin  # noqa: E402

UPSTREAM = REPO / "tests" / "fixtures" / "upstream"


def test_the_ecr_credential_provider_pin_is_upstreams_record_of_what_artifacts_k8s_io_serves() -> None:
    """The shipped version and digests are what the pin script takes from kubernetes/k8s.io's promotion manifest."""
    version = userdata.ecr_provider()["version"]
    manifest = (UPSTREAM / f"k8s-staging-provider-aws-{version}.yaml").read_text()
    expected = pin.pins(version, manifest, pin.MANIFEST.format(version))
    assert userdata.ECR_PROVIDER_FILE.read_text() == json.dumps(expected, indent=1) + "\n"


def test_a_version_artifacts_k8s_io_does_not_serve_cannot_be_pinned() -> None:
    manifest = (UPSTREAM / "k8s-staging-provider-aws-v1.33.0.yaml").read_text()
    missing = "promotes no v1.33.0/linux/amd64/ecr-credential-provider-linux-amd64"
    with pytest.raises(SystemExit, match=re.escape(missing)):
        pin.pins("v1.33.0", manifest, "v1.33.0.yaml")


@pytest.mark.parametrize(
    ("control_plane", "worker", "arch"), [("m7i.large", "m7i.large", "amd64"), ("m7g.large", "m7g.xlarge", "arm64")]
)
def test_each_node_gets_the_digest_of_its_architecture(control_plane: str, worker: str, arch: str) -> None:
    config = ClusterConfig.model_validate(
        {"control_plane": {"instance_type": control_plane}, "workers": {"instance_type": worker, "rdma": "none"}}
    )
    plan = make_plan(config)
    for node in (plan.control_planes[0], plan.workers[0]):
        env = userdata.node_files(config, plan, node)["/etc/spiderpool-rdma/node.env"]
        assert f"SPR_ECR_PROVIDER_SHA256={userdata.ecr_provider()['sha256'][arch]}\n" in env


def test_the_nodes_get_every_line_of_the_bootstrap_but_its_comments() -> None:
    """Comments stay in the repository (EC2's 16 KB); code, shebangs and shellcheck directives all reach the node."""
    _, config, plan, node = NODES[0]
    shipped = userdata.node_files(config, plan, node)
    script = shipped[f"{userdata.LIB}/lib.sh"]
    source = (userdata.BOOTSTRAP_DIR / "lib.sh").read_text().splitlines()
    assert script.splitlines() == [line for line in source if not line.lstrip().startswith("#") or "shellcheck" in line]
    assert shipped[f"{userdata.LIB}/bootstrap.sh"].startswith("#!/usr/bin/env bash\n")
    assert "# shellcheck source=lib.sh" in shipped[f"{userdata.LIB}/bootstrap.sh"]
    comments = [
        (path, line)
        for path, text in shipped.items()
        for line in text.splitlines()
        if line.lstrip().startswith("#") and not line.startswith("#!") and not line.startswith("# shellcheck ")
    ]
    assert comments == []

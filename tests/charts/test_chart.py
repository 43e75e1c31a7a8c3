"""The umbrella chart with its real subcharts: helm lint and template per profile, Kubernetes and CRD schemas,
contracts, checkov."""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
import subprocess
import warnings
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from spider_validate.cluster import addresses

from cdk.ec2_types import InstanceTable
from tests import chart
from tests.conftest import REPO, SHARED, Synthesized
from tests.crds import is_custom, validate_custom
from tests.upstream import ping, rdma_shared_dp, scheduling, spiderpool, sriov_webhook

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
AWS_PROFILES = [p for p in chart.PROFILES if p.startswith("aws-")]
CASES = [(p, g) for p in chart.PROFILES for g in (False, True)]
CASE_IDS = [f"{p}{'+generated' if g else ''}" for p, g in CASES]


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chart.packaged_copy(tmp_path_factory.mktemp("chart"))


@pytest.fixture(scope="module")
def generated(table: InstanceTable, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return chart.generated_values("default-efa", table, tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="module")
def rendered_with_sources(chart_dir: Path, generated: dict[str, Any]) -> dict[tuple[str, bool], list[chart.Rendered]]:
    return {
        (p, g): chart.helm_template(chart_dir, chart.profile_values(p), *([generated] if g else [])) for p, g in CASES
    }


@pytest.fixture(scope="module")
def rendered(rendered_with_sources: Any) -> dict[tuple[str, bool], list[dict[str, Any]]]:
    return {case: [r.obj for r in objs] for case, objs in rendered_with_sources.items()}


def test_the_profiles_are_the_documented_four() -> None:
    assert chart.PROFILES == ["aws-efa", "aws-softroce", "baremetal-sriov", "kind"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_the_real_subcharts_are_rendered(case: tuple[str, bool], rendered_with_sources: Any) -> None:
    """Helm's loader honours .helmignore for charts/*.tgz too: an ignored archive is a missing dependency."""
    profile, _ = case
    subcharts = {r.source.split("/")[2] for r in rendered_with_sources[case] if r not in chart.own([r])}
    assert subcharts == {"spiderpool"} | ({"aws-efa-k8s-device-plugin"} if profile == "aws-efa" else set())
    kinds = {(r.obj["kind"], r.obj["metadata"]["name"]) for r in rendered_with_sources[case]}
    assert ("DaemonSet", "spiderpool-agent") in kinds and ("Job", "spiderpool-init") in kinds


@pytest.mark.parametrize(("profile", "with_generated"), CASES, ids=CASE_IDS)
def test_helm_lint(
    profile: str, with_generated: bool, chart_dir: Path, generated: dict[str, Any], tmp_path: Path
) -> None:
    args = ["-f", str(chart.CHART / f"values-{profile}.yaml")]
    if with_generated:
        (tmp_path / "generated.yaml").write_text(yaml.safe_dump(generated))
        args += ["-f", str(tmp_path / "generated.yaml")]
    proc = subprocess.run([chart.HELM, "lint", "--strict", str(chart_dir), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_builtin_objects_pass_kubernetes_validate_strict(case: tuple[str, bool], rendered: Any) -> None:
    builtins = [o for o in chart.all_objects(rendered[case]) if not is_custom(o)]
    assert {o["kind"] for o in builtins} >= {"Job", "Pod", "ConfigMap", "ClusterRole", "Role", "ServiceAccount"}
    for obj in builtins:
        kubernetes_validate.validate(obj, chart.KUBE_MINOR, strict=True)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_custom_resources_pass_the_spiderpool_crd_schemas(case: tuple[str, bool], rendered: Any) -> None:
    custom = [o for o in chart.all_objects(rendered[case]) if is_custom(o)]
    assert any(o["kind"] == "SpiderMultusConfig" for o in custom)
    for obj in custom:
        validate_custom(obj)


def test_crd_check_rejects_an_unknown_field() -> None:
    import jsonschema

    bad = {
        "apiVersion": "spiderpool.spidernet.io/v2beta1",
        "kind": "SpiderMultusConfig",
        "metadata": {"name": "x"},
        "spec": {"cniType": "sriov", "sriov": {"enableRdma": True}},
    }
    with pytest.raises(jsonschema.ValidationError, match="enableRdma"):
        validate_custom(bad)


def test_sriov_profile_has_rdma_policy_and_isolated_network(rendered: Any) -> None:
    objs = chart.applied_objects(rendered[("baremetal-sriov", False)])
    (policy,) = [o for o in objs if o["kind"] == "SriovNetworkNodePolicy"]
    assert policy["spec"]["isRdma"] is True
    sriov = [o for o in objs if o["kind"] == "SpiderMultusConfig" and o["spec"]["cniType"] == "sriov"]
    assert sriov[0]["spec"]["sriov"]["rdmaIsolation"] is True


def flatten_keys(data: Any, prefix: str = "") -> set[str]:
    if not isinstance(data, dict):
        return {prefix}
    keys = set()
    for k, v in data.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        keys |= flatten_keys(v, path) if isinstance(v, dict) and v else {path}
    return keys


def upstream_keys(path: Path) -> set[str]:
    keys = flatten_keys(yaml.safe_load(path.read_text()))
    return keys | {k.rsplit(".", i)[0] for k in keys for i in range(1, k.count(".") + 1)}


@pytest.mark.parametrize(
    ("subchart", "upstream"),
    [
        ("spiderpool", SHARED / "upstream" / "spiderpool-v1.2.2" / "values.yaml"),
        ("aws-efa-k8s-device-plugin", SHARED / "upstream" / "aws-efa-k8s-device-plugin" / "values.yaml"),
    ],
)
def test_every_subchart_key_we_set_exists_upstream(subchart: str, upstream: Path) -> None:
    """Helm ignores a misspelt subchart key silently: this is the only guard."""
    known = upstream_keys(upstream)
    checked = 0
    for profile in chart.PROFILES:
        ours = chart.profile_values(profile).get(subchart) or {}
        for key in flatten_keys(ours):
            assert key in known, f"values-{profile}.yaml sets {subchart}.{key}, which {upstream.name} does not have"
            checked += 1
    assert checked > 0


def test_contract_catches_a_typo() -> None:
    known = upstream_keys(SHARED / "upstream" / "spiderpool-v1.2.2" / "values.yaml")
    assert "ipam.enableStatefulSet" in known and "ipam.enableStatefullSet" not in known


def expand(ranges: list[str]) -> set[str]:
    return set(addresses.expand(ranges))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pools_do_not_overlap_and_each_app_owns_its_pools(case: tuple[str, bool], rendered: Any) -> None:
    objs = chart.applied_objects(rendered[case])
    pools = {o["metadata"]["name"]: o for o in objs if o["kind"] == "SpiderIPPool"}
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    profile, with_generated = case
    expected_apps = 0 if profile in AWS_PROFILES and not with_generated else 3  # no pools, no apps
    assert len(deployments) == expected_apps
    for a, b in itertools.combinations(pools.values(), 2):
        assert not expand(a["spec"]["ips"]) & expand(b["spec"]["ips"]), (a["metadata"]["name"], b["metadata"]["name"])
    for deploy in deployments:
        app = deploy["metadata"]["labels"]["spiderpool-rdma/app"]
        annotations = deploy["spec"]["template"]["metadata"]["annotations"]
        raw = annotations.get("ipam.spidernet.io/ippool") or annotations["ipam.spidernet.io/ippools"]
        parsed = json.loads(raw)
        names = parsed["ipv4"] if isinstance(parsed, dict) else parsed[0]["ipv4"]
        assert names, f"{app} has no pool"
        assert {pools[n]["metadata"]["labels"]["spiderpool-rdma/app"] for n in names} == {app}
        assert set(names) == {n for n, p in pools.items() if p["metadata"]["labels"].get("spiderpool-rdma/app") == app}


def test_pool_nodes_are_nodes_of_the_generated_values(rendered: Any, generated: dict[str, Any]) -> None:
    nodes = {n for p in generated["network"]["pools"] for n in p["nodeName"]}
    for profile in AWS_PROFILES:
        for pool in (o for o in chart.applied_objects(rendered[(profile, True)]) if o["kind"] == "SpiderIPPool"):
            assert set(pool["spec"]["nodeName"]) <= nodes


def test_each_workers_pools_equal_its_eni_prefixes(rendered: Any, synthesized: dict[str, Synthesized]) -> None:
    """The contract between synthesis and chart, read back from the Terraform ENIs, not from the plan."""
    s = synthesized["default-efa"]
    enis = s.stack["resource"]["aws_network_interface"].values()
    by_node = {e["tags"]["Name"].removeprefix(f"{s.config.name}-"): e.get("ipv4_prefixes", []) for e in enis}
    pools = [o for o in chart.applied_objects(rendered[("aws-efa", True)]) if o["kind"] == "SpiderIPPool"]
    workers = {n for n, prefixes in by_node.items() if prefixes}
    assert workers == {p["spec"]["nodeName"][0] for p in pools}
    for node in workers:
        pool_ips = set().union(*(expand(p["spec"]["ips"]) for p in pools if p["spec"]["nodeName"] == [node]))
        eni_ips = {str(ip) for prefix in by_node[node] for ip in ipaddress.ip_network(prefix)}
        assert pool_ips == eni_ips


def test_network_objects_are_applied_by_a_hook_after_the_webhook_is_ready(rendered_with_sources: Any) -> None:
    objs = [r.obj for r in chart.own(rendered_with_sources[("aws-efa", True)])]
    assert not [o for o in objs if is_custom(o)], "custom resources at top level would race Spiderpool's webhook"
    assert not [o for o in objs if o["kind"] == "Deployment"], "apps would block --wait before the pools exist"
    (apply_job,) = [o for o in objs if o["kind"] == "Job" and o["metadata"]["name"].endswith("-apply")]
    assert apply_job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade,post-rollback"
    pod = apply_job["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["command"][:2] == ["kubectl", "wait"]
    assert "deployment/spiderpool-controller" in pod["initContainers"][0]["command"]
    assert pod["initContainers"][2]["command"][:3] == ["kubectl", "apply", "--server-side"]
    assert apply_job["spec"]["backoffLimit"] >= 5
    order = [o["kind"] for o in chart.applied_objects(objs)]
    assert order.index("Deployment") > max(
        i for i, k in enumerate(order) if k in {"SpiderIPPool", "SpiderMultusConfig"}
    )
    (delete_job,) = [o for o in objs if o["kind"] == "Job" and o["metadata"]["name"].endswith("-delete")]
    assert delete_job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sampleApps": {"count": -1}}, "at '/sampleApps/count': minimum: got -1, want 0"),
        ({"sampleAps": {"count": 2}}, "additional properties 'sampleAps' not allowed"),
        # a policy without a PF: the SR-IOV webhook refuses an empty nicSelector (tests/upstream/sriov_webhook.py)
        ({"sriov": {"enabled": True}}, "at '/sriov/pfNames': minItems: got 0, want 1"),
        (
            {
                "network": {
                    "cniType": "macvlan",
                    "master": ["eth0"],
                    "pools": [{"name": "p", "subnet": "10.0.0.0/24", "ips": ["10.0.0.300-10.0.0.5"]}],
                }
            },
            "at '/network/pools/0/ips/0'",
        ),
    ],
)
def test_schema_rejects_bad_values_with_helms_message(
    values: dict[str, Any], message: str, chart_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(values))
    proc = subprocess.run(
        [chart.HELM, "template", "x", str(chart_dir), "-f", str(tmp_path / "bad.yaml")], capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr and message in proc.stderr


def checkov_failures(objs: list[dict[str, Any]], tmp_path: Path) -> tuple[list[tuple[str, str]], int]:
    """(check id, resource) of every failed check, and the number of passed checks."""
    for i, obj in enumerate(objs):
        (tmp_path / f"{i:03d}-{obj['kind']}.yaml").write_text(yaml.safe_dump(obj))
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(tmp_path), "--framework", "kubernetes", "--skip-download", "-o", "json", "--quiet"],
        capture_output=True,
        text=True,
    )
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [(c["check_id"], c["resource"]) for c in report.get("results", {}).get("failed_checks", [])]
    return failed, int(report["summary"]["passed"])


@pytest.mark.parametrize("profile", chart.PROFILES)
def test_checkov_passes_on_the_charts_own_objects(profile: str, rendered_with_sources: Any, tmp_path: Path) -> None:
    own = [r.obj for r in chart.own(rendered_with_sources[(profile, profile in AWS_PROFILES)])]
    failed, passed = checkov_failures(list(chart.all_objects(own)), tmp_path)
    assert failed == []
    assert passed > 50


SKIP_ANNOTATION = re.compile(r"checkov\.io/skip\d+")


def skipped(obj: dict[str, Any]) -> dict[str, str]:
    """The checks an object's annotations skip, with the reason each gives (`CHECK=reason`)."""
    annotations = obj["metadata"].get("annotations") or {}
    return dict(v.partition("=")[::2] for k, v in annotations.items() if SKIP_ANNOTATION.fullmatch(k))


@pytest.mark.parametrize("profile", chart.PROFILES)
def test_checkov_fails_exactly_what_the_chart_skips_without_its_skips(
    profile: str, chart_dir: Path, tmp_path: Path
) -> None:
    """Each skip is needed (its check fails without it) and says why; the watch on, its image by tag only, so that
    the skip the chart adds for an image without a digest is there too."""
    watch = {"watch": {"enabled": True, "image": {"registry": "r.example.com", "repository": "v", "tag": "1"}}}
    rendered = chart.helm_template(chart_dir, chart.profile_values(profile), watch)
    own = list(chart.all_objects([r.obj for r in chart.own(rendered)]))
    declared = {(check, o["kind"], o["metadata"]["name"]): why for o in own for check, why in skipped(o).items()}
    assert declared and all(len(why) > 20 for why in declared.values())
    bare = json.loads(json.dumps(own))
    for obj in bare:
        annotations = obj["metadata"].get("annotations") or {}
        for key in [k for k in annotations if SKIP_ANNOTATION.fullmatch(k)]:
            del annotations[key]
    failed, _ = checkov_failures(bare, tmp_path)
    found = {(check, resource.split(".")[0], resource.split(".")[2]) for check, resource in failed}
    assert found == set(declared)


@pytest.mark.parametrize("profile", chart.PROFILES)
def test_checkov_findings_of_the_subcharts_are_listed(
    profile: str, rendered_with_sources: Any, tmp_path: Path, record_property: Any
) -> None:
    """The subcharts' own findings are upstream's to fix: listed in the report (and as a warning), not hidden."""
    rendered = rendered_with_sources[(profile, profile in AWS_PROFILES)]
    theirs = [r.obj for r in rendered if r not in chart.own(rendered)]
    failed, _ = checkov_failures(theirs, tmp_path)
    names = {(o["metadata"].get("namespace", "default"), o["metadata"]["name"]) for o in theirs}
    assert {tuple(resource.split(".")[1:3]) for _, resource in failed} <= names  # Kind.namespace.name[.pod labels]
    summary = ", ".join(f"{check} {resource}" for check, resource in sorted(failed))
    record_property("subchart_checkov_failed", summary)
    warnings.warn(f"checkov on the subcharts of {profile}: {len(failed)} failed: {summary}", stacklevel=1)


@pytest.mark.parametrize(
    "script",
    [
        chart.CHART / "files" / "test-apps.sh",
        REPO / "scripts" / "install-tools.sh",
        REPO / "scripts" / "lib" / "oci-image.sh",
    ],
)
def test_shipped_scripts_pass_shellcheck(script: Path) -> None:
    proc = subprocess.run(["shellcheck", "--severity=style", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("profile", chart.PROFILES)
def test_the_helm_tests_ping_works_as_non_root_on_containerd_1_7(profile: str, rendered: Any) -> None:
    (pod,) = [o for o in rendered[(profile, False)] if o["kind"] == "Pod" and o["metadata"]["name"].endswith("-apps")]
    (container,) = pod["spec"]["containers"]
    assert "ping -c" in (chart.CHART / "files" / "test-apps.sh").read_text()
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert ping.ping_works(pod["spec"], container, ping.KERNEL_DEFAULT_RANGE)


def test_the_ping_model_refuses_added_capabilities_to_a_non_root_user() -> None:
    spec = {"securityContext": {"runAsNonRoot": True, "runAsUser": 65532}}
    container = {"securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"add": ["NET_RAW"]}}}
    assert not ping.ping_works(spec, container, ping.KERNEL_DEFAULT_RANGE)
    assert ping.ping_works(spec, container, ping.CONTAINERD_2_RANGE)


def test_the_rdma_shared_device_plugin_cannot_serve_soft_roce() -> None:
    """rxe0 is an RDMA device, not a netdev: `ifNames: [rxe0]` (the old profile) selects nothing. The ENA device rxe0
    runs on is the right selector (an EFA device is not), but the plugin takes only RDMA devices under that PCI
    device, and the kernel registers rxe0 without a parent: the Soft-RoCE profile uses the generic device plugin."""
    ena = rdma_shared_dp.nitro_ena(rxe_under_pci=True)
    assert rdma_shared_dp.exposed_devices(ena, {"ifNames": ["rxe0"]}) == []
    assert rdma_shared_dp.exposed_devices(ena, {"drivers": ["ena"]}) == ena
    efa = rdma_shared_dp.PciDevice(
        "0000:00:06.0", 0x02, "1d0f", "efa1", "efa", (), rdma={"rdmap0s6": rdma_shared_dp.RXE_CHARS}
    )
    assert rdma_shared_dp.exposed_devices([efa], {"drivers": ["ena"]}) == []
    assert rdma_shared_dp.exposed_devices(rdma_shared_dp.nitro_ena(rxe_under_pci=False), {"drivers": ["ena"]}) == []
    profile = chart.profile_values("aws-softroce")
    assert "rdma" not in profile["spiderpool"] and profile["softroceDevicePlugin"]["enabled"] is True


def test_the_sriov_policy_selects_the_nodes_the_readme_tells_to_label(rendered: Any) -> None:
    """Nothing installs Node Feature Discovery: the policy must select the label the README has the user set."""
    readme = (chart.CHART / "README.md").read_text()
    key, value = re.search(r"kubectl label nodes? \S+ ([\w./-]+)=(\w+)", readme).groups()  # type: ignore[union-attr]
    (policy,) = [
        o for o in chart.applied_objects(rendered[("baremetal-sriov", False)]) if o["kind"] == "SriovNetworkNodePolicy"
    ]
    labelled = [scheduling.Node("bm-0", {"kubernetes.io/hostname": "bm-0", key: value})]
    # the webhook's supported NICs: the supported-nic-ids ConfigMap the Spiderpool subchart renders
    (nic_map,) = [o for o in rendered[("baremetal-sriov", False)] if o["metadata"]["name"] == "supported-nic-ids"]
    nic_ids = list(nic_map["data"].values())
    assert sriov_webhook.refusal(policy, labelled, nic_ids) is None
    assert sriov_webhook.refusal(policy, [scheduling.Node("bm-0", {"kubernetes.io/hostname": "bm-0"})], nic_ids)


def documented_timeouts(readme: str) -> list[int]:
    """Seconds of every `--timeout Nm` of the helm install/upgrade/uninstall commands of the chart's README."""
    commands = re.findall(r"^helm (?:install|upgrade|uninstall)[^\n]*(?:\\\n[^\n]*)*", readme, flags=re.MULTILINE)
    timeouts = [re.search(r"--timeout (\d+)m", c) for c in commands]
    assert commands and all(timeouts), commands
    return [int(t.group(1)) * 60 for t in timeouts if t]


def test_the_documented_helm_timeout_outlasts_each_hook(rendered: Any) -> None:
    """Helm gives each hook its own --timeout (pkg/action/hooks.go: WatchUntilReady(resources, timeout)): a job must
    fail by its own deadline first, and its wait for the controller must fit in that deadline."""
    timeouts = documented_timeouts((chart.CHART / "README.md").read_text())
    for job in (
        o
        for o in rendered[("aws-efa", True)]
        if o["kind"] == "Job" and "helm.sh/hook" in o["metadata"].get("annotations", {})
    ):
        deadline = job["spec"].get("activeDeadlineSeconds")
        if job["metadata"]["name"].startswith("rdma-spiderpool-rdma"):
            assert deadline and deadline < min(timeouts)
            for c in job["spec"]["template"]["spec"].get("initContainers", []):
                waits = [a for a in c["command"] if a.startswith("--timeout=")]
                assert all(int(w.removeprefix("--timeout=").removesuffix("s")) < deadline for w in waits)


def test_the_sriov_pools_serve_the_sriov_network_only(rendered: Any) -> None:
    """A macvlan pod must never take an address of the SR-IOV subnet, nor an SR-IOV pod one of the macvlan subnet."""
    objs = chart.applied_objects(rendered[("baremetal-sriov", False)])
    pools = {o["metadata"]["name"]: o for o in objs if o["kind"] == "SpiderIPPool"}
    networks = {o["spec"]["cniType"]: o for o in objs if o["kind"] == "SpiderMultusConfig"}
    sriov_pools = set(chart.profile_values("baremetal-sriov")["sriov"]["pools"])
    for cni, net in networks.items():
        name = f"{chart.NAMESPACE}/{net['metadata']['name']}"
        pod = spiderpool.PodSpec("p", "default", "bm-0", {"k8s.v1.cni.cncf.io/networks": name}, {})
        netconf = net["spec"][cni].get("ippools", {}).get("ipv4", [])
        drawn = set(spiderpool.usable_pools(pod, "net1", netconf, pools, chart.NAMESPACE, None))
        assert drawn and (drawn <= sriov_pools if cni == "sriov" else not drawn & sriov_pools), (cni, drawn)
        for pool in pools.values():  # and no pool annotation can cross over either
            crosses = (pool["metadata"]["name"] in sriov_pools) != (cni == "sriov")
            error = spiderpool.pool_filter_error(pool, pod, "net1", chart.NAMESPACE, None)
            assert not crosses or error, (cni, pool["metadata"]["name"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"network": {"name": "ipvlan-eth1"}},
            'defaultCniCRName ("ipvlan-ens5") must be the network\'s name ("ipvlan-eth1")',
        ),
        ({"spiderpool": {"multus": {"multusCNI": {"defaultCniCRName": "other"}}}}, "must be the network's name"),
    ],
)
def test_the_network_name_has_one_source(values: dict[str, Any], message: str, chart_dir: Path) -> None:
    with pytest.raises(RuntimeError, match=re.escape(message)):
        chart.render(chart_dir, chart.profile_values("aws-efa"), values)
    with pytest.raises(RuntimeError, match="must not be the network"):
        chart.render(
            chart_dir,
            chart.profile_values("kind"),
            {"spiderpool": {"multus": {"multusCNI": {"defaultCniCRName": "macvlan-eth0"}}}},
        )


def test_the_sample_apps_are_the_pools_apps(chart_dir: Path) -> None:
    """The generated pools carry the apps' names: the chart deploys those, whatever they are called."""
    pools = [
        {
            "name": f"{app}-pool",
            "subnet": "172.18.0.0/16",
            "ips": [f"172.18.42.{i * 10 + 1}-172.18.42.{i * 10 + 9}"],
            "app": app,
        }
        for i, app in enumerate(["web", "api"])
    ]
    values = {"network": {"pools": pools}, "sampleApps": {"count": 2}}
    objs = chart.render(chart_dir, chart.profile_values("kind"), values)
    apps = [
        o["metadata"]["labels"]["spiderpool-rdma/app"] for o in chart.applied_objects(objs) if o["kind"] == "Deployment"
    ]
    assert apps == ["web", "api"]
    (pod,) = [o for o in objs if o["kind"] == "Pod" and o["metadata"]["name"].endswith("-test-apps")]
    assert {"name": "APP_NAMES", "value": "web api"} in pod["spec"]["containers"][0]["env"]
    with pytest.raises(RuntimeError, match=r"sampleApps\.count is 3 but the pools name 2 apps: web, api"):
        chart.render(chart_dir, chart.profile_values("kind"), {**values, "sampleApps": {"count": 3}})

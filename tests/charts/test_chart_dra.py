"""EFA through Dynamic Resource Allocation: the chart with the real aws-dranet subchart in DRA mode (the `ha` variant,
`rdma_devices: dra`) beside plugin mode (`default-efa`), the sample RDMA pod pair in both, and the values it refuses."""

from __future__ import annotations

import tarfile
import warnings
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cdk.config import DRA_OLDEST_MINOR
from cdk.constructs import iam
from cdk.ec2_types import InstanceTable
from tests import chart
from tests.charts.test_chart import checkov_failures, flatten_keys, upstream_keys
from tests.charts.test_chart_lifecycle import RELEASES
from tests.charts.test_chart_network import registry_matches
from tests.conftest import REPO
from tests.crds import is_custom
from tests.upstream import names, pod_security, scheduling

MODES = {"plugin": "default-efa", "dra": "ha"}
ROLE = "spiderpool-rdma/rdma-sample"  # the pair's label: server or client
DRANET = chart.UPSTREAM_CHARTS / "aws-dranet-1.0.0.tgz"
#: The sample pair's image: none is published, the user names theirs.
SAMPLE = {"rdmaSample": {"enabled": True, "image": {"registry": "registry.example.com", "repository": "rdma-tools",
                                                    "digest": "sha256:" + "a" * 64}}}  # fmt: skip


def dranet_file(name: str) -> Any:
    with tarfile.open(DRANET) as archive:
        member = archive.extractfile(f"aws-dranet/{name}")
        assert member is not None
        return yaml.safe_load(member.read())


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chart.packaged_copy(tmp_path_factory.mktemp("chart"))


@pytest.fixture(scope="module")
def generated(table: InstanceTable, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {mode: chart.generated_values(v, table, tmp_path_factory.mktemp(v)) for mode, v in MODES.items()}


@pytest.fixture(scope="module")
def rendered(chart_dir: Path, generated: dict[str, dict[str, Any]]) -> dict[str, list[chart.Rendered]]:
    """mode -> the aws-efa profile with the mode's generated values and the sample pair on."""
    return {
        mode: chart.helm_template(chart_dir, chart.profile_values("aws-efa"), g, SAMPLE)
        for mode, g in generated.items()
    }


def objects(rendered: list[chart.Rendered], kind: str) -> list[dict[str, Any]]:
    return [r.obj for r in rendered if r.obj["kind"] == kind]


def test_each_mode_installs_one_efa_driver_from_its_real_subchart(rendered: dict[str, list[chart.Rendered]]) -> None:
    for mode, driver in (("plugin", "aws-efa-k8s-device-plugin"), ("dra", "aws-dranet")):
        subcharts = {r.source.split("/")[2] for r in rendered[mode] if r not in chart.own([r])}
        assert subcharts == {"spiderpool", driver}, mode
    (device_class,) = objects(rendered["dra"], "DeviceClass")
    assert device_class == {**chart.dranet_device_class(), "metadata": device_class["metadata"]}
    assert not objects(rendered["plugin"], "DeviceClass")


def test_the_generated_values_switch_the_drivers(generated: dict[str, dict[str, Any]]) -> None:
    assert generated["dra"]["install"] == {"efaDevicePlugin": False, "dranet": True}
    assert generated["dra"]["cluster"]["rdmaDevices"] == "dra"
    assert "install" not in generated["plugin"] and generated["plugin"]["cluster"]["rdmaDevices"] == "plugin"


@pytest.mark.parametrize("mode", MODES)
def test_builtin_objects_pass_kubernetes_validate_strict_on_a_minor_with_resource_v1(
    mode: str, rendered: dict[str, list[chart.Rendered]]
) -> None:
    """resource.k8s.io/v1 is served from 1.34; DRA mode is accepted from 1.35 (cdk/config.py), validated there."""
    builtins = [o for o in chart.all_objects([r.obj for r in rendered[mode]]) if not is_custom(o)]
    kinds = {o["kind"] for o in builtins}
    assert {"DeviceClass", "ResourceClaimTemplate"} <= kinds if mode == "dra" else "DeviceClass" not in kinds
    for obj in builtins:
        kubernetes_validate.validate(obj, f"1.{DRA_OLDEST_MINOR}", strict=True)


def sample_pods(rendered: list[chart.Rendered]) -> dict[str, dict[str, Any]]:
    """The pair's pod templates by role (the label the Service selects the server by)."""
    templates = [j["spec"]["template"] for j in objects(rendered, "Job")]
    roles = {t.get("metadata", {}).get("labels", {}).get(ROLE): t for t in templates}
    return {role: t for role, t in roles.items() if role}


def test_the_sample_pair_requests_efa_through_a_claim_in_dra_mode_and_the_resource_in_plugin_mode(
    rendered: dict[str, list[chart.Rendered]],
) -> None:
    (device_class,) = objects(rendered["dra"], "DeviceClass")
    (template,) = objects(rendered["dra"], "ResourceClaimTemplate")
    assert template["spec"]["spec"]["devices"]["requests"] == [
        {"name": "efa", "exactly": {"deviceClassName": device_class["metadata"]["name"], "count": 1}}
    ]
    assert not objects(rendered["plugin"], "ResourceClaimTemplate")
    for mode in MODES:
        pods = sample_pods(rendered[mode])
        assert set(pods) == {"server", "client"}
        for pod in pods.values():
            (container,) = pod["spec"]["containers"]
            resources = container["resources"]
            if mode == "dra":
                assert pod["spec"]["resourceClaims"] == [
                    {"name": "efa", "resourceClaimTemplateName": template["metadata"]["name"]}
                ]
                assert resources["claims"] == [{"name": "efa"}]
                assert "vpc.amazonaws.com/efa" not in resources["limits"]
            else:
                assert "resourceClaims" not in pod["spec"] and "claims" not in resources
                assert resources["limits"]["vpc.amazonaws.com/efa"] == "1"
            assert pod_security.baseline_violations(pod["spec"]) == []  # the apps' namespace enforces baseline
        server = sample_pods(rendered[mode])["server"]["spec"]["containers"][0]["command"]
        client = sample_pods(rendered[mode])["client"]["spec"]["containers"][0]["command"]
        (service,) = [
            s for s in objects(rendered[mode], "Service") if "spiderpool-rdma/rdma-sample" in s["spec"]["selector"]
        ]
        port = str(service["spec"]["ports"][0]["port"])
        assert server[server.index("-B") + 1] == port == client[client.index("-P") + 1]
        assert client[-1] == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"


def test_dranet_runs_on_every_efa_worker_by_the_projects_label_and_nowhere_else(
    rendered: dict[str, list[chart.Rendered]], table: InstanceTable, tmp_path: Path
) -> None:
    """Not by the chart's list of instance types (part of the EFA types the configuration accepts): the bootstrap
    labels every EFA worker spiderpool-rdma/rdma=efa."""
    (ds,) = [d for d in objects(rendered["dra"], "DaemonSet") if d["metadata"]["name"].endswith("aws-dranet")]
    spec = ds["spec"]["template"]["spec"]
    nodes = chart.cluster_nodes(*chart.planned(MODES["dra"], table, tmp_path))
    for node in nodes:
        assert scheduling.schedulable(spec, node) is (node.labels["spiderpool-rdma/rdma"] == "efa"), node.name
    worker = next(n for n in nodes if n.labels["spiderpool-rdma/rdma"] == "efa")
    unlisted = [
        t.name
        for t in table
        if t.max_efa > 0 and t.name not in dranet_file("values.yaml")["supportedInstanceLabels"]["values"]
    ]
    for itype in unlisted:
        labels = {**worker.labels, "node.kubernetes.io/instance-type": itype}
        assert scheduling.schedulable(spec, scheduling.Node("w", labels, worker.taints)), itype
    assert not scheduling.schedulable(spec, scheduling.Node("w", {**worker.labels, "spiderpool-rdma/rdma": "softroce"}))


def test_the_dranet_image_is_one_the_dra_workers_may_pull(rendered: dict[str, list[chart.Rendered]]) -> None:
    """Chart, node role and kubelet agree, as for the device plugin (test_chart_network)."""
    (ds,) = [d for d in objects(rendered["dra"], "DaemonSet") if d["metadata"]["name"].endswith("aws-dranet")]
    registry, _, path = ds["spec"]["template"]["spec"]["containers"][0]["image"].partition("/")
    assert (registry.split(".")[0], path.rsplit(":", 1)[0]) == iam.DRANET_REPOSITORY
    config = yaml.safe_load((REPO / "bootstrap" / "image-credential-provider-config.yaml").read_text())
    patterns = [p for provider in config["providers"] for p in provider["matchImages"]]
    assert any(registry_matches(p, registry) for p in patterns), (registry, patterns)


REFUSED = [
    ({"install": {"dranet": True, "efaDevicePlugin": True}, "cluster": {"rdmaDevices": "dra"}},
     "install.dranet and install.efaDevicePlugin are both true"),
    ({"install": {"efaDevicePlugin": False}, "cluster": {"rdmaDevices": "dra"}},
     'cluster.rdmaDevices is "dra" but install.dranet is false'),
    ({"install": {"dranet": True, "efaDevicePlugin": False}},
     'cluster.rdmaDevices is "plugin" but install.dranet is true'),
    ({"rdmaSample": {"enabled": True}}, "rdmaSample.enabled needs rdmaSample.image"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "message"),
    REFUSED,
    ids=["both-drivers", "dra-without-dranet", "dranet-in-plugin-mode", "sample-without-image"],
)
def test_the_chart_refuses_what_cannot_work_saying_why(chart_dir: Path, values: dict[str, Any], message: str) -> None:
    with pytest.raises(RuntimeError, match=message.replace("(", r"\(")):
        chart.helm_template(chart_dir, chart.profile_values("aws-efa"), values)


def test_every_aws_dranet_key_we_set_exists_upstream(tmp_path: Path) -> None:
    """Helm ignores a misspelt subchart key silently."""
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(dranet_file("values.yaml")))
    known = upstream_keys(tmp_path / "values.yaml")
    ours = flatten_keys(chart.profile_values("aws-efa")["aws-dranet"])
    assert ours and ours <= known, ours - known


@pytest.mark.parametrize("mode", MODES)
def test_checkov_passes_on_the_sample_pair(
    mode: str, rendered: dict[str, list[chart.Rendered]], tmp_path: Path
) -> None:
    """With the apps' NetworkPolicy, which admits the pair's traffic (CKV2_K8S_6 wants one per pod)."""
    sources = ("templates/rdma-sample.yaml", "templates/networkpolicy.yaml")
    sample = [r.obj for r in rendered[mode] if r.source.endswith(sources)]
    failed, passed = checkov_failures(sample, tmp_path)
    assert failed == [] and passed > 20


def test_checkov_findings_of_aws_dranet_are_listed(
    rendered: dict[str, list[chart.Rendered]], tmp_path: Path, record_property: Any
) -> None:
    """aws-dranet's own findings are upstream's to fix: listed in the report (and as a warning), as the other
    subcharts' (test_chart.py)."""
    theirs = [r.obj for r in rendered["dra"] if r.source.startswith("spiderpool-rdma/charts/aws-dranet/")]
    assert {o["kind"] for o in theirs} >= {"DaemonSet", "DeviceClass", "ClusterRole"}
    failed, _ = checkov_failures(theirs, tmp_path)
    summary = ", ".join(f"{check} {resource}" for check, resource in sorted(failed))
    record_property("aws_dranet_checkov_failed", summary)
    warnings.warn(f"checkov on aws-dranet: {len(failed)} failed: {summary}", stacklevel=1)


@pytest.mark.parametrize("release", RELEASES)
def test_dra_mode_renders_objects_the_api_server_takes_whatever_the_release_name(
    release: str, chart_dir: Path, generated: dict[str, dict[str, Any]]
) -> None:
    """The release names the lifecycle tests use (a digit first, a dot, Helm's longest): aws-dranet's objects and
    the sample pair's, each name and label as the API server checks it."""
    rendered = chart.render(chart_dir, chart.profile_values("aws-efa"), generated["dra"], SAMPLE, release=release)
    assert {o["kind"] for o in rendered} >= {"DeviceClass", "ResourceClaimTemplate"}
    assert [error for obj in chart.all_objects(rendered) for error in names.invalid(obj)] == []

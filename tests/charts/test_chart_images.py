"""Every image the chart runs comes from one value that takes a tag, a digest or both; with a digest the pod pulls
IfNotPresent (a registry outage cannot block a pod the node has, the pre-delete job among them), by tag Always.
Checkov's skips of CKV_K8S_43 (an image by digest) appear only while an image has no digest."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cdk.config import NEWEST_MINOR, OLDEST_MINOR
from cdk.ec2_types import InstanceTable
from tests import chart
from tests.conftest import REPO

WATCH = {"watch": {"enabled": True, "image": {"registry": "registry.example.com", "repository": "sv", "tag": "0.2.0"}}}
#: The sample RDMA pair (fi_pingpong over EFA, hence cluster.rdma efa); no image of it is published.
RDMA_SAMPLE = {"rdmaSample": {"enabled": True, "image": {"registry": "registry.example.com", "repository": "rdma-tools",
               "tag": "1"}}, "cluster": {"rdma": "efa"}}  # fmt: skip
VALUES = yaml.safe_load((chart.CHART / "values.yaml").read_text())
sys.path.insert(0, str(REPO / "scripts"))
import pin_kubectl_images  # noqa: E402

KUBECTL_PINS = json.loads((chart.CHART / "files" / "kubectl-images.json").read_text())
#: kubernetes/k8s.io's promotion manifest of registry.k8s.io/kubectl, its kubectl entry as copied (commit in line 1).
PROMOTION_MANIFEST = REPO / "tests" / "fixtures" / "upstream" / "k8s-staging-kubernetes-images-kubectl.yaml"


def image_values(schema: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every value the schema types as an image (definitions.image, alone or among alternatives)."""
    for key, sub in schema.get("properties", {}).items():
        refs = [sub.get("$ref"), *(alt.get("$ref") for alt in sub.get("anyOf", []))]
        if "#/definitions/image" in refs:
            yield (*path, key)
        else:
            yield from image_values(sub, (*path, key))


IMAGES = sorted(image_values(json.loads((chart.CHART / "values.schema.json").read_text())))


def containers(objs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for obj in objs:
        spec = obj.get("spec", {})
        pod = spec.get("template", {}).get("spec", spec)
        yield from pod.get("initContainers", []) + pod.get("containers", [])


def with_images(images: dict[tuple[str, ...], dict[str, str]]) -> dict[str, Any]:
    """Values setting each image of `images` (path -> fields) over the defaults."""
    out: dict[str, Any] = {}
    for path, fields in images.items():
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = fields
    return out


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chart.packaged_copy(tmp_path_factory.mktemp("chart"))


@pytest.fixture(scope="module")
def base(table: InstanceTable, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every image in use: Soft-RoCE (its device plugin), the generated pools (the apps), the watch, the RDMA pair."""
    generated = chart.generated_values("softroce", table, tmp_path_factory.mktemp("generated"))
    return [chart.profile_values("aws-softroce"), generated, WATCH, RDMA_SAMPLE]


def rendered(chart_dir: Path, base: list[dict[str, Any]], *extra: dict[str, Any]) -> list[dict[str, Any]]:
    own = [r.obj for r in chart.own(chart.helm_template(chart_dir, *base, *extra))]
    return list(chart.all_objects(own))


def pinned(path: tuple[str, ...], with_tag: bool) -> dict[str, str]:
    """An image value of its own for `path`, pinned by a digest of its own."""
    digest = "sha256:" + hashlib.sha256(".".join(path).encode()).hexdigest()
    return {"registry": "mirror.example.com:5000", "repository": "-".join(path).lower(), "tag": "1.0" * with_tag,
            "digest": digest}  # fmt: skip


def ref(image: dict[str, str]) -> str:
    tag = f":{image['tag']}" if image["tag"] else ""
    return f"{image['registry']}/{image['repository']}{tag}@{image['digest']}"


def test_the_images_are_the_values_that_say_so() -> None:
    assert {".".join(p) for p in IMAGES} == {
        "networkApply.image",
        "rdmaSample.image",
        "sampleApps.image",
        "softroceDevicePlugin.image",
        "tests.image",
        "watch.image",
        "watch.probeImage",
    }


@pytest.mark.parametrize("with_tag", [False, True], ids=["digest-only", "tag-and-digest"])
def test_a_digest_in_every_image_value_is_what_every_container_runs(
    chart_dir: Path, base: list[dict[str, Any]], with_tag: bool
) -> None:
    fields = {p: pinned(p, with_tag) for p in IMAGES}
    objs = rendered(chart_dir, base, with_images(fields))
    wanted = {ref(f) for f in fields.values()}
    used = {c["image"] for c in containers(objs)}
    args = {a.split("=", 2)[2] for c in containers(objs) for a in c.get("args", []) if a.startswith("--image=")}
    assert used | args == wanted  # every image comes from its value, none is written into a template
    assert {c["imagePullPolicy"] for c in containers(objs)} == {"IfNotPresent"}
    for obj in objs:
        if obj.get("kind") in {"Deployment", "DaemonSet", "Job", "Pod"}:
            kubernetes_validate.validate(obj, chart.KUBE_MINOR, strict=True)
            assert "CKV_K8S_43" not in str(obj["metadata"].get("annotations", {}))


def test_by_default_pinned_images_pull_if_not_present_and_the_others_always(
    chart_dir: Path, base: list[dict[str, Any]]
) -> None:
    objs = rendered(chart_dir, base)
    policies = {c["image"]: c["imagePullPolicy"] for c in containers(objs)}
    assert policies == {image: "IfNotPresent" if "@sha256:" in image else "Always" for image in policies}
    pinned = {image.split("@")[0] for image in policies if "@sha256:" in image}
    kubectl = KUBECTL_PINS["releases"][chart.KUBE_MINOR]
    assert pinned == {"registry.k8s.io/e2e-test-images/agnhost:2.53"} | (
        {f"registry.k8s.io/kubectl:{kubectl['tag']}"} if kubectl["digest"] else set()
    )
    unpinned = [o for o in objs if any("@" not in c["image"] for c in containers([o]))]
    for obj in unpinned:  # the skip says which value pins the image; the pinned ones carry none
        skips = [v for k, v in obj["metadata"].get("annotations", {}).items() if v.startswith("CKV_K8S_43=")]
        assert len(skips) == 1 and "has no digest here" in skips[0] and ".digest" in skips[0], obj["metadata"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"digest": "sha256:abc"}, "at '/tests/image/digest'"),
        ({"digest": "md5:" + "a" * 64}, "at '/tests/image/digest'"),
        ({"tag": "", "digest": ""}, "at '/tests/image'"),
        ({"repository": "Nicolaka/Netshoot"}, "at '/tests/image/repository'"),
    ],
)
def test_the_schema_refuses_a_malformed_image(
    chart_dir: Path, tmp_path: Path, fields: dict[str, str], message: str
) -> None:
    values = tmp_path / "bad.yaml"
    image = {**copy.deepcopy(VALUES["tests"]["image"]), **fields}
    values.write_text(yaml.safe_dump({"tests": {"image": image}}))
    proc = subprocess.run(
        [chart.HELM, "template", "x", str(chart_dir), "-f", str(values)], capture_output=True, text=True
    )
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def subchart_images(values: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every image value of a subchart's values.yaml (a mapping with a `repository`), with its path."""
    if isinstance(values, dict):
        if "repository" in values:
            yield path, values
        for key, sub in values.items():
            yield from subchart_images(sub, (*path, key))


def test_a_digest_pins_every_subchart_image_too(chart_dir: Path, tmp_path: Path) -> None:
    """Spiderpool's own images take its `digest` values; its SR-IOV images and the EFA plugin's only
    `repository:tag` (spiderpool templates/_helpers.tpl, the EFA chart's templates/daemonset.yaml), so their `tag`
    carries the digest ("v1.3.0@sha256:..."): the README says both."""
    subcharts: dict[str, Any] = {}
    for dep in chart.dependencies():
        with tarfile.open(chart.UPSTREAM_CHARTS / f"{dep['name']}-{dep['version']}.tgz") as archive:
            member = archive.extractfile(f"{dep['name']}/values.yaml")
            assert member is not None
            defaults = yaml.safe_load(member.read())
        pins = {}
        for path, image in subchart_images(defaults):
            digest = pinned(path, with_tag=False)["digest"]
            pins[path] = {"digest": digest} if "digest" in image else {"tag": f"{image['tag'] or '1'}@{digest}"}
        subcharts[dep["name"]] = with_images(pins)
    for profile in chart.PROFILES:
        values = [chart.profile_values(profile), subcharts, with_images({p: pinned(p, True) for p in IMAGES})]
        rendered = [r.obj for r in chart.helm_template(chart_dir, *values, WATCH, tmp=tmp_path)]
        images = {c["image"] for c in containers(rendered)}
        assert [image for image in images if "@sha256:" not in image] == [], profile
        assert {c.get("imagePullPolicy", "IfNotPresent") for c in containers(rendered)} == {"IfNotPresent"}, profile


def kubectl_images(chart_dir: Path, base: list[dict[str, Any]], kube_version: str) -> set[str]:
    """The images of the network apply and delete jobs, rendered for a cluster of `kube_version`."""
    objs = [r.obj for r in chart.own(chart.helm_template(chart_dir, *base, kube_version=kube_version))]
    jobs = [o for o in objs if o["kind"] == "Job" and o["spec"]["template"]["metadata"]["labels"].get(
        "app.kubernetes.io/component") in {"network-apply", "network-delete"}]  # fmt: skip
    assert len(jobs) == 2
    return {c["image"] for c in containers(jobs)}


@pytest.mark.parametrize("minor", range(OLDEST_MINOR, NEWEST_MINOR + 1))
def test_the_jobs_run_the_kubectl_of_the_clusters_own_minor(
    chart_dir: Path, base: list[dict[str, Any]], minor: int
) -> None:
    """kubectl supports one minor of skew (kubernetes.io/releases/version-skew-policy): the chart's jobs run the
    cluster's own, by the digest kubernetes/k8s.io's promotion manifest records where the copy here has it. A
    provider's version string ("v1.36.2-eks-1", Minor "36+") names the same minor."""
    promoted = pin_kubectl_images.promoted(PROMOTION_MANIFEST.read_text())
    for version in (f"1.{minor}.0", f"v1.{minor}.2-eks-1"):
        (image,) = kubectl_images(chart_dir, base, version)
        reference, _, digest = image.partition("@")
        assert reference.startswith(f"registry.k8s.io/kubectl:v1.{minor}.")
        assert digest == (promoted[f"1.{minor}"][1] if f"1.{minor}" in promoted else "")


def test_a_cluster_minor_without_a_kubectl_release_is_refused_by_name(
    chart_dir: Path, base: list[dict[str, Any]]
) -> None:
    with pytest.raises(RuntimeError, match=rf"pins no kubectl for Kubernetes 1\.{NEWEST_MINOR + 1} "):
        kubectl_images(chart_dir, base, f"1.{NEWEST_MINOR + 1}.0")
    # the chart accepts the minors the configuration accepts (cdk/config.py), no older
    with pytest.raises(RuntimeError, match="chart requires kubeVersion"):
        kubectl_images(chart_dir, base, f"1.{OLDEST_MINOR - 1}.0")
    pinned = {"registry": "mirror.example.com", "repository": "kubectl", "tag": "v1.99.0", "digest": ""}
    assert kubectl_images(chart_dir, [*base, {"networkApply": {"image": pinned}}], f"1.{NEWEST_MINOR + 1}.0") == {
        "mirror.example.com/kubectl:v1.99.0"
    }


def test_the_kubectl_pins_are_the_promotion_manifests() -> None:
    """files/kubectl-images.json is what scripts/pin_kubectl_images.py writes from the manifest's copy, the minors it
    lacks named by tag; every minor a cluster may have is in it."""
    by_tag = {minor: pin["tag"] for minor, pin in KUBECTL_PINS["releases"].items() if not pin["digest"]}
    source = str(PROMOTION_MANIFEST.relative_to(REPO))
    assert pin_kubectl_images.pins(PROMOTION_MANIFEST.read_text(), source, by_tag) == KUBECTL_PINS
    assert set(KUBECTL_PINS["releases"]) == {f"1.{m}" for m in range(OLDEST_MINOR, NEWEST_MINOR + 1)}

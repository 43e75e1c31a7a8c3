"""The chart's RBAC is exactly what its components call: the apply and delete jobs' own kubectl commands, run by the
real kubectl against an API server on 127.0.0.1 that authorizes each request with Kubernetes' RBAC rules and the
roles the chart renders (tests/apiserver.py, tests/upstream/rbac.py). Every command must succeed (nothing it calls
is refused) and every verb granted must be one a command called (nothing more is granted)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests import chart
from tests.apiserver import ApiServer, kubectl, running
from tests.charts.test_chart import chart_dir, generated
from tests.upstream.rbac import BOOTSTRAP_DISCOVERY, Authorizer, Request, User, request_info, service_account

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
CASES = json.loads((FIXTURES / "rbac-authorizer-test.json").read_text())["cases"]
RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
__all__ = ["chart_dir", "generated"]  # test_chart.py's fixtures: the packaged chart, the generated values


def case_objects(case: dict[str, Any]) -> list[dict[str, Any]]:
    """rbac_test.go's newClusterRole, newRoleBinding and newClusterRoleBinding as objects."""

    def subjects(names: list[str]) -> list[dict[str, str]]:
        return [dict(zip(("kind", "name"), s.split(":", 1), strict=True)) for s in names]

    objs: list[dict[str, Any]] = [
        {"kind": "ClusterRole", "metadata": {"name": r["name"]}, "rules": r["rules"]}
        for r in case.get("clusterRoles", [])
    ]
    objs += [
        {"kind": "RoleBinding", "metadata": {"namespace": b["namespace"], "name": f"b{i}"},
         "roleRef": {"kind": b["kind"], "name": b["role"]}, "subjects": subjects(b["subjects"])}
        for i, b in enumerate(case.get("roleBindings", []))
    ]  # fmt: skip
    objs += [
        {"kind": "ClusterRoleBinding", "metadata": {"name": f"c{i}"},
         "roleRef": {"kind": "ClusterRole", "name": b["role"]}, "subjects": subjects(b["subjects"])}
        for i, b in enumerate(case.get("clusterRoleBindings", []))
    ]  # fmt: skip
    return objs


def attributes(a: dict[str, Any]) -> tuple[User, Request]:
    user = User(a["user"], tuple(a["groups"]))
    if "path" in a:
        return user, Request(a["verb"], path=a["path"])
    return user, Request(a["verb"], "", a["resource"], a.get("subresource", ""), a["namespace"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_rbac_model_passes_upstreams_authorizer_test(case: dict[str, Any]) -> None:
    authorizer = Authorizer(case_objects(case))
    assert [a for a in case["shouldPass"] if not authorizer.allows(*attributes(a))] == []
    assert [a for a in case["shouldFail"] if authorizer.allows(*attributes(a))] == []


# -- the chart's jobs ----------------------------------------------------------------------------------------------


def stale(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as an earlier generation of the release applied it, under another name."""
    meta = obj["metadata"]
    labels = {**meta["labels"], "spiderpool-rdma/generation": "0000000000000000"}
    return {**obj, "metadata": {**meta, "name": f"{meta['name']}-old", "labels": labels}}


def seeded(rendered: list[dict[str, Any]]) -> ApiServer:
    """The API as the apply job finds it: Spiderpool's controller available, spiderpool-init's placeholder network
    (unlabelled), and one object of each kind the release applied before and no longer renders."""
    own = [o for o in rendered if o["kind"] in RBAC_KINDS]
    api = ApiServer(Authorizer([*own, *BOOTSTRAP_DISCOVERY]))
    api.put(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spiderpool-controller",
         "namespace": chart.NAMESPACE}, "status": {"conditions": [{"type": "Available", "status": "True"}]}}
    )  # fmt: skip
    applied = chart.applied_objects(rendered)
    network = next(o for o in applied if o["kind"] == "SpiderMultusConfig")
    api.put({**network, "metadata": {"name": network["metadata"]["name"], "namespace": chart.NAMESPACE}})
    for kind in {o["kind"] for o in applied}:
        api.put(stale(next(o for o in applied if o["kind"] == kind)))
    return api


def run_job(api: ApiServer, rendered: list[dict[str, Any]], suffix: str, tmp: Path) -> User:
    """Every container of the job, in order, as its service account; the job's user."""
    (job,) = [o for o in rendered if o["kind"] == "Job" and o["metadata"]["name"].endswith(suffix)]
    pod = job["spec"]["template"]["spec"]
    user = service_account(job["metadata"]["namespace"], pod["serviceAccountName"])
    manifest = tmp / "network.yaml"
    manifest.write_text(next(o for o in rendered if o["kind"] == "ConfigMap" and "network.yaml" in o.get("data", {}))
                        ["data"]["network.yaml"])  # fmt: skip
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        args = [a.replace("/manifests/network.yaml", str(manifest)) for a in container["command"][1:]]
        proc = kubectl(api, user, args, tmp)
        assert proc.returncode == 0, (container["name"], proc.stderr, api.refused)
    return user


def release_objects(api: ApiServer) -> set[tuple[str, str, str]]:
    return {
        (k[1], k[2], k[3])
        for k, o in api.objects.items()
        if "spiderpool-rdma/generation" in o["metadata"].get("labels", {})
    }


@pytest.mark.parametrize("profile", ["aws-efa", "baremetal-sriov"])
def test_the_jobs_rbac_is_what_their_kubectl_calls(
    profile: str, chart_dir: Path, generated: dict[str, Any], tmp_path: Path
) -> None:
    values = [chart.profile_values(profile), *([generated] if profile == "aws-efa" else [])]
    rendered = [r.obj for r in chart.own(chart.helm_template(chart_dir, *values))]
    with running(seeded(rendered), tmp_path) as api:
        user = run_job(api, rendered, "-apply", tmp_path)
        applied = {(api.key(o)[1], api.key(o)[2], api.key(o)[3]) for o in chart.applied_objects(rendered)}
        assert release_objects(api) == applied  # applied, and the earlier generation's objects pruned
        network = next(o for o in chart.applied_objects(rendered) if o["kind"] == "SpiderMultusConfig")
        assert api.objects[api.key(network)]["metadata"]["labels"]  # the placeholder replaced by the network
        run_job(api, rendered, "-delete", tmp_path)
        assert release_objects(api) == set()
    assert api.refused == []
    called = {(r.namespace or "*", r.group, r.resource, r.verb) for u, r in api.requests if u == user and r.is_resource}
    granted = api.authorizer.granted(user) if api.authorizer else set()
    assert granted == called


def test_the_helm_tests_rbac_is_what_its_script_calls(chart_dir: Path) -> None:
    """The test pod's script calls the API with curl: each `${api}/...` URL, with the pod's environment, is a request
    its service account must be allowed, and nothing else is granted."""
    rendered = [r.obj for r in chart.own(chart.helm_template(chart_dir, chart.profile_values("kind")))]
    (pod,) = [o for o in rendered if o["kind"] == "Pod" and o["metadata"]["name"].endswith("-test-apps")]
    env = {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0]["env"]}
    script = (chart.CHART / "files" / "test-apps.sh").read_text()
    urls = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], u) for u in re.findall(r'"\$\{api\}(/[^"]+)"', script)]
    assert urls, "the script calls the API"
    user = service_account(pod["metadata"]["namespace"], pod["spec"]["serviceAccountName"])
    authorizer = Authorizer([o for o in rendered if o["kind"] in RBAC_KINDS])
    requests = [request_info("GET", url) for url in urls]
    assert all(authorizer.allows(user, r) for r in requests)
    assert authorizer.granted(user) == {(r.namespace, r.group, r.resource, r.verb) for r in requests}

"""The chart's `watch` objects (off by default): Kubernetes schemas, prometheus-operator's CRD fields, checkov, the
least RBAC, the alerts under promtool (check and unit tests on synthetic series) and the Grafana dashboard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from spider_validate.watch.metrics import WatchMetrics

from tests import chart
from tests.charts.test_chart import checkov_failures
from tests.crds import _strict
from tests.upstream import prometheus_operator
from tests.upstream.rbac import Authorizer, Request, service_account

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ALERT_TESTS = Path(__file__).parents[1] / "promtool" / "watch-alerts.test.yaml"
IMAGE = {"registry": "registry.example.com", "repository": "spider-validate", "digest": "sha256:" + "ab" * 32}
ALL_ON = {
    "watch": {
        "enabled": True,
        "image": IMAGE,
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
        "cloud": {"credentialsSecret": "spider-validate-aws", "region": "us-east-1"},
    }
}


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chart.packaged_copy(tmp_path_factory.mktemp("chart"))


@pytest.fixture(scope="module")
def rendered(chart_dir: Path) -> list[chart.Rendered]:
    return chart.helm_template(chart_dir, chart.profile_values("aws-softroce"), ALL_ON)


def watch_objects(rendered: list[chart.Rendered]) -> list[dict[str, Any]]:
    return [r.obj for r in rendered if "/templates/watch-" in r.source]


def test_off_by_default(chart_dir: Path) -> None:
    sources = {r.source for r in chart.helm_template(chart_dir, chart.profile_values("aws-softroce"))}
    assert not [s for s in sources if "/templates/watch-" in s]


def test_helm_lint_strict_with_everything_on(chart_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "watch.yaml").write_text(yaml.safe_dump(ALL_ON))
    args = ["-f", str(chart.CHART / "values-aws-softroce.yaml"), "-f", str(tmp_path / "watch.yaml")]
    proc = subprocess.run([chart.HELM, "lint", "--strict", str(chart_dir), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_object_is_rendered(rendered: list[chart.Rendered]) -> None:
    kinds = sorted(o["kind"] for o in watch_objects(rendered))
    assert kinds == sorted(
        [
            *["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment"],
            "Service",
            *["NetworkPolicy", "ServiceMonitor", "PrometheusRule", "ConfigMap"],
        ]
    )


def test_builtin_objects_pass_kubernetes_validate_strict(rendered: list[chart.Rendered]) -> None:
    for obj in watch_objects(rendered):
        if not obj["apiVersion"].startswith("monitoring.coreos.com/"):
            kubernetes_validate.validate(obj, chart.KUBE_MINOR, strict=True)


def test_servicemonitor_and_prometheusrule_pass_the_crd_fields(rendered: list[chart.Rendered]) -> None:
    custom = [o for o in watch_objects(rendered) if o["apiVersion"] == "monitoring.coreos.com/v1"]
    assert sorted(o["kind"] for o in custom) == ["PrometheusRule", "ServiceMonitor"]
    for obj in custom:
        jsonschema.validate(obj, _strict(prometheus_operator.crd_schema(obj["kind"])))
    broken = json.loads(json.dumps(custom[0]))
    broken["spec"]["unknownField"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _strict(prometheus_operator.crd_schema(broken["kind"])))


def _fields(schema: dict[str, Any], path: str = "") -> dict[str, dict[str, Any]]:
    """path -> the schema's constraints at that path (type, pattern, required, enum, anyOf), descriptions dropped."""
    keep = {k: v for k, v in schema.items() if k in {"type", "pattern", "required", "enum", "anyOf", "minLength"}}
    out = {path or "/": keep}
    for name, sub in schema.get("properties", {}).items():
        out |= _fields(sub, f"{path}/{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        out |= _fields(schema["additionalProperties"], f"{path}/*")
    if "items" in schema:
        out |= _fields(schema["items"], f"{path}[]")
    return out


@pytest.mark.skipif(not prometheus_operator.UPSTREAM.exists(), reason="prometheus-operator is not fetched here")
@pytest.mark.parametrize("kind", sorted(prometheus_operator.CRD_FILES))
def test_the_crd_model_is_upstreams(kind: str) -> None:
    """Each field of the model has upstream's constraints (upstream may have more fields; required may be a subset)."""
    proc = subprocess.run(
        [
            "git",
            "-C",
            str(prometheus_operator.UPSTREAM),
            "show",
            f"{prometheus_operator.TAG}:{prometheus_operator.CRD_FILES[kind]}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    crd = yaml.safe_load(proc.stdout)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    upstream = _fields(version["schema"]["openAPIV3Schema"])
    for path, constraints in _fields(prometheus_operator.crd_schema(kind)).items():
        assert path in upstream, path
        assert constraints == upstream[path], path


def test_checkov_passes_on_the_watch_objects(rendered: list[chart.Rendered], tmp_path: Path) -> None:
    failed, passed = checkov_failures(watch_objects(rendered), tmp_path)
    assert failed == []
    assert passed > 30


def test_the_deployment_runs_the_watch_with_the_charts_network(rendered: list[chart.Rendered]) -> None:
    (dep,) = [o for o in watch_objects(rendered) if o["kind"] == "Deployment"]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    args = dict(a.removeprefix("--").split("=", 1) for a in container["args"][1:])
    assert container["args"][0] == "watch"
    assert args["network"] == "kube-system/ipvlan-ens5"
    assert args["namespace"] == dep["metadata"]["namespace"] == "rdma-spiderpool-rdma-watch"  # its own
    (svc,) = [o for o in watch_objects(rendered) if o["kind"] == "Service"]
    assert svc["spec"]["ports"][0]["port"] == int(args["metrics-port"])
    env = {e["name"]: e for e in container["env"]}
    assert env["SPIDER_VALIDATE_POD"]["value"] == "$(POD_NAME)/$(POD_UID)"  # Kubernetes' dependent variables
    from spider_validate.cli.watch import watch

    watch_params = {p.name for p in watch.params}
    assert {k.replace("-", "_") for k in args} <= watch_params | {"image"}


def test_the_cloud_side_takes_the_secrets_credentials_file_and_never_the_nodes_role(
    rendered: list[chart.Rendered], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Deployment's environment and mounted Secret, given to the validator's own credential check: botocore
    finds the file's identity (`shared-credentials-file`), which the watch accepts; IMDS is off for the process."""
    from spider_validate.cloud import ec2

    (dep,) = [o for o in watch_objects(rendered) if o["kind"] == "Deployment"]
    spec = dep["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    (mount,) = container["volumeMounts"]
    (volume,) = spec["volumes"]
    assert volume["name"] == mount["name"] and mount["readOnly"]
    assert volume["secret"] == {
        "secretName": "spider-validate-aws",
        "items": [{"key": "credentials", "path": "credentials"}],
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    mounted = tmp_path / "credentials"  # where the kubelet puts the Secret's key, here
    mounted.write_text("[default]\naws_access_key_id = AKIDWATCH\naws_secret_access_key = secret\n")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value.replace(f"{mount['mountPath']}/", f"{tmp_path}/"))
    args = dict(a.removeprefix("--").split("=", 1) for a in container["args"][1:])
    reader = ec2.connect(args["region"], None, budget=int(args["cloud-budget"]), explicit_credentials=True)
    assert reader.client._request_signer._credentials.access_key == "AKIDWATCH"
    assert args["cloud"] == "aws" and reader.budget == 10


def rules_file(rendered: list[chart.Rendered], dest: Path) -> Path:
    (rule,) = [o for o in watch_objects(rendered) if o["kind"] == "PrometheusRule"]
    path = dest / "watch-alerts.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


def test_promtool_checks_the_rendered_rules(rendered: list[chart.Rendered], tmp_path: Path) -> None:
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules_file(rendered, tmp_path))], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 6 rules found" in proc.stdout


def test_every_alert_fires_in_its_promtool_test_and_is_silent_on_healthy_series(
    rendered: list[chart.Rendered], tmp_path: Path
) -> None:
    rules_file(rendered, tmp_path)
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    alerts = {
        r["alert"]
        for g in yaml.safe_load((tmp_path / "watch-alerts.rules.yaml").read_text())["groups"]
        for r in g["rules"]
    }
    fired = {c["alertname"] for t in tests["tests"] for c in t["alert_rule_test"] if c.get("exp_alerts")}
    silent = {
        c["alertname"]
        for t in tests["tests"]
        if t.get("name", "").startswith("healthy")
        for c in t["alert_rule_test"]
        if not c.get("exp_alerts")
    }
    assert fired == alerts and silent == alerts
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    proc = subprocess.run([PROMTOOL, "test", "rules", ALERT_TESTS.name], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


METRIC = re.compile(r"\bspider_validate_[a-z_]+")


def test_the_dashboard_shows_only_metrics_the_watch_serves(rendered: list[chart.Rendered]) -> None:
    (cm,) = [o for o in watch_objects(rendered) if o["kind"] == "ConfigMap"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["spider-validate-watch.json"])
    suffix = {"gauge": "", "counter": "_total", "info": "_info"}
    served = {f.name + suffix[f.type] for f in WatchMetrics().registry.collect()}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in METRIC.findall(e)}
    assert used and used <= served, used - served
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {"${datasource}"}


def test_the_watch_may_start_and_exec_into_pods_only_in_its_own_namespace(rendered: list[chart.Rendered]) -> None:
    """A stolen token of the watch can create pods and exec into them only where Pod Security baseline is enforced:
    not in the release namespace (kube-system, exempt), nor anywhere else. tests/validator/watch/test_watch_lab.py runs
    the watch under these roles (nothing refused, nothing granted unused)."""
    objs = watch_objects(rendered)
    (namespace,) = [o for o in objs if o["kind"] == "Namespace"]
    name = namespace["metadata"]["name"]
    assert (
        name != chart.NAMESPACE and namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    )
    assert {
        o["metadata"]["namespace"] for o in objs if o["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    } == {name}
    (account,) = [o for o in objs if o["kind"] == "ServiceAccount"]
    user = service_account(name, account["metadata"]["name"])
    authorizer = Authorizer(objs)
    for ns in (chart.NAMESPACE, "default", name):
        for verb, sub in (("create", ""), ("delete", ""), ("create", "exec"), ("get", "exec")):
            assert authorizer.allows(user, Request(verb, "", "pods", sub, ns, "p")) == (ns == name), (ns, verb, sub)
    assert not authorizer.allows(user, Request("create", "", "namespaces"))


def test_metrics_are_admitted_from_prometheus_namespace_only(chart_dir: Path) -> None:
    """Before: the watch's NetworkPolicy admitted /metrics from anywhere (no `from`)."""
    values = {"watch": {**ALL_ON["watch"], "prometheusNamespace": "observability"}}
    rendered = chart.helm_template(chart_dir, chart.profile_values("aws-softroce"), values)
    (policy,) = [o for o in watch_objects(rendered) if o["kind"] == "NetworkPolicy"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": ALL_ON["watch"].get("port", 9477)}]

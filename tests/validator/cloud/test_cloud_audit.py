"""The cloud side of the IPAM audit against moto's EC2 (the Terraform tests' server, with the project's gap fills)
and the Kubernetes objects of the shipped configuration (tests/validator/aws_cluster.py).

Every fault is made where it happens in life: in EC2 through the API (a prefix detached, an extra prefix, a
secondary address, a reservation), in Kubernetes by editing the objects (a pool's range, a pod's node); each must be
found by exactly its rule.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest
from click.testing import CliRunner
from spider_validate import cli
from spider_validate.cloud import ec2 as cloud_ec2
from spider_validate.cloud import inventory
from spider_validate.ipam import audit, cloud
from spider_validate.ipam.cloud import CloudRule

from tests import iam_model
from tests.terraform.emulator import MotoServer
from tests.validator.cloud import aws_cluster
from tests.validator.cloud.aws_cluster import REGION, REPO
from tests.validator.report.test_report_schema import SCHEMA


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer.start(tmp_path_factory.mktemp("moto"), [])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def deployment(moto: MotoServer) -> aws_cluster.Deployment:
    """The default cluster's EC2 side, deployed once: each test undoes its faults (Deployed.change)."""
    _, plan = aws_cluster.default_cluster()
    return aws_cluster.deploy(aws_cluster.ec2_client(moto.url), plan)


@dataclass
class Deployed:
    """The cluster on both sides: EC2 in moto and this test's own copy of the Kubernetes objects."""

    ec2: Any
    aws: aws_cluster.Deployment
    objects: list[dict[str, Any]]
    undo: list[Callable[[], object]] = field(default_factory=list)

    def change(self, do: Callable[[], object], undo: Callable[[], object]) -> None:
        """A change of EC2, undone after the test (in reverse order, also when it fails)."""
        do()
        self.undo.append(undo)

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return next(o for o in self.kind(kind) if o["metadata"]["name"] == name)

    def snapshot(self) -> audit.Snapshot:
        return audit.Snapshot(
            self.kind("SpiderIPPool"), self.kind("SpiderEndpoint"), self.kind("Pod"), self.kind("Node")
        )

    def findings(self, reader: cloud_ec2.Ec2 | None = None) -> list[cloud.CloudFinding]:
        snap = self.snapshot()
        assert audit.audit(snap) == []  # the Kubernetes side stays consistent: only the cloud rules may speak
        return cloud.check(reader or cloud_ec2.Boto3Ec2(self.ec2), snap)[0]


@pytest.fixture
def cluster(moto: MotoServer, deployment: aws_cluster.Deployment) -> Iterator[Deployed]:
    config, plan = aws_cluster.default_cluster()
    deployed = Deployed(aws_cluster.ec2_client(moto.url), deployment, aws_cluster.kube_objects(config, plan))
    yield deployed
    for undo in reversed(deployed.undo):
        undo()


def test_the_default_cluster_audits_clean(cluster: Deployed) -> None:
    reader = cloud_ec2.Boto3Ec2(cluster.ec2)
    assert cluster.findings(reader) == []
    assert reader.calls == 4  # primary interfaces by address, interfaces by instance, the subnet's, its reservations


def detach_prefix(c: Deployed) -> None:
    eni = c.aws.enis["worker-0"]
    c.change(
        lambda: c.ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=["10.42.8.16/28"]),
        lambda: c.ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=["10.42.8.16/28"]),
    )


def widen_pool(c: Deployed) -> None:
    """A hand edit: addresses of the pods' block that no interface holds."""
    c.get("SpiderIPPool", "worker-0-general")["spec"]["ips"].append("10.42.8.64-10.42.8.70")


def pod_on_other_node(c: Deployed) -> None:
    """A pool applied without nodeName, whose pod the scheduler put on worker-1: its address is worker-0's."""
    del c.get("SpiderIPPool", "worker-0-general")["spec"]["nodeName"]
    c.get("Pod", "web-worker-0")["spec"]["nodeName"] = "worker-1"
    c.get("SpiderEndpoint", "web-worker-0")["status"]["current"]["node"] = "worker-1"


def secondary_elsewhere(c: Deployed) -> None:
    """A pool address EC2 assigned as a secondary address of another interface (control-plane-0's)."""
    eni = c.aws.enis["control-plane-0"]
    c.change(
        lambda: c.ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=["10.42.8.64"]),
        lambda: c.ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=["10.42.8.64"]),
    )
    c.get("SpiderIPPool", "worker-1-general")["spec"]["ips"].append("10.42.8.64")


def other_nodes_prefix(c: Deployed) -> None:
    c.get("SpiderIPPool", "worker-0-general")["spec"]["ips"].append("10.42.8.44-10.42.8.47")


def extra_prefix(c: Deployed) -> None:
    eni = c.aws.enis["worker-1"]
    c.change(
        lambda: c.ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=["10.42.8.64/28"]),
        lambda: c.ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=["10.42.8.64/28"]),
    )


def idle_reservation(c: Deployed) -> None:
    made: list[str] = []
    c.change(
        lambda: made.append(
            c.ec2.create_subnet_cidr_reservation(SubnetId=c.aws.subnet, Cidr="10.42.12.0/24", ReservationType="prefix")[
                "SubnetCidrReservation"
            ]["SubnetCidrReservationId"]
        ),
        lambda: c.ec2.delete_subnet_cidr_reservation(SubnetCidrReservationId=made[0]),
    )


FAULTS: list[tuple[Callable[[Deployed], None], CloudRule, list[str]]] = [
    (detach_prefix, CloudRule.PREFIX_MISSING, ["worker-0-general", "worker-0", "10.42.8.16/28", "assign-private"]),
    (widen_pool, CloudRule.PREFIX_MISSING, ["worker-0-general", "10.42.8.64-10.42.8.70", "helm upgrade"]),
    (pod_on_other_node, CloudRule.POD_NOT_ROUTED, ["apps/web-worker-0", "worker-1", "10.42.8.12", "node worker-0"]),
    (secondary_elsewhere, CloudRule.CLOUD_CONFLICT, ["worker-1-general", "10.42.8.64", "node control-plane-0"]),
    (other_nodes_prefix, CloudRule.CLOUD_CONFLICT, ["worker-0-general", "10.42.8.44-10.42.8.47", "node worker-1"]),
    (extra_prefix, CloudRule.UNUSED_PREFIX, ["10.42.8.64/28", "worker-1", "unassign-private-ip-addresses"]),
    (idle_reservation, CloudRule.UNUSED_RESERVATION, ["10.42.12.0/24", "delete-subnet-cidr-reservation"]),
]


@pytest.mark.parametrize(("fault", "rule", "named"), FAULTS, ids=[f.__name__ for f, _, _ in FAULTS])
def test_each_fault_is_found_by_exactly_its_rule(
    cluster: Deployed, fault: Callable[[Deployed], None], rule: CloudRule, named: list[str]
) -> None:
    fault(cluster)
    findings = cluster.findings()
    assert [f.problem for f in findings] == [rule], findings
    text = " ".join([findings[0].message, findings[0].fix, *findings[0].objects])
    assert all(n in text for n in named), text
    assert findings[0].warning == (rule in {CloudRule.UNUSED_PREFIX, CloudRule.UNUSED_RESERVATION})


def test_every_rule_has_a_fault_only_it_finds() -> None:
    """A rule that no fault needs is untested (and a fault no rule needs is a rule missing)."""
    assert {rule for _, rule, _ in FAULTS} == set(CloudRule)
    assert [r.__name__.replace("_", "-") for r in cloud.RULES] == [r.value for r in CloudRule]


# -- saved AWS CLI output ----------------------------------------------------------------------------------------


def aws_cli_json(reply: dict[str, Any]) -> str:
    """What `aws ... --output json` prints: the reply without ResponseMetadata, timestamps in ISO 8601 (awscli's
    `awscli/formatter.py` JSONFormatter with `awscli/utils.py` json_encoder), four-space indentation."""
    body = {k: v for k, v in reply.items() if k != "ResponseMetadata"}
    return json.dumps(body, indent=4, default=lambda v: v.isoformat()) + "\n"


def save(c: Deployed, tmp_path: Path) -> list[Path]:
    """`aws ec2 describe-network-interfaces --filters Name=vpc-id,Values=VPC` and each subnet's
    `aws ec2 get-subnet-cidr-reservations --subnet-id ID`, as a user without the audit's credentials saves them."""
    vpc = [{"Name": "vpc-id", "Values": [c.aws.vpc]}]
    files = [tmp_path / "enis.json", tmp_path / "reservations.json"]
    files[0].write_text(aws_cli_json(c.ec2.describe_network_interfaces(Filters=vpc)))
    files[1].write_text(aws_cli_json(c.ec2.get_subnet_cidr_reservations(SubnetId=c.aws.subnet)))
    return files


def test_saved_output_audits_as_the_live_api(cluster: Deployed, tmp_path: Path) -> None:
    detach_prefix(cluster)
    idle_reservation(cluster)
    live = cluster.findings()
    assert [f.problem for f in live] == [CloudRule.PREFIX_MISSING, CloudRule.UNUSED_RESERVATION]
    assert cluster.findings(cloud_ec2.SavedEc2(save(cluster, tmp_path))) == live


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not readable JSON"),
        ('{"Reservations": []}', "neither NetworkInterfaces nor SubnetIpv4CidrReservations"),
        ('{"NetworkInterfaces": {}}', "NetworkInterfaces is not a list"),
        ('{"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1"}]}', "NetworkInterfaces[0] (eni-1) PrivateIpAddress"),
        (
            '{"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.0.1", "SubnetId": "s",'
            ' "Ipv4Prefixes": [{"Ipv4Prefix": "10.0.0.0/33"}]}]}',
            '"10.0.0.0/33" is not an IPv4 CIDR',
        ),
        ('{"SubnetIpv4CidrReservations": [{"SubnetCidrReservationId": "scr-1"}]}', "(scr-1): SubnetId is null"),
    ],
    ids=["not-json", "other-command", "not-a-list", "no-address", "bad-prefix", "no-subnet"],
)
def test_a_malformed_saved_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "saved.json"
    path.write_text(content)
    with pytest.raises(cloud_ec2.CloudError) as err:
        cloud_ec2.SavedEc2([path])
    assert str(path) in str(err.value) and message in str(err.value)


def test_saved_output_answers_the_filters_as_ec2_defines_them(tmp_path: Path) -> None:
    """`addresses.private-ip-address` matches secondary addresses too (the API reference; moto 5.2.1 matches the
    primary only, `moto/ec2/models/elastic_network_interfaces.py`, get_filter_value), `attachment.instance-id` only
    attached interfaces, `subnet-id` the interface's subnet."""
    eni = {
        "NetworkInterfaceId": "eni-1",
        "SubnetId": "subnet-1",
        "PrivateIpAddress": "10.0.0.10",
        "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.10"}, {"PrivateIpAddress": "10.0.0.20"}],
        "Attachment": {"InstanceId": "i-1", "DeviceIndex": 0},
    }
    loose = {"NetworkInterfaceId": "eni-2", "SubnetId": "subnet-2", "PrivateIpAddress": "10.0.1.10"}
    (tmp_path / "enis.json").write_text(json.dumps({"NetworkInterfaces": [eni, loose]}))
    saved = cloud_ec2.SavedEc2([tmp_path / "enis.json"])
    assert [e.id for e in saved.interfaces("addresses.private-ip-address", ["10.0.0.20"])] == ["eni-1"]
    assert [e.id for e in saved.interfaces("attachment.instance-id", ["i-1", "i-2"])] == ["eni-1"]
    assert [e.id for e in saved.interfaces("subnet-id", ["subnet-2"])] == ["eni-2"]
    assert saved.reservations("subnet-1") == [] and saved.calls == 0


# -- nodes and their instances -----------------------------------------------------------------------------------

#: kubernetes v1.10.2 pkg/cloudprovider/providers/aws/aws_instances_test.go, TestMapToAWSInstanceIDs: every case
#: (the same table in kubernetes/cloud-provider-aws pkg/providers/v1/instances_test.go).
UPSTREAM_PROVIDER_IDS = [
    ("aws:///us-east-1a/i-12345678", "i-12345678"),
    ("aws:////i-12345678", "i-12345678"),
    ("i-12345678", "i-12345678"),
    ("aws:///us-east-1a/i-12345678abcdef01", "i-12345678abcdef01"),
    ("aws:////i-12345678abcdef01", "i-12345678abcdef01"),
    ("i-12345678abcdef01", "i-12345678abcdef01"),
    ("vol-123456789", None),
    ("aws:///us-east-1a/vol-12345678abcdef01", None),
    ("aws://accountid/us-east-1a/vol-12345678abcdef01", None),
    ("aws:///us-east-1a/vol-12345678abcdef01/suffix", None),
    ("", None),
]


@pytest.mark.parametrize(("provider_id", "expected"), UPSTREAM_PROVIDER_IDS)
def test_provider_ids_map_as_the_aws_cloud_provider_maps_them(provider_id: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            inventory.instance_id(provider_id)
    else:
        assert inventory.instance_id(provider_id) == expected


def test_a_provider_id_is_used_when_present(cluster: Deployed) -> None:
    """Nodes with `aws:///ZONE/ID` are found by instance, without the lookup by address."""
    instances = {a["InstanceId"]: a for r in cluster.ec2.describe_instances()["Reservations"] for a in r["Instances"]}
    by_ip = {i["PrivateIpAddress"]: i["InstanceId"] for i in instances.values()}
    for node in cluster.kind("Node"):
        node["spec"]["providerID"] = f"aws:///{REGION}a/{by_ip[node['status']['addresses'][0]['address']]}"
    reader = cloud_ec2.Boto3Ec2(cluster.ec2)
    assert cluster.findings(reader) == [] and reader.calls == 3


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            {"spec": {"providerID": "kind://docker/kind/kind-worker"}},
            "node worker-0 is a kind node (providerID kind://docker/kind/kind-worker), not an EC2 instance",
        ),
        ({"spec": {"providerID": "aws:///us-east-1a/vol-1"}}, "providerID 'aws:///us-east-1a/vol-1' names no EC2"),
        ({"status": {"addresses": [{"type": "Hostname", "address": "worker-0"}]}}, "has no providerID and no IPv4"),
        (
            {"spec": {"providerID": "aws:///us-east-1a/i-0000000000000dead"}},
            "EC2 in us-east-1 has no instance for node(s) worker-0 (instance i-0000000000000dead)",
        ),
        (
            {"status": {"addresses": [{"type": "InternalIP", "address": "10.42.4.99"}]}},
            "no instance for node(s) worker-0 (address 10.42.4.99): is --region the cluster's",
        ),
    ],
    ids=["kind-node", "not-an-instance", "no-provider-id-nor-address", "unknown-instance", "unknown-address"],
)
def test_a_node_that_is_not_found_says_why(cluster: Deployed, edit: dict[str, Any], message: str) -> None:
    node = cluster.get("Node", "worker-0")
    for key, value in edit.items():
        node[key].update(value)
    with pytest.raises(cloud_ec2.CloudError) as err:
        cluster.findings()
    assert message in str(err.value) and not err.value.transient


def test_a_region_without_the_instances_says_so(cluster: Deployed, moto: MotoServer) -> None:
    reader = cloud_ec2.Boto3Ec2(aws_cluster.ec2_client(moto.url, "eu-west-1"))
    refs = [inventory.node_ref(n) for n in cluster.kind("Node")]
    with pytest.raises(cloud_ec2.CloudError) as err:
        inventory.gather(reader, refs)
    assert "EC2 in eu-west-1 has no instance for node(s) control-plane-0 (address 10.42.4.10), worker-0" in str(
        err.value
    )


# -- credentials, region, throttling -----------------------------------------------------------------------------


@pytest.fixture
def no_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing the AWS CLI would find: no variables, empty config files, no instance metadata."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize(
    ("region", "env", "message"),
    [
        ("us-east-1", {}, "no AWS credentials: --cloud aws looks for them where the AWS CLI does"),
        ("", {}, "--region '' is not an AWS region such as us-east-1"),
        (None, {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, "no AWS region: pass --region"),
        (None, {"AWS_REGION": "us east"}, "--region 'us east' is not an AWS region"),
    ],
    ids=["no-credentials", "empty-region", "no-region", "aws-region-read"],
)
def test_connect_says_what_is_missing(
    no_aws_config: None, monkeypatch: pytest.MonkeyPatch, region: str | None, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(cloud_ec2.CloudError) as err:
        cloud_ec2.connect(region, None)
    assert message in str(err.value) and not err.value.transient


def test_the_watch_refuses_the_nodes_role(no_aws_config: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials that botocore's chain found at the instance metadata service (method `iam-role`) are refused
    when the credentials must be explicit; the same chain with a key in the environment is accepted."""
    from botocore.credentials import InstanceMetadataProvider, RefreshableCredentials

    def from_imds(self: Any) -> RefreshableCredentials:
        return RefreshableCredentials("a", "b", "c", None, lambda: {}, "iam-role")

    monkeypatch.setattr(InstanceMetadataProvider, "load", from_imds)
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    with pytest.raises(cloud_ec2.CloudError) as err:
        cloud_ec2.connect("us-east-1", None, explicit_credentials=True)
    assert "the credentials come from the node's or container's role (iam-role)" in str(err.value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    assert cloud_ec2.connect("us-east-1", None, explicit_credentials=True).client.meta.region_name == "us-east-1"


class Throttling(http.server.BaseHTTPRequestHandler):
    """EC2 throttling every request: HTTP 503 with the EC2 query API's error document (botocore/parsers.py,
    EC2QueryParser: Response/Errors/Error/Code and Message, RequestID)."""

    requests: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Throttling.requests.append(self.rfile.read(length).decode())
        body = (
            b"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>RequestLimitExceeded</Code>"
            b"<Message>Request limit exceeded.</Message></Error></Errors><RequestID>r-1</RequestID></Response>"
        )
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_budget_stops_before_the_call_that_would_exceed_it(cluster: Deployed) -> None:
    reader = cloud_ec2.Boto3Ec2(cluster.ec2, budget=3)
    with pytest.raises(cloud_ec2.BudgetExhausted) as err:
        cluster.findings(reader)
    assert reader.calls == 3 and "budget of 3 calls per cycle is spent" in str(err.value)


# -- `spider-validate audit --cloud aws`, end to end -------------------------------------------------------------


@pytest.fixture
def aws_env(no_aws_config: None, moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and the EC2 endpoint as the AWS CLI takes them from the environment (AWS_ENDPOINT_URL_EC2:
    botocore's service-specific endpoint variable), pointing at the moto server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", moto.url)


def run_audit(c: Deployed, tmp_path: Path, *args: str) -> tuple[int, str]:
    """The CLI on a dump of `kubectl get spiderippools,spiderendpoints,pods,nodes -A -o json` of the cluster."""
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": c.objects}))
    out = CliRunner().invoke(cli.main, ["audit", "--from-file", str(dump), "--cloud", "aws", *args])
    assert "Traceback" not in out.output and (out.exception is None or isinstance(out.exception, SystemExit))
    return out.exit_code, out.output


def result(output: str) -> dict[str, Any]:
    """The JSON result on stdout (what follows it, such as where --html wrote, is stderr's)."""
    return dict(json.JSONDecoder().raw_decode(output)[0])


def cloud_test(output: str) -> dict[str, Any]:
    return next(t for t in result(output)["tests"] if t["name"] == "ipam-cloud")


def test_the_cli_reports_a_healthy_cluster_in_every_format(aws_env: None, cluster: Deployed, tmp_path: Path) -> None:
    junit, html = tmp_path / "audit.xml", tmp_path / "audit.html"
    code, out = run_audit(cluster, tmp_path, "--region", REGION, "-o", "json", "--junit-file", str(junit))
    assert code == 0, out
    test = cloud_test(out)
    assert test["status"] == "pass" and "3 nodes' instances" in test["actions"][0]["detail"]
    assert 'name="ipam-cloud"' in junit.read_text() and "<failure" not in junit.read_text()
    code, out = run_audit(cluster, tmp_path, "--region", REGION, "--html", str(html))
    assert code == 0 and "2 passed of 2 tests" in out and any("audit/ipam-cloud" in line for line in out.splitlines())
    assert "ipam-cloud" in html.read_text()


def test_the_cli_fails_on_a_fault_and_only_warns_on_waste(aws_env: None, cluster: Deployed, tmp_path: Path) -> None:
    extra_prefix(cluster)
    html = tmp_path / "audit.html"
    code, out = run_audit(cluster, tmp_path, "--region", REGION, "-o", "json", "--html", str(html))
    assert code == 0, out  # a warning does not change the exit code
    jsonschema.validate(result(out), SCHEMA)  # the result's format knows the status `warn`
    assert '<span class="status warn">warn</span>' in html.read_text()
    assert [(a["scenario"], a["status"]) for a in cloud_test(out)["actions"]] == [
        ("unused-prefix", "warn"),
        ("cloud", "pass"),
    ]
    detach_prefix(cluster)
    junit = tmp_path / "audit.xml"
    code, out = run_audit(cluster, tmp_path, "--region", REGION, "-o", "json", "--junit-file", str(junit))
    assert code == 1, out
    test = cloud_test(out)
    assert test["status"] == "fail"
    assert [(a["scenario"], a["status"]) for a in test["actions"]] == [
        ("prefix-missing", "fail"),
        ("unused-prefix", "warn"),
    ]
    assert "is pinned to node worker-0" in junit.read_text() and 'failures="1"' in junit.read_text()
    code, out = run_audit(cluster, tmp_path, "--region", REGION)
    assert code == 1 and "FAIL audit/ipam-cloud" in out and "WARN audit/ipam-cloud" in out


def test_the_cli_audits_saved_output_without_credentials(
    no_aws_config: None, cluster: Deployed, tmp_path: Path
) -> None:
    detach_prefix(cluster)
    files = [arg for path in save(cluster, tmp_path) for arg in ("--cloud-from-file", str(path))]
    code, out = run_audit(cluster, tmp_path, *files, "-o", "json")
    assert code == 1, out
    assert [a["scenario"] for a in cloud_test(out)["actions"]] == ["prefix-missing"]
    assert "the saved output (enis.json, reservations.json)" in cloud_test(out)["description"]


@pytest.mark.parametrize(
    ("args", "env", "edit", "code", "message"),
    [
        (["--region", REGION], {"AWS_ACCESS_KEY_ID": ""}, None, 2, "no AWS credentials: --cloud aws looks for them"),
        (["--region", ""], {}, None, 2, "--region '' is not an AWS region such as us-east-1"),
        (["--region", "eu-west-1"], {}, None, 2, "EC2 in eu-west-1 has no instance for node(s) control-plane-0"),
        (["--region", REGION], {}, "kind", 2, "node worker-0 is a kind node (providerID kind://docker/kind/kind"),
        (["--region", REGION], {}, "no-address", 2, "node worker-0 has no providerID and no IPv4 InternalIP"),
        (["--region", REGION], {}, "no-nodes", 2, "no Node to map to EC2 instances"),
        (["--cloud-from-file", "README.md"], {}, None, 2, "/README.md: not readable JSON"),
        (
            ["--region", REGION],
            {"AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:9"},
            None,
            3,
            "cannot reach EC2 in us-east-1",
        ),
    ],
    ids=[
        "no-credentials",
        "empty-region",
        "region-without-the-instances",
        "kind-node",
        "no-provider-id-no-address",
        "dump-without-nodes",
        "not-a-saved-file",
        "unreachable",
    ],
)
def test_the_cli_says_what_is_wrong_with_an_exit_code(
    aws_env: None,
    cluster: Deployed,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    edit: str | None,
    code: int,
    message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value) if value else monkeypatch.delenv(key)
    worker = cluster.get("Node", "worker-0")
    if edit == "kind":
        worker["spec"]["providerID"] = "kind://docker/kind/kind-worker"
    elif edit == "no-address":
        worker["status"]["addresses"] = [{"type": "Hostname", "address": "worker-0"}]
    elif edit == "no-nodes":
        cluster.objects = [o for o in cluster.objects if o["kind"] != "Node"]
    args = [str(REPO / a) if a.endswith(".md") else a for a in args]
    got, out = run_audit(cluster, tmp_path, *args)
    assert got == code and "cannot audit the cloud side: " in out and message in out, out


def test_the_cli_reports_throttling_as_exit_3_after_retries(
    aws_env: None, cluster: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", f"http://127.0.0.1:{server.server_address[1]}")
        code, out = run_audit(cluster, tmp_path, "--region", REGION)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 3 and "EC2 throttled DescribeNetworkInterfaces in us-east-1 even after retries" in out
    assert len(Throttling.requests) == 3  # botocore's standard retry mode: three attempts of the one call


def test_an_aws_profile_in_the_environment_is_no_cloud_option(
    no_aws_config: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """AWS_PROFILE exported for other tools neither asks for --cloud nor conflicts with saved output."""
    monkeypatch.setenv("AWS_PROFILE", "elsewhere")
    dump = REPO / "tests" / "fixtures" / "audit" / "consistent.json"
    out = CliRunner().invoke(cli.main, ["audit", "--from-file", str(dump)])
    assert out.exit_code == 0, out.output
    saved = tmp_path / "enis.json"
    saved.write_text('{"NetworkInterfaces": []}')
    out = CliRunner().invoke(
        cli.main, ["audit", "--from-file", str(dump), "--cloud", "aws", "--cloud-from-file", str(saved)]
    )
    assert out.exit_code == 2 and "no Node to map to EC2 instances" in out.output  # the frozen dump has no nodes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", REGION], "--cloud-from-file, --region and --profile belong to the cloud side: add --cloud aws"),
        (["--cloud", "aws", "--cloud-from-file", "README.md", "--region", REGION], "--cloud-from-file audits saved"),
    ],
    ids=["region-without-cloud", "saved-with-region"],
)
def test_cloud_options_out_of_place_are_usage_errors(
    cluster: Deployed, tmp_path: Path, args: list[str], message: str
) -> None:
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": cluster.objects}))
    args = [str(REPO / a) if a.endswith(".md") else a for a in args]
    out = CliRunner().invoke(cli.main, ["audit", "--from-file", str(dump), *args])
    assert out.exit_code == 2 and message in out.output


# -- the IAM policy in the README --------------------------------------------------------------------------------


def readme_policy() -> dict[str, Any]:
    """The JSON block of the README's `audit --cloud aws` section."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("#### Against the cloud: `audit --cloud aws`") :]
    start = section.index("```json\n") + len("```json\n")
    return dict(json.loads(section[start : section.index("\n```", start)]))


def test_the_readme_policy_grants_exactly_the_calls_the_audit_makes(cluster: Deployed) -> None:
    """The calls recorded at the boto3 layer (botocore's before-call event names each operation) during an audit
    that takes every path (nodes by address, by instance, the subnets' interfaces, their reservations); IAM's
    evaluation (tests/iam_model.py) allows each with the README's policy and nothing writes."""
    called: set[str] = set()
    cluster.ec2.meta.events.register("before-call.ec2", lambda model, **_: called.add(f"ec2:{model.name}"))
    assert cluster.findings() == []
    policy = readme_policy()
    granted = {action for st in policy["Statement"] for action in st["Action"]}
    assert called == granted == set(cloud_ec2.ACTIONS)
    assert all(iam_model.allows([policy], action, "*") for action in called)
    assert all(st["Effect"] == "Allow" and st["Resource"] == "*" for st in policy["Statement"])
    assert not any(a.split(":")[1].startswith(("Create", "Delete", "Modify", "Assign", "Unassign")) for a in granted)

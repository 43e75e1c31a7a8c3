"""The models of third-party components the chart configures pass their upstream's own test cases (copied as data
under tests/fixtures/upstream/, each file citing its source), and refuse what upstream refuses, with its message."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest

from cdk.ec2_types import InstanceTable
from tests import chart
from tests.upstream import apimachinery as am
from tests.upstream import generic_device_plugin as gdp
from tests.upstream import (
    names,
    rdma_shared_dp,
    selectors,
    spiderpool,
    spiderpool_coordinator,
    spiderpool_ip,
    spiderpool_ippool,
    sriov_webhook,
)
from tests.upstream.cluster import Cluster, CommandFailed, install

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"


def _cases(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


PATH_TEST = _cases("generic-device-plugin-path-test.json")["cases"]


@pytest.mark.parametrize("case", PATH_TEST, ids=[c["name"] for c in PATH_TEST])
def test_generic_device_plugin_discovery_passes_upstreams_path_test(case: dict[str, Any]) -> None:
    """deviceplugin/path_test.go TestDiscoverPaths: Default(), then discoverPath on the case's file system; the test
    compares each device's container and host paths, in order."""
    spec = json.loads(json.dumps(case["ds"]))
    gdp._default(spec)
    devices = gdp.discover(spec, ["/" + f for f in case["fs"]])
    got = [{"specs": [[c, h] for h, c, _ in d.specs], "mounts": [[c, h] for h, c, _ in d.mounts]} for d in devices]
    assert [{k: v for k, v in d.items() if v} for d in got] == case["out"]


@pytest.mark.parametrize(("pattern", "name", "matched", "bad"), _cases("go-path-match-test.json")["cases"])
def test_glob_is_gos_path_match(pattern: str, name: str, matched: bool, bad: bool) -> None:
    """The plugin globs with Go's io/fs Glob, whose rule is path.Match (`*` never crosses `/`): Go's own cases."""
    if bad:
        with pytest.raises(gdp.BadPattern):
            gdp.match(pattern, name)
    else:
        assert gdp.match(pattern, name) is matched


def test_domain_is_checked_with_apimachinerys_dns1123_subdomain_rule() -> None:
    data = _cases("apimachinery-dns1123-subdomain-test.json")
    assert [v for v in data["good"] if not gdp.is_dns1123_subdomain(v)] == []
    assert [v for v in data["bad"] if gdp.is_dns1123_subdomain(v)] == []


NAME_CASES = _cases("apimachinery-names-test.json")


@pytest.mark.parametrize(
    ("rule", "check"),
    [
        ("dns1123_label", am.dns1123_label_errors),
        ("dns1035_label", am.dns1035_label_errors),
        ("label_value", am.label_value_errors),
        ("dns1123_subdomain", am.dns1123_subdomain_errors),
    ],
)
def test_object_names_follow_apimachinerys_rules(rule: str, check: Any) -> None:
    cases = _cases("apimachinery-dns1123-subdomain-test.json") if rule == "dns1123_subdomain" else NAME_CASES[rule]
    assert [v for v in cases["good"] if check(v)] == []
    assert [v for v in cases["bad"] if not check(v)] == []


def test_a_service_name_must_start_with_a_letter_and_a_namespace_have_no_dot() -> None:
    def service(name: str, kind: str = "Service") -> list[str]:
        return list(names.invalid({"kind": kind, "metadata": {"name": name, "labels": {"a": "rdma.v1"}}}))

    assert service("1rdma-watch") == [
        'Service "1rdma-watch" is invalid: metadata.name: Invalid value: "1rdma-watch": a DNS-1035 label must consist '
        "of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an "
        "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
        "'[a-z]([-a-z0-9]*[a-z0-9])?')"
    ]
    assert service("rdma.v1-apps", "Namespace")[0].endswith("must not contain dots")
    assert service("1rdma.v1", "Deployment") == service("1rdma.v1", "RoleBinding") == []
    assert service("a/b", "Role") == [
        'Role "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain \'/\''
    ]


def _device(name: str = "softroce", **group: Any) -> str:
    return json.dumps({"name": name, "groups": [group or {"paths": [{"path": "/dev/infiniband/uverbs*"}]}]})


ARGS = ["--domain", "spidernet.io", "--listen", ":5790", "--device"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        # main.go:99-101: the name Spiderpool's shared device plugin uses is no device type for this plugin
        ([*ARGS, _device("hca_shared_devices")], 1, "failed to parse device 'hca_shared_devices'; device type must"),
        ([*ARGS, _device("x")], 1, "device type must match"),  # two characters at least
        ([*ARGS, _device(" rxe ")], None, ""),  # trimmed first
        (["--domain", "Spidernet.io", "--device", _device()], 1, "failed to parse domain 'Spidernet.io'"),
        ([*ARGS[:-1], "--log-level", "verbose", "--device", _device()], 1, "log level verbose unknown"),
        ([*ARGS, _device(paths=[{"path": "/dev/x"}], usb=[{"vendor": "1a86"}])], 1, "cannot define both path and usb"),
        ([*ARGS, _device(usb=[{"vendor": "zz"}])], 1, 'malformed device data "zz"'),
        ([*ARGS, _device(count=-1, paths=[{"path": "/dev/x"}])], 1, "failed to parse device"),
        ([*ARGS, _device(count="10", paths=[{"path": "/dev/x"}])], 1, "of type uint"),
        ([*ARGS, ""], 2, "nil pointer dereference"),  # YAML null: a nil *DeviceSpec meets Default()
        ([*ARGS, json.dumps({"name": "a1", "groups": [None]})], 2, "nil pointer dereference"),
        (ARGS[:-1], 1, "at least one device must be specified"),
        ([*ARGS[:-1], "--devices", _device()], 2, "unknown flag: --devices"),
        (ARGS, 2, "flag needs an argument: --device"),
        (["--listen", "5790", "--device", _device()], 1, "failed to listen on 5790"),
    ],
)
def test_generic_device_plugin_start_up_rules(args: list[str], code: int | None, message: str) -> None:
    """main.go's checks in its order, each with the message the plugin prints before it exits."""
    if code is None:
        assert gdp.configure(args).devices[0]["name"] == "spidernet.io/rxe"
        return
    with pytest.raises(gdp.PluginExit) as exc:
        gdp.configure(args)
    assert exc.value.code == code and message in str(exc.value)


def test_generic_device_plugin_environment_and_case_rules() -> None:
    """viper's AutomaticEnv fills a flag not given; encoding/json matches keys case-insensitively, ignores others."""
    config = gdp.configure(["--device", _device()], {"DOMAIN": "example.com", "LOG_LEVEL": "debug"})
    assert config.devices[0]["name"] == "example.com/softroce"
    spec = json.dumps({"NAME": "fuse", "Groups": [{"COUNT": 10, "paths": [{"PATH": "/dev/fuse"}], "other": 1}]})
    (devices,) = gdp.advertised([*ARGS, spec], ["/dev/fuse"]).values()
    assert len(devices) == 10 and devices[0].specs == (("/dev/fuse", "/dev/fuse", "mrw"),)


def test_generic_device_plugin_discovery_rules() -> None:
    """limit repeats a path's matches up to the longest list; a relative pattern or a malformed glob fails discovery
    (path.go, absolute/fs.go); one ID is one device (generic.go refreshDevices)."""
    group = [{"path": "/dev/a*"}, {"path": "/dev/shared", "limit": 10}]
    (devices,) = gdp.advertised([*ARGS, _device(paths=group)], ["/dev/a0", "/dev/a1", "/dev/shared"]).values()
    assert [d.host_paths for d in devices] == [["/dev/a0", "/dev/shared"], ["/dev/a1", "/dev/shared"]]
    for bad in ("dev/a*", "/dev/[a"):
        with pytest.raises(gdp.BadPattern):
            gdp.advertised([*ARGS, _device(paths=[{"path": bad}])], ["/dev/a0"])
    twice = json.dumps({"name": "dup", "groups": [{"paths": [{"path": "/dev/a0"}]}] * 2})
    assert len(gdp.advertised([*ARGS, twice], ["/dev/a0"])["spidernet.io/dup"]) == 1


SHARED_DP = _cases("rdma-shared-dp-validate-configs-test.json")["cases"]


@pytest.mark.parametrize("case", SHARED_DP, ids=[c["name"] for c in SHARED_DP])
def test_rdma_shared_device_plugin_start_passes_upstreams_validate_configs_test(case: dict[str, Any]) -> None:
    """resources_manager_test.go's ValidateConfigs cases through the model's start-up checks."""
    refusal = rdma_shared_dp.start_refusal(case["config"])
    if case["error"] is None:
        assert refusal is None
    else:
        assert refusal is not None and (case["error"] == "any" or refusal == case["error"])


def test_one_name_two_plugins() -> None:
    """Spiderpool's shared device plugin takes `hca_shared_devices` and refuses exclusive RDMA netns mode (which the
    SR-IOV profile's isolation needs); the generic plugin refuses the underscore: each name checked by its own rule."""
    config = {
        "configList": [{"resourceName": "hca_shared_devices", "rdmaHcaMax": 100, "selectors": {"ifNames": ["ens5"]}}]
    }
    assert rdma_shared_dp.start_refusal(config) is None
    assert rdma_shared_dp.start_refusal(config, "exclusive") == "incorrect RDMA subsystem network namespace"
    with pytest.raises(gdp.PluginExit):
        gdp.configure([*ARGS, _device("hca_shared_devices")])


SRIOV = _cases("sriov-webhook-static-validate-test.json")


@pytest.mark.parametrize("case", SRIOV["cases"], ids=[c["name"] for c in SRIOV["cases"]])
def test_sriov_webhook_passes_upstreams_static_validation_tests(case: dict[str, Any]) -> None:
    refusal = sriov_webhook.static_refusal(case["policy"], SRIOV["nic_ids"], case.get("dev_mode", False))
    assert refusal is None if case["error"] is None else case["error"] in str(refusal)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"resourceName": "sriov-rdma"}, 'resource name "sriov-rdma" contains invalid characters'),
        ({"nicSelector": {"pfNames": ["ens1f0#0-7"]}, "numVfs": 8}, None),
        ({"nicSelector": {"pfNames": ["ens1f0#0-8"]}, "numVfs": 8}, "end range exceeds the maximum VF index"),
        ({"nicSelector": {"pfNames": ["ens1f0#3-1"]}, "numVfs": 8}, "shall not be smaller than start range"),
        ({"nicSelector": {"pfNames": ["ens1f0#a-1"]}, "numVfs": 8}, "start range is incorrect"),
        ({"nicSelector": {"pfNames": ["ens1f0#1"]}, "numVfs": 8}, "probably incorrect range character usage"),
        ({"nicSelector": {"pfNames": ["a#1#2"]}, "numVfs": 8}, "probably incorrect separator character usage"),
        ({"linkType": "IB"}, "'linkType: ib or IB' requires 'isRdma: true'"),
        ({"linkType": "IB", "isRdma": True}, None),
    ],
)
def test_sriov_webhook_rules_upstream_has_no_static_case_for(spec: dict[str, Any], error: str | None) -> None:
    """validate.go:149-152 and :181-207 (pfNames ranges), :216-218 (IB link type), each with its message."""
    policy = {"metadata": {"name": "p"}, "spec": {"resourceName": "p0", "nicSelector": {"pfNames": ["ens1f0"]}} | spec}
    refusal = sriov_webhook.static_refusal(policy, SRIOV["nic_ids"])
    assert refusal is None if error is None else error in str(refusal)


SMC = _cases("spiderpool-multusconfig-webhook-test.json")["cases"]


@pytest.mark.parametrize("case", SMC, ids=[c["name"] for c in SMC])
def test_spiderpool_multus_webhook_passes_upstreams_cases(case: dict[str, Any]) -> None:
    smc = spiderpool.mutate_multus_config(case["smc"]) if case.get("mutate", True) else case["smc"]
    refusal = spiderpool.validate_multus_config(smc)
    if case["error"] is None:
        assert refusal is None
    else:
        assert refusal is not None and (case["error"] == "any" or case["error"] in refusal), refusal


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"cniType": "macvlan", "macvlan": {"master": []}}, "spec.macvlanConfig: Invalid value: master can't be empty"),
        ({"cniType": "ipvlan", "ipvlan": {"master": ["a", "b"]}}, "the bond property is nil with multiple Interfaces"),
        ({"cniType": "ipvlan", "ipvlan": {"master": ["a", "b"], "bond": {"name": ""}}}, "bond name can't be empty"),
        ({"cniType": "ipvlan", "ipvlan": {"master": ["a"], "mtu": -1}}, "MTU must be greater than or equal to 0"),
        ({"cniType": "ipvlan", "ipvlan": {"master": ["a"], "ippools": {"matchMasterSubnet": True}}}, "not supported"),
        ({"cniType": "sriov", "sriov": {}}, "spec.sriovConfig: Required value: no spec.sriovConfig[resourceName]"),
        ({"cniType": "sriov", "sriov": {"resourceName": "r", "minTxRateMbps": 9, "maxTxRateMbps": 1}}, "minTxRate"),
        ({"cniType": "ipoib", "ipoib": {}}, "no spec.ipoibConfig[master] specified"),
        (
            {"cniType": "ovs", "ovs": {"bridge": "b", "trunk": [{"minID": 5, "maxID": 1}]}},
            "minID is greater than maxID",
        ),
        ({"cniType": "macvlan", "macvlan": {"master": ["a"]}, "chainCNIJsonData": ['{"name": "x"}']}, "missing 'type'"),
        ({"cniType": "ipvlan", "ipvlan": {"master": ["a"]}, "customCNI": ""}, "only supports spec.ipvlanConfig"),
    ],
)
def test_spiderpool_multus_webhook_rules_upstream_has_no_case_for(spec: dict[str, Any], error: str) -> None:
    """multusconfig_validate.go's other rules, each with its message (after the mutating webhook's defaults)."""
    smc = spiderpool.mutate_multus_config({"metadata": {"name": "n", "namespace": "ns"}, "spec": spec})
    assert error in str(spiderpool.validate_multus_config(smc))


def test_spiderpool_custom_name_cannot_change() -> None:
    old = {"metadata": {"name": "n", "annotations": {spiderpool.ANNO_CR_NAME: "a"}}, "spec": {"cniType": "custom"}}
    new = {"metadata": {"name": "n", "annotations": {spiderpool.ANNO_CR_NAME: "b"}}, "spec": {"cniType": "custom"}}
    assert "unsupported to change customized Multus net-attach-def resource name from 'a' to 'b'" in str(
        spiderpool.validate_multus_config(spiderpool.mutate_multus_config(new), old)
    )


IP = _cases("spiderpool-ip-test.json")["cases"]


def _ip_call(call: str, args: list[Any]) -> Any:
    """pkg/ip's functions, their results as the test compares them (addresses and ranges as text)."""
    if call == "new_cidr":
        base, ranges, exclude, overlap = args
        cidr = spiderpool_ip.CIDR(base, ranges, exclude)
        other = spiderpool_ip.CIDR(base, overlap, [])
        text = [spiderpool_ip.ip_text(cidr.base.version, n) for r in cidr.ranges for n in (r.start, r.end)]
        shown = [a if a == b else f"{a}-{b}" for a, b in zip(text[::2], text[1::2], strict=True)]
        return {"total": cidr.total_ip(), "ranges": shown, "overlap": bool(cidr.overlaps(other.ranges))}
    if call in ("parse_ip_range", "parse_ip_ranges"):
        version, ranges = args
        intervals = spiderpool_ip.parse_ip_ranges(version, ranges if call == "parse_ip_ranges" else [ranges])
        return [spiderpool_ip.ip_text(version, a) for a in spiderpool_ip.addresses(intervals)]
    if call == "assemble_total_ips":
        return [spiderpool_ip.ip_text(args[0], a) for a in spiderpool_ip.assemble_total_ips(*args)]
    if call == "convert_ips_to_ranges":
        version, texts = args
        return spiderpool_ip.convert_ips_to_ranges(version, [int(ipaddress.ip_address(t)) for t in texts])
    return getattr(spiderpool_ip, call)(*args)


@pytest.mark.parametrize("case", IP, ids=[f"{c['source']}-{c['call']}-{i}" for i, c in enumerate(IP)])
def test_spiderpool_ip_passes_upstreams_cases(case: dict[str, Any]) -> None:
    """pkg/ip's own cases, for the functions the IPPool and coordinator webhooks call: the result, or the error."""
    if "error" not in case:
        assert _ip_call(case["call"], case["args"]) == case["result"]
        return
    with pytest.raises(spiderpool_ip.GoError) as exc:
        _ip_call(case["call"], case["args"])
    assert case["error"] == "any" or exc.value.sentinel == case["error"], exc.value


IPPOOL = _cases("spiderpool-ippool-webhook-test.json")


def _ippool_webhook(case: dict[str, Any]) -> spiderpool_ippool.IPPoolWebhook:
    return spiderpool_ippool.IPPoolWebhook(**{**IPPOOL["webhook_defaults"], **case.get("webhook", {})})


def _answer(case: dict[str, Any]) -> am.StatusError | None:
    """The case's call, as upstream's test makes it: a unit case calls the validator alone, an e2e case goes through
    the mutating then the validating webhook (create, then update of what was stored)."""
    hook, pools, subnets = _ippool_webhook(case), case.get("pools", []), case.get("subnets", [])
    if case["op"] == "create":
        return hook.validate_create(case["pool"], pools, subnets)
    if case["op"] == "update":
        return hook.validate_update(case["old"], case["new"], pools, subnets)
    if case["op"] == "delete":
        return hook.validate_delete(case["pool"])
    stored: dict[str, dict[str, Any]] = {}
    answer = None
    for step in case["steps"]:
        pool = hook.default(step["pool"])
        old, others = stored.get(pool["metadata"]["name"]), list(stored.values())
        answer = hook.validate_create(pool, others) if old is None else hook.validate_update(old, pool, others)
        if answer is None:
            stored[pool["metadata"]["name"]] = pool
    return answer


def _mutated(case: dict[str, Any]) -> dict[str, Any]:
    """What a Default case checks of the mutated pool (Default never fails: ippool_webhook.go:55-69)."""
    hook = _ippool_webhook(case)
    pool = hook.default(case["pool"], case.get("subnets", []))
    if case.get("twice"):
        pool = hook.default(pool, case.get("subnets", []))
    meta, spec = pool["metadata"], pool["spec"]
    owner = spiderpool_ippool._controller(pool)
    got = {
        "finalizers": meta.get("finalizers"),
        "controller": owner and owner["name"],
        "ipVersion": spec.get("ipVersion"),
    }
    got |= {k: spec.get(k) for k in ("ips", "excludeIPs", "gateway", "routes")}
    got["labels"] = {k: (meta.get("labels") or {}).get(k) for k in (case["expect"].get("labels") or {})}
    return {k: got[k] for k in case["expect"]}


@pytest.mark.parametrize("case", IPPOOL["cases"], ids=[c["source"] for c in IPPOOL["cases"]])
def test_spiderpool_ippool_webhook_passes_upstreams_cases(case: dict[str, Any]) -> None:
    """ippool_webhook_test.go's every case and the e2e webhook expectations through the model, with upstream's
    reason (apierrors.IsInvalid, IsAlreadyExists, IsForbidden) and the mutated fields it checks."""
    if case["op"] == "default":
        assert _mutated(case) == case["expect"]
        return
    answer = _answer(case)
    if case["expect"] is None:
        assert answer is None
    else:
        assert answer is not None and case["expect"] in ("any", answer.reason), answer


#: what the chart is rendered with: the profiles with pools of their own alone, each profile with the default plan's
#: generated values, the other configuration variants with the profile they install (as tests/charts/ do)
RENDERS = [
    *[(p, None) for p in chart.PROFILES if not p.startswith("aws-")],
    *[(p, "default-efa") for p in chart.PROFILES],
    ("aws-softroce", "softroce"),
    ("aws-efa", "ha"),
    ("aws-efa", "none"),
]


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chart.packaged_copy(tmp_path_factory.mktemp("chart"))


def _pool_refusals(rendered: list[dict[str, Any]]) -> list[str]:
    """The chart's pools through the IPPool webhook as the job applies them (each created after the ones before),
    then applied again over what is stored, as an upgrade does, each with its first address held by a pod."""
    hook = spiderpool_ippool.IPPoolWebhook.of_chart(rendered)
    pools = [o for o in chart.applied_objects(rendered) if o["kind"] == "SpiderIPPool"]
    stored: dict[str, dict[str, Any]] = {}
    refusals = []
    for pool in pools:
        mutated = hook.default(pool)
        if refusal := hook.validate_create(mutated, list(stored.values())):
            refusals.append(str(refusal))
        stored[pool["metadata"]["name"]] = mutated
    for pool in pools:
        old = stored[pool["metadata"]["name"]]
        first = spiderpool_ip.ip_text(4, spiderpool_ip.parse_ip_range(4, old["spec"]["ips"][0])[0])
        old = old | {"status": {"allocatedIPs": json.dumps({first: {"pod": "ns/pod", "podUid": "u"}})}}
        if refusal := hook.validate_update(old, hook.default(old | {"spec": pool["spec"]}), list(stored.values())):
            refusals.append(str(refusal))
    return refusals


def _init_env(rendered: list[dict[str, Any]]) -> dict[str, str]:
    """The environment of the spiderpool-init hook the Spiderpool subchart renders."""
    (container,) = [c for o in rendered if o["kind"] == "Job" for c in o["spec"]["template"]["spec"]["containers"]
                    if c.get("command") == ["/usr/bin/spiderpool-init"]]  # fmt: skip
    return {e["name"]: str(e.get("value", "")) for e in container.get("env", [])}


@pytest.mark.parametrize(("profile", "variant"), RENDERS, ids=[f"{p}+{v}" if v else p for p, v in RENDERS])
def test_what_the_chart_makes_passes_spiderpools_webhooks(
    profile: str, variant: str | None, chart_dir: Path, table: InstanceTable, tmp_path: Path
) -> None:
    """Every SpiderIPPool and SpiderMultusConfig the network job applies, and the default SpiderCoordinator
    spiderpool-init makes from the chart's values, through the models of Spiderpool's webhooks."""
    values = [chart.profile_values(profile), *([chart.generated_values(variant, table, tmp_path)] if variant else [])]
    rendered = chart.render(chart_dir, *values)
    assert [o for o in chart.applied_objects(rendered) if o["kind"] == "SpiderIPPool"], "no pool to check"
    assert _pool_refusals(rendered) == []
    networks = [o for o in chart.applied_objects(rendered) if o["kind"] == "SpiderMultusConfig"]
    assert [spiderpool.validate_multus_config(spiderpool.mutate_multus_config(o)) for o in networks] == [None] * len(
        networks
    )
    coordinator = spiderpool_coordinator.init_coordinator(_init_env(rendered))
    assert (
        coordinator is not None and spiderpool_coordinator.validate(spiderpool_coordinator.default(coordinator)) is None
    )


@pytest.mark.parametrize(
    ("pool", "refusal"),
    [
        # the gateway among the pool's addresses: a pod would be given the router's address
        ({"gateway": "10.0.0.1", "ips": ["10.0.0.1-10.0.0.9"]}, "conflicts with 'spec.gateway' 10.0.0.1"),
        ({"ips": ["10.0.1.1-10.0.1.9"]}, "not match base subnet: 10.0.1.1"),  # addresses outside the subnet
        ({"subnet": "10.0.0.5/24"}, "unformatted subnet 10.0.0.5/24, please change it to 10.0.0.0/24"),
        ({"routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]}, "please specify 'spec.gateway' to configure"),
        ({"routes": [{"dst": "10.9.0.0/16", "gw": "10.1.0.1"}]}, "not pertains to the 'spec.subnet' 10.0.0.0/24"),
    ],
)
def test_a_broken_pool_fails_the_install(pool: dict[str, Any], refusal: str, chart_dir: Path) -> None:
    """Values the chart's schema lets through but Spiderpool's webhook refuses: the network job's apply fails, and
    with it `helm install` (the job is a post-install hook)."""
    good = {"name": "p", "subnet": "10.0.0.0/24", "gateway": "10.0.0.1", "ips": ["10.0.0.10-10.0.0.19"]}
    values = chart.profile_values("kind") | {
        "network": {**chart.profile_values("kind")["network"], "pools": [good | pool]}
    }
    rendered = chart.helm_template(chart_dir, values)
    with pytest.raises(CommandFailed, match=re.escape(refusal)):
        install(Cluster(), rendered)


COORDINATOR = _cases("spiderpool-coordinator-webhook-test.json")


@pytest.mark.parametrize("case", COORDINATOR["cases"], ids=[c["name"] for c in COORDINATOR["cases"]])
def test_spiderpool_coordinator_webhook_passes_upstreams_cases(case: dict[str, Any]) -> None:
    """The e2e patches of the default SpiderCoordinator through the mutating then the validating webhook."""
    stored = spiderpool_coordinator.default(COORDINATOR["base"])
    assert spiderpool_coordinator.validate(stored) is None
    patched = spiderpool_coordinator.default(stored | {"spec": stored["spec"] | case["patch"]})
    refusal = spiderpool_coordinator.validate(patched)
    assert refusal is None if case["error"] is None else case["error"] in str(refusal), refusal


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"podCIDRType": None}, 'spec.podCIDRType: Unsupported value: "": supported values: "auto", "cluster"'),
        ({"podCIDRType": "flannel"}, 'spec.podCIDRType: Unsupported value: "flannel"'),
        ({"hijackCIDR": ["10.0.0.0/08"]}, 'spec.extraCIDR[0]: Invalid value: "10.0.0.0/08": netip.ParsePrefix'),
        ({"hijackCIDR": ["10.96.0.10"]}, None),  # an address: the mutating webhook makes it 10.96.0.10/32
        ({"policyRoutes": [{"dst": "10.0.0.0/8", "gw": "fd00::1"}]}, "dst and gw must use the same IP family"),
        ({"policyRoutes": [{"dst": "10.0.0.0/8", "gw": "10.0.0"}]}, "gw is an invalid IP address"),
        ({"podMACPrefix": "0a:1"}, "not a valid MAC prefix"),
        ({"podMACPrefix": "0b:10"}, "not a unicast MAC"),
        ({"txQueueLen": -1}, "spec.txQueueLen: Invalid value: -1: txQueueLen can't be less than 0"),
        ({"podRPFilter": -1}, None),  # negative: leave the pod's as it is
        ({"podRPFilter": 3}, 'spec.podRPFilter: Unsupported value: 3: supported values: "0", "1", "2"'),
        ({"vethLinkAddress": "169.254.100"}, "vethLinkAddress is an invalid IP address"),
    ],
)
def test_spiderpool_coordinator_rules_upstream_has_no_case_for(spec: dict[str, Any], error: str | None) -> None:
    """ValidateCoordinatorSpec's other rules, each with its message (after the mutating webhook's defaults)."""
    base = COORDINATOR["base"]
    refusal = spiderpool_coordinator.validate(spiderpool_coordinator.default(base | {"spec": base["spec"] | spec}))
    assert refusal is None if error is None else error in str(refusal), refusal


def test_the_default_coordinator_spiderpool_init_makes_from_the_charts_defaults() -> None:
    """config.go's reading of the variables the chart sets (templates/pod.yaml:36-55, with its default values)."""
    env = {f"SPIDERPOOL_INIT_DEFAULT_COORDINATOR_{k}": v for k, v in {
        "NAME": "default", "MODE": "auto", "POD_CIDR_TYPE": "auto", "DETECT_GATEWAY": "false",
        "DETECT_IP_CONFLICT": "false", "TUNE_POD_ROUTES": "true", "HIJACK_CIDR": '["169.254.0.0/16"]',
        "POLICY_ROUTES": "[]", "VETH_LINK_ADDRESS": "", "VETH_MTU": "1500"}.items()}  # fmt: skip
    assert spiderpool_coordinator.init_coordinator(env) == COORDINATOR["base"]
    bad = {"VETH_MTU": "0", "TUNE_POD_ROUTES": "yes", "HIJACK_CIDR": '["169.254.0.0/33"]', "POLICY_ROUTES": "[{"}
    for key, value in bad.items():
        with pytest.raises(spiderpool_coordinator.InitExit, match=f"ENV SPIDERPOOL_INIT_DEFAULT_COORDINATOR_{key}"):
            spiderpool_coordinator.init_coordinator(env | {f"SPIDERPOOL_INIT_DEFAULT_COORDINATOR_{key}": value})
    assert spiderpool_coordinator.init_coordinator(env | {"SPIDERPOOL_INIT_DEFAULT_COORDINATOR_NAME": ""}) is None


@pytest.mark.parametrize(
    ("coordinator", "refusal"),
    [
        ({"podCIDRType": "flannel"}, 'spec.podCIDRType: Unsupported value: "flannel"'),  # a type init knows of
        ({"hijackCIDR": ["169.254.0.0/33"]}, "SPIDERPOOL_INIT_DEFAULT_COORDINATOR_HIJACK_CIDR invalid"),
        ({"vethMTU": 0}, "SPIDERPOOL_INIT_DEFAULT_COORDINATOR_VETH_MTU 0: veth MTU must be greater than 0"),
    ],
)
def test_a_broken_coordinator_fails_the_install(coordinator: dict[str, Any], refusal: str, chart_dir: Path) -> None:
    """Spiderpool's `coordinator.*` values its chart passes to spiderpool-init unchecked: the init hook fails (it
    exits, or retries the webhook's refusal until the hook's timeout), and with it `helm install`."""
    values = chart.profile_values("kind") | {
        "spiderpool": chart.profile_values("kind")["spiderpool"] | {"coordinator": coordinator}
    }
    with pytest.raises(CommandFailed, match=re.escape(refusal)):
        install(Cluster(), chart.helm_template(chart_dir, values))


def test_the_ippool_webhook_leaves_affinities_and_networks_to_the_ipam() -> None:
    """ippool_validate.go checks podAffinity alone: nodeName, nodeAffinity, namespaceName, namespaceAffinity,
    multusName, default and disable are admitted as they are (the IPAM filters by them: tests/upstream/spiderpool.py
    pool_filter_error), so the model must not refuse what upstream admits."""
    pool = {
        "metadata": {"name": "p"},
        "spec": {"subnet": "10.0.0.0/24", "ips": ["10.0.0.10"], "nodeName": ["Not_A_Node"],
                 "nodeAffinity": {"matchLabels": {"bad key!": "?"}}, "namespaceName": [""],
                 "namespaceAffinity": {"matchExpressions": [{"key": "k", "operator": "Bogus"}]},
                 "multusName": ["a/b/c", ""], "default": True, "disable": True},
    }  # fmt: skip
    hook = spiderpool_ippool.IPPoolWebhook()
    mutated = hook.default(pool)
    assert hook.validate_create(mutated, []) is None
    assert hook.validate_update(mutated, mutated, [mutated]) is None


SELECTORS = _cases("selectors-test.json")


PARSER_CASES = SELECTORS["labels"]["parser"]


@pytest.mark.parametrize("case", PARSER_CASES, ids=[repr(c["in"]) for c in PARSER_CASES])
def test_label_selectors_parse_as_upstreams_set_selector_parser_test(case: dict[str, Any]) -> None:
    if not case["valid"]:
        with pytest.raises(selectors.SelectorError):
            selectors.parse_labels(case["in"])
        return
    parsed = selectors.parse_labels(case["in"])
    if case["out"] is not None:
        assert [[r.key, r.operator, list(r.values)] for r in parsed] == case["out"]


def test_label_and_field_selectors_pass_upstreams_parse_and_match_tests() -> None:
    def label_cases(selector: str, labels: dict[str, str]) -> bool:
        return selectors.labels_match(selectors.parse_labels(selector), labels)

    def field_cases(selector: str, fields: dict[str, str]) -> bool:
        return all(t.matches(fields) for t in selectors.parse_fields(selector))

    for kind, parse, matches in (
        ("labels", selectors.parse_labels, label_cases),
        ("fields", selectors.parse_fields, field_cases),
    ):
        cases = SELECTORS[kind]
        for good in cases["good"]:
            parse(good)
        for bad in cases["bad"]:
            with pytest.raises(selectors.SelectorError):
                parse(bad)
        assert all(matches(s, values) for s, values in cases["match"]), kind
        assert not any(matches(s, values) for s, values in cases["no_match"]), kind


def test_selector_errors_are_the_api_servers_messages() -> None:
    """What a bad selector's 400 says (the parser's and NewRequirement's messages), and the kinds' field labels."""
    cases = {
        "x=a||y=b": 'unable to parse requirement: values[0][x]: Invalid value: "a||y": a valid label must be an '
        "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        "x in": "unable to parse requirement: found '' expected: '('",
        "x<a": "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value "
        "must be an integer",
        ",x": "found ',', expected: !, identifier, or 'end of string'",
    }
    for selector, message in cases.items():
        with pytest.raises(selectors.SelectorError) as err:
            selectors.parse_labels(selector)
        assert str(err.value) == message
    with pytest.raises(selectors.SelectorError, match=r"^field label not supported: spec\.nodeName$"):
        selectors.field_selector("Node", "spec.nodeName=a")
    running = selectors.field_selector("Pod", "status.phase=Running,spec.host=n1")
    assert running({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
    assert not running({"spec": {"nodeName": "n2"}, "status": {"phase": "Running"}})
    assert selectors.field_selector("Pod", "spec.hostNetwork=false")({"spec": {}})

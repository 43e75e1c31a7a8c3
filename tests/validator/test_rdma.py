"""RDMA: perftest parsers on published output, the GID script on a sysfs tree, mode detection, the pods the
suite creates, and its behaviour on the double (which has no RDMA: this kernel has none)."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from spider_validate import discovery, linerate, rdma_probes
from spider_validate.context import RunContext
from spider_validate.manifests import Network
from spider_validate.model import Status
from spider_validate.params import Parameters
from spider_validate.runner import Runner
from spider_validate.suites import all_tests, rdma

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left

FIXTURES = Path(__file__).parents[1] / "fixtures" / "perftest"


@pytest.mark.parametrize(
    ("fixture", "unit", "average", "peak"),
    [
        ("mb-sec.txt", "MB/sec", 6033.76 * 1024 * 1024 * 8 / 1e9, 6034.72 * 1024 * 1024 * 8 / 1e9),
        ("mib-sec.txt", "MiB/sec", 14948.67 * 1024 * 1024 * 8 / 1e9, 14954.91 * 1024 * 1024 * 8 / 1e9),
        ("gb-sec.txt", "Gb/sec", 0.48, 0.0),
        ("softroce-mb-sec.txt", "MB/sec", 110.28 * 1024 * 1024 * 8 / 1e9, 110.31 * 1024 * 1024 * 8 / 1e9),
    ],
)
def test_perftest_tables(fixture: str, unit: str, average: float, peak: float) -> None:
    bw = rdma_probes.parse_perftest((FIXTURES / fixture).read_text())
    assert bw.unit == unit
    assert bw.average_gbps == pytest.approx(average) and bw.peak_gbps == pytest.approx(peak)
    assert round(rdma_probes.parse_perftest((FIXTURES / "mb-sec.txt").read_text()).average_gbps, 1) == 50.6


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("completion-error.txt", "Completion with error at client"),
        ("no-device-debian-perftest-4.5.txt", "Did not detect devices"),
    ],
)
def test_perftest_failures(fixture: str, message: str) -> None:
    with pytest.raises(rdma_probes.PerftestError, match=message):
        rdma_probes.parse_perftest((FIXTURES / fixture).read_text())


def test_the_local_perftest_prints_the_no_device_failure_we_parse() -> None:
    proc = subprocess.run(["ib_write_bw", "-d", "mlx5_0"], capture_output=True, text=True, timeout=30)
    with pytest.raises(rdma_probes.PerftestError, match="Did not detect devices"):
        rdma_probes.parse_perftest(proc.stdout + proc.stderr)


def sysfs(tmp_path: Path, dev: str, gids: dict[int, tuple[str, str]]) -> Path:
    port = tmp_path / "class" / "infiniband" / dev / "ports" / "1"
    (port / "gid_attrs" / "types").mkdir(parents=True)
    (port / "gids").mkdir()
    for index, (kind, gid) in gids.items():
        (port / "gid_attrs" / "types" / str(index)).write_text(kind + "\n")
        (port / "gids" / str(index)).write_text(gid + "\n")
    return tmp_path


def run_gid_script(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", rdma_probes.GID_SCRIPT],
        env={"SYSFS": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )


def test_gid_script_finds_the_roce_v2_ipv4_gid_not_index_0(tmp_path: Path) -> None:
    root = sysfs(
        tmp_path,
        "rxe0",
        {
            0: ("IB/RoCE v1", "fe80:0000:0000:0000:5054:00ff:fe12:3456"),
            1: ("RoCE v2", "fe80:0000:0000:0000:5054:00ff:fe12:3456"),
            2: ("IB/RoCE v1", "0000:0000:0000:0000:0000:ffff:0a2a:0f80"),
            3: ("RoCE v2", "0000:0000:0000:0000:0000:ffff:0a2a:0f80"),
        },
    )
    proc = run_gid_script(root)
    assert proc.returncode == 0 and rdma_probes.parse_gid(proc.stdout) == ("rxe0", 3)


def test_gid_script_fails_without_an_ipv4_roce_v2_gid(tmp_path: Path) -> None:
    root = sysfs(tmp_path, "mlx5_0", {0: ("IB/RoCE v1", "fe80:0000:0000:0000:0000:0000:0000:0001")})
    assert run_gid_script(root).returncode == 1


def test_devices_from_ibv_devices() -> None:
    out = (
        "    device          \t   node GUID\n    ------          \t----------------\n"
        "    rdmap16s27      \t0000000000000000\n    mlx5_0          \t0c42a10300a1b2c3\n"
    )
    assert rdma_probes.parse_devices(out) == ["rdmap16s27", "mlx5_0"]
    assert rdma_probes.parse_devices("") == []


@pytest.mark.parametrize(
    ("allocatable", "mode"),
    [
        ({"vpc.amazonaws.com/efa": "1", "cpu": "36"}, ("efa", "vpc.amazonaws.com/efa")),
        ({"spidernet.io/hca_shared_devices": "100"}, ("shared", "spidernet.io/hca_shared_devices")),
        # the chart's Soft-RoCE plugin: its own name (the shared plugin's is no device type for it), never "sriov"
        ({"spidernet.io/softroce": "100"}, ("softroce", "spidernet.io/softroce")),
        ({"spidernet.io/sriov_rdma": "8"}, ("sriov", "spidernet.io/sriov_rdma")),
        ({"cpu": "2", "vpc.amazonaws.com/efa": "0"}, ("none", "")),
    ],
)
def test_mode_detection(allocatable: dict[str, str], mode: tuple[str, str]) -> None:
    assert discovery.detect_mode([{"status": {"allocatable": allocatable}}]) == mode


def test_commands_per_mode() -> None:
    efa = rdma_probes.write_bw_command("efa", "rdmap16s27", None, 20001, 5, "10.0.0.5")
    assert efa[-1] == "10.0.0.5" and "-c" in efa and efa[efa.index("-c") + 1] == "SRD" and "-x" not in efa
    rc = rdma_probes.write_bw_command("shared", "rxe0", 3, 20001, 5)
    assert rc[rc.index("-x") + 1] == "3" and "-c" not in rc and "--report_gbits" in rc


@pytest.mark.parametrize("mode", ["efa", "shared", "sriov"])
def test_rdma_pods_request_what_rdma_needs_and_validate(mode: str) -> None:
    ctx = RunContext(cluster=None, params=Parameters(), run_id="r", namespace="ns")  # type: ignore[arg-type]
    ctx.network = Network("kube-system", "ipvlan-ens5", "default")
    resources = {"efa": discovery.EFA_RESOURCE, "shared": discovery.SHARED_RESOURCE}
    resource = resources.get(mode, "spidernet.io/sriov_rdma")
    pod = rdma.rdma_pod(ctx, "p", "worker-0", mode, resource)
    kubernetes_validate.validate(pod, "1.33", strict=True)
    container: dict[str, Any] = pod["spec"]["containers"][0]
    assert container["resources"]["limits"][resource] == "1"
    assert container["securityContext"]["capabilities"]["add"] == ["IPC_LOCK"]
    assert ("hugepages-2Mi" in container["resources"]["limits"]) == (mode == "efa")
    bare = rdma.rdma_pod(ctx, "q", "worker-0", mode, None)
    assert "resources" not in bare["spec"]["containers"][0] or resource not in str(bare["spec"]["containers"][0])
    assert bare["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] == []


def test_on_the_double_rdma_is_skipped_with_the_reason(lab: LabCluster, tmp_path: Path) -> None:
    params = Parameters(tests=("rdma/",), diagnostics_dir=str(tmp_path), probe_timeout=2, retry_delay=0.1)
    result = Runner(lab, params, all_tests()).run()
    for test in (t for t in result.tests if t.suite == "rdma"):
        assert test.status is Status.SKIP and "no RDMA resource on the test nodes" in test.reason
    assert_nothing_left(lab)


def test_forced_mode_on_the_double_reports_the_missing_device(lab: LabCluster, tmp_path: Path) -> None:
    """The double has no RDMA (nor does this kernel): forcing a mode must fail, naming what is missing."""
    params = Parameters(
        tests=("rdma/device",), rdma_mode="shared", diagnostics_dir=str(tmp_path), probe_timeout=2, retry_delay=0.1
    )
    result = Runner(lab, params, all_tests()).run()
    (test,) = [t for t in result.tests if t.id == "rdma/device"]
    assert test.status is Status.FAIL
    assert "requests spidernet.io/hca_shared_devices but sees no RDMA device" in test.actions[-1].detail
    assert_nothing_left(lab)


def node(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


@pytest.mark.parametrize(
    ("labels", "rate", "source"),
    [
        ({"spiderpool-rdma/network-gbps": "100", "node.kubernetes.io/instance-type": "c5n.9xlarge"}, 100.0, "label"),
        ({"node.kubernetes.io/instance-type": "c5n.9xlarge"}, 50.0, "c5n.9xlarge of w"),
        ({"spiderpool-rdma/network-gbps": "nan", "node.kubernetes.io/instance-type": "m7i.xlarge"}, 1.562, "m7i"),
        ({"spiderpool-rdma/network-gbps": "-5"}, None, "label spiderpool-rdma/network-gbps='-5' is not a rate"),
        ({"node.kubernetes.io/instance-type": "x9.unknown"}, None, "instance type 'x9.unknown' is not in the shipped"),
        ({}, None, "no spiderpool-rdma/network-gbps label, no node.kubernetes.io/instance-type label"),
    ],
)
def test_line_rate_from_the_label_then_the_shipped_table(labels: dict[str, str], rate: Any, source: str) -> None:
    """The bootstrap's label first, then the instance type in the data the package ships (c5n.9xlarge: 50 Gb/s
    in EC2's documentation, REFERENCE.md), else unknown with the reason."""
    found, why = linerate.node_line_rate(node("w", **labels))
    assert found == pytest.approx(rate) if rate is not None else found is None
    assert source in why


def test_the_shipped_table_is_package_data_not_a_source_tree_path() -> None:
    table = linerate.shipped_table()
    assert table["c5n.9xlarge"] == 50.0 and len(table) > 100
    assert "instance_network.json" in {r.name for r in files("spider_validate").joinpath("data").iterdir()}


def test_the_validator_never_imports_cdk() -> None:
    code = (
        "import importlib, pkgutil, sys, spider_validate, spider_validate.suites\n"
        "for m in pkgutil.walk_packages(spider_validate.__path__, 'spider_validate.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n == 'cdk' or n.startswith('cdk.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("fixture", "rate", "mode", "device", "passes", "needs"),
    [
        ("mb-sec.txt", 50.0, "efa", "rdmap16s27", True, "needs 40.00 (0.8 x 50 Gb/s"),  # 50.6 Gb/s measured
        ("mb-sec.txt", 100.0, "sriov", "mlx5_0", False, "needs 80.00 (0.8 x 100 Gb/s"),
        ("mb-sec.txt", 100.0, "shared", "mlx5_0", True, "needs 50.00 (0.5 x 100 Gb/s"),
        ("softroce-mb-sec.txt", 12.5, "softroce", "rxe0", True, "needs 0.62 (0.05 x 12.5 Gb/s"),  # 0.925 Gb/s
        ("softroce-mb-sec.txt", 25.0, "softroce", "rxe0", False, "needs 1.25 (0.05 x 25 Gb/s"),
    ],
)
def test_bandwidth_is_judged_against_a_fraction_of_the_line_rate(
    fixture: str, rate: float, mode: str, device: str, passes: bool, needs: str
) -> None:
    bw = rdma_probes.parse_perftest((FIXTURES / fixture).read_text())
    threshold, how = rdma.required_gbps(rate, mode)
    outcome = rdma.judge(bw, threshold, how)
    assert outcome.ok is passes and needs in outcome.detail
    assert outcome.data["min_gbps"] == pytest.approx(threshold, abs=1e-3)


# `ibv_devices` output: rdma-core libibverbs/examples/device_list.c prints "    %-16s\t%16s" headers, then
# "    %-16s\t%016llx" per device
IBV_DEVICES_NONE = "    device          \t   node GUID\n    ------          \t----------------\n"
IBV_DEVICES_EFA = IBV_DEVICES_NONE + "    rdmap16s27      \t0000000000000000\n"


@pytest.mark.parametrize(
    ("want", "output", "ok", "detail"),
    [
        (True, IBV_DEVICES_EFA, True, "sees rdmap16s27"),
        (True, IBV_DEVICES_NONE, False, "requests vpc.amazonaws.com/efa but sees no RDMA device"),
        (False, IBV_DEVICES_NONE, True, "sees none (isolated)"),
        (False, IBV_DEVICES_EFA, False, "requests no RDMA device but sees rdmap16s27: isolation is broken"),
    ],
)
def test_device_and_isolation_outcomes(want: bool, output: str, ok: bool, detail: str) -> None:
    outcome = rdma.device_outcome("p", discovery.EFA_RESOURCE, want, 0, output)
    assert outcome.ok is ok and detail in outcome.detail
    assert rdma.device_outcome("p", discovery.EFA_RESOURCE, want, None, output).transient


def test_bandwidth_with_an_unknown_line_rate_skips_with_the_reason(lab: LabCluster, tmp_path: Path) -> None:
    """The double's nodes carry neither the rate label nor an instance type: no threshold, so no pass."""
    params = Parameters(
        tests=("rdma/bandwidth",), rdma_mode="shared", diagnostics_dir=str(tmp_path), probe_timeout=2, retry_delay=0.1
    )
    result = Runner(lab, params, all_tests()).run()
    (test,) = [t for t in result.tests if t.id == "rdma/bandwidth"]
    assert test.status is Status.SKIP and test.actions == []
    assert "unknown line rate (node lab-node-0: no spiderpool-rdma/network-gbps label" in test.reason
    assert test.reason.endswith("pass --rdma-min-gbps")
    assert_nothing_left(lab)


def test_bandwidth_on_one_node_says_it_needs_two_before_any_missing_fact(lab: LabCluster, tmp_path: Path) -> None:
    """Too few nodes is the first reason, as when the runner looked at nodes before facts: the line rate of the
    double's nodes is unknown too, but a second node is what the user must add first."""
    params = Parameters(
        tests=("rdma/bandwidth",),
        rdma_mode="shared",
        nodes=("lab-node-0",),
        diagnostics_dir=str(tmp_path),
        probe_timeout=2,
        retry_delay=0.1,
    )
    result = Runner(lab, params, all_tests()).run()
    (test,) = [t for t in result.tests if t.id == "rdma/bandwidth"]
    assert test.status is Status.SKIP and test.actions == []
    assert test.reason == "needs 2 schedulable nodes, the run has 1"
    assert_nothing_left(lab)


def test_bandwidth_with_a_given_minimum_needs_no_line_rate(lab: LabCluster, tmp_path: Path) -> None:
    """--rdma-min-gbps is the threshold: the unknown line rate of the double's nodes does not skip the test, which
    runs until the double's missing device fails it."""
    params = Parameters(
        tests=("rdma/bandwidth",),
        rdma_mode="shared",
        rdma_min_gbps=1.0,
        diagnostics_dir=str(tmp_path),
        probe_timeout=2,
        retry_delay=0.1,
    )
    result = Runner(lab, params, all_tests()).run()
    (test,) = [t for t in result.tests if t.id == "rdma/bandwidth"]
    assert test.status is Status.FAIL and "line rate" not in test.reason
    assert [a.action for a in test.actions] == ["start 2 RDMA pod(s)", "RDMA device of rdma-server"]
    assert "rdma-server: no RoCE v2 GID with an IPv4 address" in test.actions[-1].detail
    assert_nothing_left(lab)

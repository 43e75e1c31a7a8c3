"""RDMA: perftest parsers on published output, the GID script on a sysfs tree, mode detection, the pods the
suite creates, and its behaviour on the double (which has no RDMA: this kernel has none)."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from spider_validate.engine import discovery
from spider_validate.engine.context import RunContext
from spider_validate.engine.manifests import Network
from spider_validate.engine.model import RdmaMode, Status
from spider_validate.engine.params import Parameters
from spider_validate.engine.runner import Runner
from spider_validate.probes import linerate
from spider_validate.probes import rdma as rdma_probes
from spider_validate.suites import all_tests, rdma

from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left

FIXTURES = Path(__file__).parents[2] / "fixtures" / "perftest"
RDMA_IMAGE = {"rdma": "registry.example/spiderpool-rdma/rdma-tools:1"}  # the double runs no image


def forced(tmp_path: Path, test: str, **extra: Any) -> Parameters:
    """Parameters forcing the shared mode on the double, which has no RDMA (nor does this kernel), with an image."""
    return Parameters(
        tests=(test,),
        rdma_mode="shared",
        image_overrides=RDMA_IMAGE,
        diagnostics_dir=str(tmp_path),
        probe_timeout=2,
        retry_delay=0.1,
        **extra,
    )


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


MAC_GID = "fe80:0000:0000:0000:0250:56ff:fe8a:1b2c"  # the default GID: link-local from ens5's MAC (EUI-64)


def rxe_tree(root: Path, node_ip: str, pods: list[str]) -> Path:
    """/sys/class/infiniband/rxe0 as the kernel lays it out for rxe0 on ens5 in the shared RDMA netns mode: a table of
    RXE_PORT_GID_TBL_LEN (1024, rxe_param.h) entries; entries 0 and 1 the default GID in each RoCE type
    (cache.c gid_table_reserve_default); then each address of ens5 and of its upper devices (roce_gid_mgmt.c
    is_eth_port_of_netdev_filter: ipvlan and macvlan slaves are upper devices, in whatever namespace) in the first
    free slots, one entry per type, v1 first (update_gid's loop over the type mask); a pod's IPv6 link-local
    address too. A free entry reads as zeros and its ndevs/types fail to read (sysfs.c): directories here."""
    port = root / "class" / "infiniband" / "rxe0" / "ports" / "1"
    for sub in ("gids", "gid_attrs/ndevs", "gid_attrs/types"):
        (port / sub).mkdir(parents=True)
    entries = [(MAC_GID, "ens5"), (rdma_probes.sysfs_gid(node_ip), "ens5")]
    for i, ip in enumerate(pods):
        entries.append((rdma_probes.sysfs_gid(ip), "eth0"))
        if i % 2:
            entries.append((MAC_GID, "eth0"))  # an ipvlan slave's link-local address: the parent's MAC
    table = [(gid, ndev, kind) for gid, ndev in entries for kind in ("IB/RoCE v1", "RoCE v2")]
    for index in range(1024):
        gid, ndev, kind = table[index] if index < len(table) else ("0000:" * 7 + "0000", "", "")
        (port / "gids" / str(index)).write_text(gid + "\n")
        for sub, value in (("gid_attrs/ndevs", ndev), ("gid_attrs/types", kind)):
            target = port / sub / str(index)
            target.write_text(value + "\n") if value else target.mkdir()
    return root


def gid_table(root: Path) -> list[rdma_probes.Gid]:
    """GID_TABLE_SCRIPT run for real (sh) on the tree, parsed as the suite parses it."""
    env = {"SYSFS": str(root), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(["sh", "-c", rdma_probes.GID_TABLE_SCRIPT], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return rdma_probes.parse_gid_table(proc.stdout)


NODE_IP = "10.42.15.128"
PODS = [f"10.42.15.{n}" for n in range(130, 137)]  # seven pods' addresses: their v2 GIDs reach index 10 and beyond


def test_each_pod_uses_the_gid_of_its_own_address_at_any_index(tmp_path: Path) -> None:
    """The choice is by address: the node's GID (index 3) in host mode, a pod's at index 10 and beyond in pod mode
    (a glob of gids/* sorts 10 before 2: the old script took another pod's address)."""
    table = gid_table(rxe_tree(tmp_path, NODE_IP, PODS))
    host = rdma.path_of("softroce", "rdma-server", "w0", NODE_IP, table, [])
    assert isinstance(host, rdma.Path) and (host.gid.index, host.gid.ndev, host.gid.type) == (3, "ens5", "RoCE v2")
    for ip in PODS:
        pod = rdma.path_of("shared", "rdma-client", "w0", ip, table, [])
        assert isinstance(pod, rdma.Path) and pod.gid.address == ip and pod.gid.type == "RoCE v2", ip
    assert rdma.path_of("shared", "p", "w0", PODS[-1], table, []).gid.index >= 10  # type: ignore[union-attr]


def test_no_gid_for_the_intended_address_fails_with_the_reason(tmp_path: Path) -> None:
    table = gid_table(rxe_tree(tmp_path, NODE_IP, PODS[:2]))
    missing = rdma.path_of("shared", "rdma-client", "w0", "10.42.15.200", table, [])
    assert isinstance(missing, str)
    assert "rdma-client: no RDMA device of the pod has a GID for 10.42.15.200" in missing
    assert "rxe0 port 1 GID index 3 (10.42.15.128, RoCE v2, ens5)" in missing  # what it has instead, never used
    v1_only = [g for g in table if g.type != "RoCE v2"]
    assert "has no RoCE v2 GID, only rxe0 port 1 GID index 2" in str(
        rdma.path_of("shared", "p", "w0", NODE_IP, v1_only, [])
    )


def test_efa_uses_its_device_gid_index_0(tmp_path: Path) -> None:
    """An EFA port: one GID, its address (not an IP's), no netdev and an IB type (cache.c: not a RoCE port)."""
    port = tmp_path / "class" / "infiniband" / "rdmap16s27" / "ports" / "1"
    (port / "gids").mkdir(parents=True)
    (port / "gid_attrs" / "types").mkdir(parents=True)
    (port / "gid_attrs" / "ndevs" / "0").mkdir(parents=True)
    (port / "gids" / "0").write_text("fe80:0000:0000:0000:0039:beff:fe6e:0c23\n")
    (port / "gid_attrs" / "types" / "0").write_text("IB/RoCE v1\n")
    table = gid_table(tmp_path)
    path = rdma.path_of("efa", "rdma-client", "w0", "10.0.0.5", table, ["rdmap16s27"])
    assert isinstance(path, rdma.Path) and (path.gid.device, path.gid.index) == ("rdmap16s27", 0)
    assert "no EFA device" in str(rdma.path_of("efa", "rdma-client", "w0", "10.0.0.5", table, ["mlx5_0"]))


def perftest_client_output(local: str, remote: str) -> str:
    """The connection lines ib_*_bw prints before its table (perftest_communication.c ctx_print_pingpong_data with
    communication.h BASIC_ADDR_FMT, RDMA_FMT and PERF_GID_FMT: a GID as 16 decimal bytes)."""

    def gid_line(address: str) -> str:
        raw = bytes.fromhex(rdma_probes.sysfs_gid(address).replace(":", ""))
        return " GID: " + ":".join(f"{b:02d}" for b in raw)

    return (
        " local address: LID 0000 QPN 0x0011 PSN 0x6e1f2b RKey 0x001234 VAddr 0x007f2a3c000000\n"
        f"{gid_line(local)}\n"
        " remote address: LID 0000 QPN 0x0012 PSN 0x1c0ffe RKey 0x005678 VAddr 0x007f11d0000000\n"
        f"{gid_line(remote)}\n" + (FIXTURES / "mb-sec.txt").read_text()
    )


def test_bandwidth_fails_when_perftest_used_another_gid(tmp_path: Path) -> None:
    """perftest's own account of the GIDs it used must be the intended ones: the node's when a pod's was meant fails."""
    table = gid_table(rxe_tree(tmp_path, NODE_IP, PODS))
    client = rdma.path_of("shared", "rdma-client", "w0", PODS[5], table, [])
    server = rdma.path_of("shared", "rdma-server", "w1", PODS[6], table, [])
    assert isinstance(client, rdma.Path) and isinstance(server, rdma.Path)
    assert rdma.used_the_paths(perftest_client_output(PODS[5], PODS[6]), client, server) == ""
    wrong = rdma.used_the_paths(perftest_client_output(NODE_IP, PODS[6]), client, server)
    assert wrong.startswith("perftest used local GID 0000:0000:0000:0000:0000:ffff:0a2a:0f80 instead of")
    assert f"({PODS[5]})" in wrong
    assert rdma.used_the_paths((FIXTURES / "mb-sec.txt").read_text(), client, server) == (
        "perftest did not print the GIDs it used"
    )


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


@pytest.mark.parametrize("mode", ["efa", "shared", "sriov", "softroce"])
def test_rdma_pods_request_what_rdma_needs_and_validate(mode: RdmaMode) -> None:
    ctx = RunContext(cluster=None, params=Parameters(), run_id="r", namespace="ns")  # type: ignore[arg-type]
    ctx.network = Network("kube-system", "ipvlan-ens5", "default")
    resource = discovery.RESOURCES.get(mode, discovery.SRIOV_DEFAULT)
    pod = rdma.rdma_pod(ctx, "p", "worker-0", mode, resource)
    kubernetes_validate.validate(pod, "1.33", strict=True)
    container: dict[str, Any] = pod["spec"]["containers"][0]
    assert container["resources"]["limits"][resource] == "1"
    assert container["securityContext"]["capabilities"]["add"] == ["IPC_LOCK"]
    assert ("hugepages-2Mi" in container["resources"]["limits"]) == (mode == "efa")
    assert pod["spec"].get("hostNetwork", False) == (mode == "softroce")  # rxe serves the node's address only
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
    params = forced(tmp_path, "rdma/device")
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
    ("fixture", "rate", "mode", "passes", "needs"),
    [
        ("mb-sec.txt", 100.0, "efa", True, "needs 40.00 (0.4 x 100 Gb/s"),  # 50.6 Gb/s measured, one SRD QP
        ("mb-sec.txt", 200.0, "efa", False, "needs 80.00 (0.4 x 200 Gb/s"),
        ("mb-sec.txt", 100.0, "sriov", False, "needs 80.00 (0.8 x 100 Gb/s"),
        ("mb-sec.txt", 100.0, "shared", True, "needs 50.00 (0.5 x 100 Gb/s"),
        ("softroce-mb-sec.txt", 12.5, "softroce", True, "needs 0.62 (0.05 x 12.5 Gb/s"),  # 0.925 Gb/s
        ("softroce-mb-sec.txt", 25.0, "softroce", False, "needs 1.25 (0.05 x 25 Gb/s"),
    ],
)
def test_bandwidth_is_judged_against_a_fraction_of_the_line_rate(
    fixture: str, rate: float, mode: str, passes: bool, needs: str
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
    params = forced(tmp_path, "rdma/bandwidth")
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
    params = forced(tmp_path, "rdma/bandwidth", rdma_min_gbps=1.0)
    result = Runner(lab, params, all_tests()).run()
    (test,) = [t for t in result.tests if t.id == "rdma/bandwidth"]
    assert test.status is Status.FAIL and "line rate" not in test.reason
    assert [a.action for a in test.actions] == ["start 2 RDMA pod(s)", "RDMA path of rdma-server"]
    (address,) = re.findall(r"rdma-server on \S+ \(([\d.]+)\)", test.actions[0].detail)  # its underlay address
    assert f"rdma-server: no RDMA device of the pod has a GID for {address} (" in test.actions[-1].detail
    assert_nothing_left(lab)


def test_without_an_rdma_image_the_tests_are_skipped_saying_how_to_build_one(lab: LabCluster, tmp_path: Path) -> None:
    """No published image has perftest with SRD, fi_pingpong and pyverbs: the image is a required value."""
    params = Parameters(
        tests=("rdma/",), rdma_mode="shared", diagnostics_dir=str(tmp_path), probe_timeout=2, retry_delay=0.1
    )
    result = Runner(lab, params, all_tests()).run()
    tests = [t for t in result.tests if t.suite == "rdma"]
    assert tests and all(t.status is Status.SKIP and t.reason == discovery.RDMA_IMAGE_MISSING for t in tests)
    assert "scripts/build-rdma-tools-image.sh" in discovery.RDMA_IMAGE_MISSING
    assert_nothing_left(lab)

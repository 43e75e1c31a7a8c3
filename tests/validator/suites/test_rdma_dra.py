"""EFA through Dynamic Resource Allocation on the double: the RDMA tests request the device through a claim when
aws-dranet publishes it (its real DeviceClass, tests/lab/dra.py's driver and allocator) and through the device
plugin's resource otherwise, with the same verdict (the double has no RDMA: the pod holding the device sees none)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any, cast

from spider_validate.cluster.api import Cluster
from spider_validate.engine import manifests
from spider_validate.engine.model import Status
from spider_validate.engine.runner import Runner
from spider_validate.suites import all_tests, rdma

from tests import chart
from tests.conftest import REPO
from tests.lab.cluster import LabCluster
from tests.lab.dra import EFA_DEVICE
from tests.lab.fixtures import assert_nothing_left
from tests.upstream.rbac import BOOTSTRAP_DISCOVERY, Authorizer
from tests.validator.cluster.authorized import Authorized
from tests.validator.cluster.test_rbac_file import NS, ROLES, USER, bindings
from tests.validator.suites.test_rdma import forced


def device_test(lab: LabCluster, tmp_path: Path, **extra: Any) -> Any:
    params = dataclasses.replace(forced(tmp_path, "rdma/device"), **({"rdma_mode": "efa"} | extra))
    result = Runner(lab, params, all_tests()).run()
    (test,) = [t for t in result.tests if t.id == "rdma/device"]
    return test


def test_rdma_device_has_one_verdict_through_a_claim_and_through_the_resource(lab: LabCluster, tmp_path: Path) -> None:
    plugin = device_test(lab, tmp_path / "plugin")
    assert_nothing_left(lab)
    with lab.dra_driver(chart.dranet_device_class()):
        dra = device_test(lab, tmp_path / "dra", rdma_mode="auto")  # discovery finds the DeviceClass and the slices
    assert (plugin.status, dra.status) == (Status.FAIL, Status.FAIL)
    assert [a.action for a in plugin.actions] == [a.action for a in dra.actions]
    assert "rdma-with requests vpc.amazonaws.com/efa but sees no RDMA device" in plugin.actions[-1].detail
    assert "rdma-with requests a claim of DeviceClass efa.networking.k8s.aws but sees no RDMA device" in (
        dra.actions[-1].detail
    )
    start = dra.actions[0]
    (claim,) = start.data["claims"]
    assert claim["pod"] == "rdma-with" and claim["claim"].startswith("rdma-with-rdma-")
    # the device the allocator chose on the pod's node, and the driver's word on it (dranet's RDMA-only condition)
    assert claim["devices"] == [
        {"driver": "dra.net", "pool": "lab-node-0", "device": EFA_DEVICE["name"], "ready": ["RDMAOnlyDeviceReady"]}
    ]
    assert f"claim {claim['claim']} of rdma-with: dra.net/lab-node-0/{EFA_DEVICE['name']}" in start.detail
    assert_nothing_left(lab)


def test_a_device_class_that_selects_nothing_fails_naming_the_claim(lab: LabCluster, tmp_path: Path) -> None:
    device_class = copy.deepcopy(chart.dranet_device_class())
    (selector,) = device_class["spec"]["selectors"]
    selector["cel"]["expression"] = selector["cel"]["expression"].replace("Elastic Fabric Adapter (EFA)", "no such")
    with lab.dra_driver(device_class):
        test = device_test(lab, tmp_path, rdma_mode="auto", stuck_after=1.0)
    assert test.status is Status.ERROR  # its pods could not be set up: the test errs, saying why
    detail = test.reason
    assert "pod rdma-with is stuck (FailedScheduling: 0/2 nodes are available: cannot allocate all claims)" in detail
    assert "claim rdma-with-rdma-" in detail and "(DeviceClass efa.networking.k8s.aws) is not allocated" in detail
    assert_nothing_left(lab)


def test_a_dra_run_in_its_namespace_needs_the_dra_role_and_nothing_more(lab: LabCluster, tmp_path: Path) -> None:
    """validators/rbac.yaml's spider-validate-dra beside the namespaced mode's roles: the rdma suite in DRA mode (a
    privileged namespace) is refused nothing, and uses every grant of the three roles the run needs for it."""
    labels = {manifests.PSA_ENFORCE: "privileged"}
    lab.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": labels}})
    commands = [
        f"kubectl create clusterrolebinding {r} --clusterrole={r} --user=YOU"
        for r in ("spider-validate-read", "spider-validate-dra")
    ] + [f"kubectl -n {NS} create rolebinding spider-validate-run --clusterrole=spider-validate-run --user=YOU"]
    header = (REPO / "validators" / "rbac.yaml").read_text()
    assert all(f"#   {c.replace(NS, 'NS')}\n" in header for c in commands)  # as the file says
    cluster = Authorized(lab, Authorizer([*BOOTSTRAP_DISCOVERY, *ROLES, *bindings(commands)]), USER)
    try:
        run = dataclasses.replace(forced(tmp_path, "rdma/device"), rdma_mode="auto", in_namespace=NS)
        with lab.dra_driver(chart.dranet_device_class()):
            result = Runner(cast(Cluster, cluster), run, all_tests()).run()
        (test,) = [t for t in result.tests if t.id == "rdma/device"]
        assert test.status is Status.FAIL and "a claim of DeviceClass" in test.actions[-1].detail  # no RDMA here
        assert cluster.refused == []
        unused = {
            g
            for g in cluster.unused()
            if g[2] in {"deviceclasses", "resourceslices", "resourceclaimtemplates", "resourceclaims"}
        }
        assert unused == set()
    finally:
        lab.delete("Namespace", NS)
        assert_nothing_left(lab, run_prefix=NS)


P4D = json.loads((REPO / "tests" / "fixtures" / "upstream" / "dranet-resourceslice-p4d.json").read_text())["slice"]


def report(pod: str, device: str) -> dict[str, Any]:
    pool = P4D["spec"]["pool"]["name"]
    return {"claim": f"{pod}-rdma-abcde", "pod": pod, "devices": [
        {"driver": "dra.net", "pool": pool, "device": device, "ready": ["RDMAOnlyDeviceReady"]}]}  # fmt: skip


def test_the_claimed_device_is_linked_to_the_device_whose_counters_the_proof_reads() -> None:
    """dranet names each EFA's RDMA device in its slice (dra.net/rdmaDevice): the claim of pci-0000-10-1b-0 is
    rdmap16s27 (dranet's published p4d slice); a path measured on another device fails, naming both."""
    reports = [report("rdma-server", "pci-0000-10-1b-0"), report("rdma-client", "pci-0000-20-1b-0")]
    ok = rdma.claim_links(reports, [P4D], {"rdma-server": "rdmap16s27", "rdma-client": "rdmap32s27"})
    assert ok.ok, ok.detail
    assert [(c["pod"], c["device"], c["rdma_device"]) for c in ok.data["claims"]] == [
        ("rdma-server", "pci-0000-10-1b-0", "rdmap16s27"),
        ("rdma-client", "pci-0000-20-1b-0", "rdmap32s27"),
    ]
    wrong = rdma.claim_links(reports, [P4D], {"rdma-server": "rdmap144s27", "rdma-client": "rdmap32s27"})
    assert not wrong.ok
    assert wrong.detail == (
        "rdma-server's claim rdma-server-rdma-abcde: dra.net/ip-192-168-153-160.ec2.internal/pci-0000-10-1b-0 is "
        "rdmap16s27, but its path and counters are rdmap144s27"
    )
    assert not rdma.claim_links([], [P4D], {}).ok

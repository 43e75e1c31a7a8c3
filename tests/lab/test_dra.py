"""The double's DRA: the structured allocator's model on the upstream allocator's own test cases, the DeviceClass of
aws-dranet evaluated by a real CEL implementation, and the lab's claims, slices and allocation."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests import chart
from tests.conftest import REPO
from tests.upstream import dra_allocator
from tests.upstream.scheduling import Node

CASES = json.loads((REPO / "tests" / "fixtures" / "upstream" / "dra-allocator-test.json").read_text())["cases"]
NODES = {
    "node-1": Node("node-1", {"region": "region-1", "planet": "earth"}),
    "node-2": Node("node-2", {"region": "region-2", "planet": "earth"}),
}


def selector(where: str | list[str]) -> dict[str, Any]:
    """localNodeSelector (a name) or nodeLabelSelector ([key, value]), allocator_testing.go."""
    if isinstance(where, str):
        return {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [where]}]}]}
    return {"nodeSelectorTerms": [{"matchExpressions": [{"key": where[0], "operator": "In", "values": [where[1]]}]}]}


def build(case: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    classes = [
        {"metadata": {"name": c["name"]}, "spec": {"selectors": [{"cel": {"expression": c["expression"]}}]}}
        if isinstance(c, dict)
        else {
            "metadata": {"name": c[0]},
            "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{c[1]}"'}}]},
        }
        for c in case["classes"]
    ]
    slices = []
    for s in case["slices"]:
        spec: dict[str, Any] = {
            "driver": s["driver"],
            "devices": [d if isinstance(d, dict) else {"name": d} for d in s["devices"]],
            "pool": {"name": s["pool"], "resourceSliceCount": s["count"], "generation": s["generation"]},
        }
        if isinstance(s["node"], str):
            spec["nodeName"] = s["node"]
        else:
            spec["nodeSelector"] = selector(s["node"])
        slices.append({"metadata": {"name": s["name"]}, "spec": spec})
    claims = []
    for c in case["claims"]:
        requests = []
        for r in c["requests"]:
            exactly: dict[str, Any] = {
                "deviceClassName": r["class"],
                "allocationMode": r.get("mode", "ExactCount"),
                "count": r["count"],
            }
            if "selectors" in r:
                exactly["selectors"] = [{"cel": {"expression": e}} if e else {} for e in r["selectors"]]
            requests.append({"name": r["name"], "exactly": exactly})
        constraints = [{"matchAttribute": a} if a else {} for a in c.get("constraints", [])]
        claims.append(
            {"metadata": {"name": c["name"]}, "spec": {"devices": {"requests": requests, "constraints": constraints}}}
        )
    return classes, slices, claims


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_allocator_model_passes_the_upstream_allocators_cases(case: dict[str, Any]) -> None:
    classes, slices, claims = build(case)
    allocated = {tuple(d) for d in case.get("allocated", [])}
    if "error" in case:
        with pytest.raises(dra_allocator.AllocationError, match=re.escape(case["error"])):
            dra_allocator.allocate(NODES[case["node"]], claims, classes, slices, allocated)
        return
    results = dra_allocator.allocate(NODES[case["node"]], claims, classes, slices, allocated)
    if case["expect"] is None:
        assert results is None
        return
    assert results is not None
    # The upstream matchers compare results as sets (its pools come from a Go map, in no fixed order).
    got = [
        sorted([r["request"], r["driver"], r["pool"], r["device"]] for r in a["devices"]["results"]) for a in results
    ]
    assert got == [sorted(e) for e in case["expect"]]
    for allocation in results:
        assert allocation.get("nodeSelector") == (selector(case["selector"]) if "selector" in case else None)


P4D_SLICE = json.loads((REPO / "tests" / "fixtures" / "upstream" / "dranet-resourceslice-p4d.json").read_text())[
    "slice"
]


def test_aws_dranets_device_class_selects_the_efa_devices_of_a_slice_dranet_published() -> None:
    """Evaluated by cel-python on the live slice of dranet's example: the four EFA devices, none of the ENAs."""
    (selector_,) = chart.dranet_device_class()["spec"]["selectors"]
    picked = [
        d["name"]
        for d in P4D_SLICE["spec"]["devices"]
        if dra_allocator.device_matches(selector_["cel"]["expression"], "dra.net", d)
    ]
    efa = [
        d["name"]
        for d in P4D_SLICE["spec"]["devices"]
        if d["attributes"]["dra.net/pciDevice"]["string"] == "Elastic Fabric Adapter (EFA)"
    ]
    assert picked == efa and len(efa) == 4


def test_a_selector_on_an_attribute_a_device_lacks_is_the_allocations_error_naming_the_class() -> None:
    """cel-go fails on a missing map key; Allocate returns the error, naming the class and the device."""
    device = {"name": "veth0", "attributes": {"dra.net/ifName": {"string": "veth0"}}}
    slice_ = {**P4D_SLICE, "spec": {**P4D_SLICE["spec"], "devices": [device]}}
    node = Node(P4D_SLICE["spec"]["nodeName"], {})
    claim = {
        "metadata": {"name": "c", "namespace": "n"},
        "spec": {
            "devices": {
                "requests": [{"name": "efa", "exactly": {"deviceClassName": "efa.networking.k8s.aws", "count": 1}}]
            }
        },
    }
    with pytest.raises(
        dra_allocator.AllocationError,
        match=r"class efa.networking.k8s.aws: selector #0 on device dra.net/\S+/veth0: CEL runtime error",
    ):
        dra_allocator.allocate(node, [claim], [chart.dranet_device_class()], [slice_], set())

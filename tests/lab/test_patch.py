"""The patch formats the lab's API server applies (tests/upstream/patch.py): the RFCs' own examples, and a strategic
merge patch as kubectl's client-side apply sends it (a list merged by its key, a list element deleted, the
element order directive) on the Pod schema the server publishes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.lab.discovery import patch_schema, resources
from tests.upstream.patch import PatchError, json_patch, merge_patch, strategic_merge_patch

CASES = json.loads((Path(__file__).parents[1] / "fixtures" / "upstream" / "patch-rfc-examples.json").read_text())


@pytest.mark.parametrize(("original", "patch", "result"), CASES["merge"])
def test_merge_patch_as_rfc_7396_appendix_a(original: Any, patch: Any, result: Any) -> None:
    assert merge_patch(original, patch) == result


@pytest.mark.parametrize(("document", "patch", "result"), CASES["json"])
def test_json_patch_as_rfc_6902_appendix_a(document: Any, patch: Any, result: Any) -> None:
    if result is None:
        with pytest.raises(PatchError):
            json_patch(document, patch)
    else:
        assert json_patch(document, patch) == result


def test_a_strategic_merge_patch_merges_containers_by_name() -> None:
    pod = {"spec": {"containers": [{"name": "a", "image": "x", "args": ["1"]}, {"name": "b", "image": "y"}],
                    "tolerations": [{"key": "k"}]}}  # fmt: skip
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "z"}, {"name": "b", "$patch": "delete"}],
            "tolerations": [{"key": "t"}],
        }
    }
    schema = patch_schema(resources()["Pod"])
    patched = strategic_merge_patch(pod, patch, schema)
    assert patched["spec"]["containers"] == [{"name": "a", "image": "z", "args": ["1"]}]
    assert patched["spec"]["tolerations"] == [{"key": "t"}]  # atomic: replaced
    assert strategic_merge_patch(pod, {"metadata": {"labels": {"a": "b"}}}, schema)["metadata"] == {
        "labels": {"a": "b"}
    }
    with pytest.raises(PatchError, match="not supported"):
        strategic_merge_patch(pod, {}, patch_schema(resources()["SpiderIPPool"]))

"""The audit's consistent dump, frozen from the lab: `python -m tests.lab.freeze_dump` (as root) rewrites
tests/fixtures/audit/consistent.json.

Three running pods of the double (two nodes), dumped as `kubectl get spiderippools,spiderendpoints,pods -A -o json`
prints them: a List with four-space indentation, sorted keys and a final newline (kubernetes/cli-runtime
pkg/printers/json.go:73-78 at 69e8693b, JSONPrinter: `json.MarshalIndent(obj, "", "    ")` then '\n'; Go encodes
an unstructured object's maps in key order). tests/validator/ipam/test_audit.py reads the file without root, and one of
its root tests checks that the lab still dumps the same shape.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spider_validate.engine import manifests
from spider_validate.engine.params import Parameters

from tests.lab import netns
from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "audit" / "consistent.json"
NS = "audit-fixture"
Dump = dict[str, Any]


@contextlib.contextmanager
def running_pods(lab: LabCluster) -> Iterator[Dump]:
    """Three running pods on the double, dumped like kubectl does; the pods go afterwards."""
    net = manifests.Network("kube-system", "macvlan-eth0", "default")
    for i in range(3):
        lab.create(manifests.pod(f"web-{i}", NS, "audit", "client", lab.node_names[i % 2], "img", net, Parameters()))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(p["status"]["phase"] != "Running" for p in lab.list("Pod", NS)):
            time.sleep(0.05)
        items = [*lab.list("SpiderIPPool"), *lab.list("SpiderEndpoint"), *lab.list("Pod")]
        yield {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
    finally:
        for pod in lab.list("Pod", NS):
            lab.delete("Pod", pod["metadata"]["name"], NS)
        assert_nothing_left(lab, NS)


def kubectl_json(dump: Dump) -> str:
    return json.dumps(dump, indent=4, sort_keys=True) + "\n"


def main() -> None:
    netns.sweep_dead()
    with tempfile.TemporaryDirectory() as workdir, LabCluster(Path(workdir)) as lab, running_pods(lab) as dump:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(kubectl_json(dump))
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()

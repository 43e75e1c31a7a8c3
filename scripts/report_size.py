"""Size of the HTML report of a real run on the namespace double with N nodes (default: 2 and 20).

Each node gets a client and a server pod (`--nodes` all of them), the preflight and connectivity suites run (for
N nodes: N x N ping and HTTP probes between pods, N to the Service, N to the nodes), and the result is reported
as `spider-validate run --html` reports it. Prints the run's time and the report's size, plain and gzipped. Needs
root (network namespaces) and the html extra.
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spider_validate.cli import common
from spider_validate.engine.params import Parameters
from spider_validate.engine.runner import Runner
from spider_validate.report import environment
from spider_validate.report import formats as report
from spider_validate.suites import all_tests

from tests.lab.cluster import LabCluster


def measure(nodes: int, keep: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, LabCluster(Path(tmp), nodes=nodes) as lab:
        params = Parameters(
            tests=("preflight", "connectivity"),
            nodes=tuple(lab.node_names),
            diagnostics_dir=tmp,
            pod_ready_timeout=300,
            stuck_after=60,
        )
        start = time.monotonic()
        runner = Runner(lab, params, all_tests())
        result = runner.run()
        argv = ["run", "--test", "preflight", "--test", "connectivity", "--nodes", ",".join(lab.node_names)]
        result.environment = environment.collect(lab, params, runner.ctx, argv)
        page = (keep or Path(tmp)) / f"report-{nodes}-nodes.html"
        common.write_html(result, str(page))
        if keep:
            (keep / f"result-{nodes}-nodes.json").write_text(report.to_json(result))
        data = page.read_bytes()
        size, packed = len(data) / 1000, len(gzip.compress(data)) / 1000
        saved = len(json.dumps(report.to_dict(result), default=str)) / 1000
        print(
            f"{nodes} nodes: {'passed' if result.passed else 'FAILED'} in {time.monotonic() - start:.0f} s, "
            f"{len(report.matrix(result))} ping/HTTP probes; report {size:.0f} kB, gzipped {packed:.0f} kB, "
            f"JSON {saved:.0f} kB"
        )


if __name__ == "__main__":
    keep = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    for n in (2, 20):
        measure(n, keep)

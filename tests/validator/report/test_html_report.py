"""The HTML report as a person meets it: rendered from real runs of the CLI against the namespace double, opened
in headless Chromium with no network (tests/browser.py), looked at (screenshots) and read (the DOM).

Each report must load nothing but itself, say at once whether the cluster is healthy, name what failed first,
mark the failing matrix cell and link it to the probe's command and output.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from spider_validate import cli, names
from spider_validate.cli import common
from spider_validate.engine.model import ActionResult, RunResult, Status, TestResult
from spider_validate.engine.params import Parameters
from spider_validate.engine.runner import Runner
from spider_validate.probes import linerate
from spider_validate.probes import rdma as rdma_probes
from spider_validate.report import environment, html
from spider_validate.report import formats as report
from spider_validate.report.html import view
from spider_validate.suites import all_tests, rdma

from tests import chart
from tests.browser import CHROMIUM, Browser
from tests.lab.cluster import LabCluster
from tests.lab.fixtures import assert_nothing_left, invoke

SCHEMA = json.loads((Path(html.__file__).parents[1] / "result_schema.json").read_text())
IPAM_RANGE = "198.18.0.200-198.18.0.239"  # free addresses of the double's subnet (198.18.0.0/24), outside lab-general
FAIL_FILL, PASS_FILL = "#c62828", "#2e7d32"  # charts.STATUS_RANGE, as the page shows them
PERFTEST = Path(__file__).parents[2] / "fixtures" / "perftest"
SHOTS = Path(__file__).parents[2] / "output" / "report-screenshots"  # kept after the run to look at


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip("needs Debian's chromium (scripts/install-tools.sh installs it)")
    with Browser() as b:
        yield b


@pytest.fixture
def fresh(lab: LabCluster) -> Iterator[LabCluster]:
    yield lab
    assert_nothing_left(lab)


def run_cli(lab: LabCluster, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], Path]:
    """`spider-validate run ... -o json --html FILE` on the double: exit code, the JSON printed, the page."""
    page = tmp_path / "report.html"
    outcome = invoke(lab, ["run", "-o", "json", "--html", str(page), *args], tmp_path)
    result = json.loads(outcome.stdout)
    jsonschema.validate(result, SCHEMA)
    return outcome.exit_code, result, page


def run_fast(lab: LabCluster, tmp_path: Path, argv: list[str], **overrides: Any) -> tuple[dict[str, Any], Path]:
    """A run with the short timeouts of the lab tests (a blackholed probe or a leak fails in seconds, not a
    minute), reported as `run --html` does: the CLI's environment and page writers on the Runner's result."""
    base: dict[str, Any] = {"probe_timeout": 2, "retry_delay": 0.1, "release_timeout": 3, "pod_ready_timeout": 40}
    params = Parameters(**(base | {"diagnostics_dir": str(tmp_path)} | overrides))
    runner = Runner(lab, params, all_tests())
    result = runner.run()
    result.environment = environment.collect(lab, params, runner.ctx, argv)
    page = tmp_path / "report.html"
    common.write_html(result, str(page))
    data = report.to_dict(result)
    jsonschema.validate(json.loads(json.dumps(data, default=str)), SCHEMA)
    return data, page


def look(browser: Browser, page: Path, name: str) -> None:
    """Open the report, check it asked for nothing but itself, and keep a screenshot."""
    browser.open(page)
    assert browser.requests == [page.resolve().as_uri()]
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.screenshot(SHOTS / f"{name}-top.png")  # what one sees first
    shot = browser.screenshot(SHOTS / f"{name}.png", full_page=True)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


CELLS_JS = """
[...document.querySelectorAll('figure.matrix a')].map(a => {
  const id = a.getAttribute('xlink:href') || a.getAttribute('href');
  const target = document.getElementById(id.slice(1));
  const path = a.querySelector('path');
  return {figure: a.closest('figure').id, fill: path ? path.getAttribute('fill') : null,
          target: target ? target.tagName : null, open: target ? target.open : null,
          summary: target ? target.querySelector('summary').innerText : '',
          text: target ? target.textContent : ''};
}).filter(c => c.fill !== null)
"""


def cells(browser: Browser) -> dict[tuple[str, str], dict[str, Any]]:
    """(figure, 'probe source → destination') -> the matrix cell as shown: its colour and its linked detail."""
    found = {}
    for c in browser.evaluate(CELLS_JS):
        assert c["target"] == "DETAILS", c  # every cell links to its probe's detail
        words = c["summary"].split(":")[0].split(" ", 1)[1]  # "ping client-1 → server-0"
        found[(c["figure"], words)] = c
    return found


def test_healthy_run(fresh: LabCluster, tmp_path: Path, browser: Browser) -> None:
    code, result, page = run_cli(
        fresh, tmp_path, "--apps", "2", "--test", "!rdma/|perf/", "--ipam-range", IPAM_RANGE, "--ipam-pods", "8"
    )
    assert code == 0 and result["passed"]
    env = result["environment"]
    assert env["kubernetes_version"] == fresh.server_version() and [n["name"] for n in env["nodes"]] == [
        "lab-node-0",
        "lab-node-1",
    ]
    assert env["argv"][:1] == ["run"] and "--ipam-range" in env["argv"]
    look(browser, page, "healthy")
    assert browser.evaluate("document.getElementById('verdict').innerText").startswith("Healthy")
    assert browser.evaluate("document.querySelector('#fix-first').innerText").endswith("every test that ran passed.")
    shown = cells(browser)
    probes = [a for t in result["tests"] for a in t["actions"] if a["probe"] in {"ping", "http"}]
    assert len(shown) == len(probes) and {c["fill"] for c in shown.values()} == {PASS_FILL}
    ping = shown[("matrix-ping", "ping client-0 → server-1")]
    assert "kubectl exec -n spider-validate-" in ping["text"] and "client-0 -- sh -c" in ping["text"]
    assert "ping -c 3" in ping["text"] and "it ran 1 probes at once" not in ping["text"]  # one destination: alone
    # the real ping's output (its summary's counts vary: with -w, iputils sends on while the 3rd reply is on its way)
    assert "64 bytes from 198.18." in ping["text"] and "icmp_seq=3 ttl=" in ping["text"]
    ipam = browser.evaluate("document.querySelector('#ipam').innerText")
    assert "lab-general" in ipam and "198.18.0.0/24" in ipam
    rows = view.percentiles(view.ipam_samples(result))
    assert [r["kind"] for r in rows] == ["allocation", "release"] and rows[0]["n"] >= 8  # one sample per pod
    shown_rows = browser.evaluate(
        "[...document.querySelectorAll('#ipam table')[1].rows].slice(1).map(r => r.cells[0].innerText)"
    )
    assert shown_rows == ["allocation", "release"]
    assert page.stat().st_size < 300_000  # 2 nodes, 16 tests: attachable anywhere


def test_the_report_prints(tmp_path: Path, browser: Browser) -> None:
    """On A4, as printed: a PDF, and every chart fits the width of the page."""
    page = tmp_path / "print.html"
    html.write(rdma_result(), page)
    browser.open(page)
    browser.call("Emulation.setEmulatedMedia", {"media": "print"}, session=True)
    try:
        width = browser.evaluate("document.documentElement.clientWidth")
        rights = browser.evaluate(
            "[...document.querySelectorAll('figure svg')].map(s => s.getBoundingClientRect().right)"
        )
        assert rights and max(rights) <= width
        pdf = browser.pdf(tmp_path / "print.pdf")
        assert pdf.read_bytes().startswith(b"%PDF-")
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.screenshot(SHOTS / "print.png", full_page=True)
    finally:
        browser.call("Emulation.setEmulatedMedia", {"media": ""}, session=True)


def test_blackholed_path_and_server_down(fresh: LabCluster, tmp_path: Path, browser: Browser) -> None:
    """client-1 cannot reach server-0 at all; server-1's HTTP server is down (its pod still answers ping)."""

    def faults(lab: LabCluster, namespace: str) -> None:
        ips = {name: p.ip for (ns, name), p in lab.pods.items() if ns == namespace}
        lab.nft_in_pod(namespace, "client-1", f"ip daddr {ips['server-0']} drop")
        lab.stop_server(namespace, "server-1")

    fresh.faults.before_ready = {"client-1": faults}
    result, page = run_fast(
        fresh, tmp_path, ["run", "--test", "connectivity/pod-to-pod"], tests=("connectivity/pod-to-pod",)
    )
    assert not result["passed"]
    look(browser, page, "failing")
    verdict = browser.evaluate("document.getElementById('verdict').innerText")
    assert verdict.startswith("Not healthy")
    first = browser.evaluate("[...document.querySelectorAll('#fix-first li')].map(li => li.innerText)")
    assert len(first) == 3, first  # the broken path first (it explains its HTTP failure), then the dead server
    assert first[0].startswith("connectivity/pod-to-pod-cross-node: ping client-1 → server-0: unreachable: 100% loss")
    assert (
        first[1].startswith("http to server-1 fails from every source: connection refused") and "(2 probes)" in first[1]
    )
    assert first[2].startswith("connectivity/pod-to-pod-cross-node: http client-1 → server-0: timed out")
    shown = cells(browser)
    bad = {key for key, c in shown.items() if c["fill"] != PASS_FILL}
    assert bad == {
        ("matrix-ping", "ping client-1 → server-0"),
        ("matrix-http", "http client-1 → server-0"),
        ("matrix-http", "http client-0 → server-1"),
        ("matrix-http", "http client-1 → server-1"),
    }
    blackholed = shown[("matrix-ping", "ping client-1 → server-0")]
    assert blackholed["fill"] == FAIL_FILL and blackholed["open"]  # marked, and its detail is open
    assert "100% packet loss" in blackholed["text"] and "client-1 -- sh -c" in blackholed["text"]
    assert shown[("matrix-ping", "ping client-0 → server-1")]["fill"] == PASS_FILL  # the pod is there


def test_audit_of_a_leak(fresh: LabCluster, tmp_path: Path, browser: Browser) -> None:
    """A real leak (Spiderpool issue 4982, the double's fault): the ipam suite on lab-general, the pod's address
    not released; then `audit --html` of the live double names it with its fix."""
    pool = fresh.objects[("SpiderIPPool", "", "lab-general")]
    saved = copy.deepcopy(pool["status"])
    fresh.faults.leak_on_delete = {"allocate-0"}
    try:
        result, _ = run_fast(fresh, tmp_path, ["run"], tests=("ipam/allocate",), pool="lab-general")
        assert not result["passed"]
        page = tmp_path / "audit.html"
        outcome = invoke(fresh, ["audit", "--pool", "lab-general", "--html", str(page)])
        assert outcome.exit_code == 1, outcome.output
    finally:
        pool["status"] = saved
        fresh._refresh_pool("lab-general")
    look(browser, page, "audit-leak")
    assert browser.evaluate("document.getElementById('verdict').innerText").startswith("Not healthy")
    assert fresh.server_version() in browser.evaluate("document.querySelector('#environment').innerText")  # live
    findings = browser.evaluate("document.querySelector('#audit').nextElementSibling.innerText")
    assert "lab-general" in findings and "Fix" in browser.evaluate("document.querySelector('#fix-first').innerText")


def test_report_command_reads_format_1(tmp_path: Path, browser: Browser) -> None:
    """A result saved before format 2 (no format_version, environment, start times or exec) still renders."""
    old = {
        "run_id": "1125174635-aa9e",
        "namespace": "spider-validate-1125174635-aa9e",
        "cluster": "",
        "tests": [
            {
                "suite": "connectivity",
                "name": "pod-to-pod-cross-node",
                "description": "ping and HTTP between pods on different nodes",
                "status": "fail",
                "reason": "",
                "seconds": 1.5,
                "started": 1764000000.0,
                "actions": [
                    {
                        "scenario": "ping-other-node",
                        "action": "ping client-0 -> server-1",
                        "probe": "ping",
                        "source": "client-0",
                        "destination": "server-1",
                        "expected": "success",
                        "status": "fail",
                        "detail": "unreachable: 100% loss (0/3)",
                        "attempts": 1,
                        "seconds": 1.4,
                        "data": {"loss_percent": 100.0, "rtt_avg_ms": None},
                    }
                ],
            }
        ],
        "counts": {"pass": 0, "fail": 1, "skip": 0, "error": 0},
        "passed": False,
        "seconds": 3.0,
    }
    saved, page = tmp_path / "old.json", tmp_path / "old.html"
    saved.write_text(json.dumps(old))
    outcome = CliRunner().invoke(cli.main, ["report", str(saved), "-o", str(page)])
    assert outcome.exit_code == 0, outcome.output
    browser.open(page)
    assert browser.requests == [page.resolve().as_uri()]
    assert "format 1" in browser.evaluate("document.body.innerText")
    assert [c["fill"] for c in cells(browser).values()] == [FAIL_FILL]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "cannot read"),
        ("[]", "is not a spider-validate JSON result"),
        ('{"tests": [], "format_version": 99}', "has result format 99; this spider-validate reads formats 1 to 3"),
    ],
)
def test_report_command_refuses_what_it_cannot_read(tmp_path: Path, content: str, message: str) -> None:
    saved = tmp_path / "r.json"
    saved.write_text(content)
    outcome = CliRunner().invoke(cli.main, ["report", str(saved), "-o", str(tmp_path / "r.html")])
    assert outcome.exit_code == 2 and message in outcome.output
    assert not (tmp_path / "r.html").exists()


def rdma_result() -> dict[str, Any]:
    """Two bandwidth measurements judged by the rdma suite's own functions on published perftest outputs (the
    fixtures its parsers are tested on): the double has no RDMA, so no run can measure one here."""
    nodes = {
        "node-efa-0": "c6in.32xlarge",
        "node-efa-1": "c6in.32xlarge",
        "node-rxe-0": "m7i.xlarge",
        "node-rxe-1": "m7i.xlarge",
    }
    env_nodes = environment.node_facts(
        [{"metadata": {"name": n, "labels": {linerate.INSTANCE_TYPE_LABEL: t}}} for n, t in nodes.items()]
    )
    actions = []
    for fixture, mode, client, server in [
        ("mb-sec.txt", "efa", ("efa-client", "node-efa-0"), ("efa-server", "node-efa-1")),
        ("softroce-mb-sec.txt", "softroce", ("rxe-client", "node-rxe-0"), ("rxe-server", "node-rxe-1")),
    ]:
        rate = min(n["line_rate_gbps"] for n in env_nodes if n["name"] in {client[1], server[1]})
        threshold, how = rdma.required_gbps(rate, mode)
        outcome = rdma.judge(rdma_probes.parse_perftest((PERFTEST / fixture).read_text()), threshold, how)
        status = Status.PASS if outcome.ok else Status.FAIL
        actions.append(
            ActionResult(
                "bandwidth",
                "bandwidth",
                "rdma",
                client[0],
                server[0],
                "success",
                status,
                outcome.detail,
                1,
                5.0,
                outcome.data,
            )
        )
    test = TestResult("rdma", "bandwidth", "ib_write_bw between pods on two nodes", actions=actions)
    test.finish()
    result = RunResult("1126120000-beef", "spider-validate-1126120000-beef", "", tests=[test])
    result.environment = {
        "nodes": env_nodes,
        "pods": [
            {"name": p, "role": "rdma", "node": n, "ip": ""}
            for p, n in [
                ("efa-client", "node-efa-0"),
                ("efa-server", "node-efa-1"),
                ("rxe-client", "node-rxe-0"),
                ("rxe-server", "node-rxe-1"),
            ]
        ],
    }
    return report.to_dict(result)


def test_bandwidth_against_threshold_and_line_rate(tmp_path: Path, browser: Browser) -> None:
    page = tmp_path / "rdma.html"
    html.write(rdma_result(), page)
    browser.open(page)
    assert browser.requests == [page.resolve().as_uri()]
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.screenshot(SHOTS / "rdma.png", full_page=True)
    rows = browser.evaluate(
        "[...document.querySelectorAll('#bandwidth table tr')].slice(1).map(r => [...r.cells].map(c => c.innerText))"
    )
    # published output: 6033.76 MB/sec average = 50.61 Gb/s, against 0.4 x 200 Gb/s (c6in.32xlarge, EFA, one QP)
    assert rows[0] == ["efa-client → efa-server", "RDMA", "FAIL", "50.61", "50.62", "80.00", "200"]
    # Soft-RoCE: 110.28 MB/sec = 0.93 Gb/s, against 0.05 x 1.562 Gb/s (m7i.xlarge)
    assert rows[1] == ["rxe-client → rxe-server", "RDMA", "PASS", "0.93", "0.93", "0.08", "1.562"]
    first = browser.evaluate("document.querySelector('#fix-first li').innerText")
    assert first.startswith("rdma/bandwidth: bandwidth") and "needs 80.00" in first


def test_spiderpool_version_as_its_chart_deploys_it(tmp_path: Path) -> None:
    """The version the report shows, read from the controller Deployment that the real Spiderpool chart renders
    (the umbrella chart with spiderpool-1.2.2.tgz as `helm dependency build` leaves it)."""
    rendered = chart.render(chart.packaged_copy(tmp_path), chart.profile_values("aws-efa"))
    deployments = [o for o in rendered if o.get("kind") == "Deployment"]
    assert environment.spiderpool_version(deployments) == "1.2.2"  # its app.kubernetes.io/version label
    for dep in deployments:
        dep["metadata"]["labels"].pop(environment.VERSION_LABEL, None)
    assert environment.spiderpool_version(deployments) == "v1.2.2"  # else its image tag
    assert environment.spiderpool_version([]) == "unknown (spiderpool-controller not found)"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["run", "--html"], "--html"),
        (["audit", "--from-file", str(Path(__file__)), "--html"], "--html"),
        (["report", str(Path(__file__)), "-o"], "--output"),
    ],
)
def test_html_problems_are_said_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], option: str
) -> None:
    """A missing extra or an unwritable file: exit 2 with what to do, before any cluster is contacted."""

    def unreachable(*_: object) -> None:
        raise AssertionError("connected to a cluster")

    monkeypatch.setattr(common, "connect", unreachable)
    unwritable = CliRunner().invoke(cli.main, [*args, str(tmp_path / "missing-dir" / "r.html")])
    assert unwritable.exit_code == 2 and f"Invalid value for {option}: directory " in unwritable.output
    monkeypatch.setattr(html, "missing", lambda: ["altair", "vl-convert-python"])
    no_extra = CliRunner().invoke(cli.main, [*args, str(tmp_path / "r.html")])
    assert no_extra.exit_code == 2
    assert f"{option} needs altair, vl-convert-python: {names.install_hint('html')}" in no_extra.output
    assert not (tmp_path / "r.html").exists()


EVERY_NODE = json.loads((Path(__file__).parents[2] / "fixtures" / "results" / "every-field.json").read_text())[
    "environment"
]["nodes"][0]


def sixty_four_nodes(bad: int) -> dict[str, Any]:
    """A saved result of 64 nodes whose node `bad` answers no ping: 4,032 cross-node pings, each its own action with
    its part of its source's shared exec, as a run of this version records them."""
    nodes = [f"node-{i:02d}" for i in range(64)]
    pods = [
        {"name": f"{role}-{i}", "role": role, "node": n, "ip": f"10.1.{i}.{role == 'server'}", "app": ""}
        for i, n in enumerate(nodes)
        for role in ("client", "server")
    ]
    actions = []
    for s in range(64):
        for d in range(64):
            if s == d:
                continue
            ok = bad not in (s, d)
            actions.append(
                {
                    "scenario": "ping-other-node",
                    "action": f"ping client-{s} -> server-{d}",
                    "probe": "ping",
                    "source": f"client-{s}",
                    "destination": f"server-{d}",
                    "expected": "success",
                    "status": "pass" if ok else "fail",
                    "attempts": 1,
                    "seconds": 0.5,
                    "started": 1.7e9,
                    "detail": "3/3 replies, avg 0.06 ms" if ok else "unreachable: 100% loss (0/3)",
                    "data": {
                        "loss_percent": 0.0 if ok else 100.0,
                        "rtt_avg_ms": 0.06 if ok else None,
                        "exec": {
                            "command": f"kubectl exec -n sv client-{s} -- sh -c '... ping ... wait'",
                            "exit_code": 0 if ok else 1,
                            "stdout": "3 packets transmitted",
                            "stderr": "",
                            "shared_by": 63,
                        },
                    },
                }
            )
    test = {
        "suite": "connectivity",
        "name": "pod-to-pod-cross-node",
        "description": "",
        "status": "fail",
        "reason": "",
        "actions": actions,
        "seconds": 30.0,
        "started": 1.7e9,
    }
    return {
        "format_version": 3,
        "run_id": "r",
        "namespace": "sv",
        "cluster": "",
        "tests": [test],
        "passed": False,
        "counts": {"pass": 0, "fail": 1, "skip": 0, "error": 0},
        "seconds": 60.0,
        "environment": {"pods": pods, "nodes": [dict(EVERY_NODE, name=n) for n in nodes], "test_nodes": nodes},
    }


@pytest.mark.slow  # Chromium lays out 4,032 probes' details: seconds of CPU
def test_a_64_node_matrix_names_its_bad_node(tmp_path: Path, browser: Browser) -> None:
    """At 64x64 the page leads with a row per node (the bad one marked and linked to its first failing probe), the
    matrix marks the failing rows and columns, and every one of its 4,032 cells links to its own detail."""
    saved, page = tmp_path / "r.json", tmp_path / "r.html"
    saved.write_text(json.dumps(sixty_four_nodes(bad=37)))
    outcome = CliRunner().invoke(cli.main, ["report", str(saved), "-o", str(page)])
    assert outcome.exit_code == 0, outcome.output
    browser.open(page)  # (a full-page screenshot of 4,032 probes' details is taller than Chromium draws in time)
    assert browser.requests == [page.resolve().as_uri()]
    browser.evaluate("document.getElementById('connectivity').scrollIntoView()")
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.screenshot(SHOTS / "sixty-four-connectivity.png")
    browser.evaluate("document.getElementById('matrix-ping').scrollIntoView()")
    browser.screenshot(SHOTS / "sixty-four-matrix.png")
    rows = browser.evaluate(
        "[...document.querySelectorAll('#by-node tr')].slice(1).map(r => [r.className, r.innerText])"
    )
    assert len(rows) == 64
    assert [text.split("\t")[0] for cls, text in rows if cls == "fail"] == ["node-37"]
    assert rows[0][1].startswith("node-37\t0/126\tbad node: fails with every peer")  # first
    assert rows[1][1] == "node-00\t124/126\tfails with node-37"
    link = browser.evaluate("document.querySelector('#by-node tr.fail a').getAttribute('href')")
    assert browser.evaluate(f"document.getElementById({json.dumps(link[1:])}).tagName") == "DETAILS"
    red = browser.evaluate(
        "[...document.querySelectorAll('figure.matrix text')].filter(t => t.getAttribute('fill') === '#c62828')"
        ".map(t => t.textContent)"
    )
    assert sorted(red) == ["client-37", "server-37"]  # the rows and columns that mostly fail
    assert len(cells(browser)) == 64 * 63
    assert page.stat().st_size < 12_000_000

"""A stand-in for helm where the tests put it (first on PATH: pyhelm3 runs `helm` as a shell command), for the chart
phase and `status`: it records each command line with the contents of every -f file as it was when helm would have
read it, and succeeds; `status` prints what the real helm printed for a release (real_status), or fails as helm
does when there is none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ops.chart import CHART, NAMESPACE, RELEASE
from ops.infra import ROOT

FAKE_HELM = """#!{python}
import json, os, signal, sys
args = sys.argv[1:]
files = {{a: open(a).read() for p, a in zip(args, args[1:]) if p == "-f"}}
with open(os.environ["HELM_RECORD"], "a") as out:
    out.write(json.dumps({{"args": args, "files": files}}) + "\\n")
if args[:1] == ["upgrade"] and os.environ.get("HELM_SLOW"):
    # an install that takes its time (its pid in HELM_SLOW) until Ctrl-C, which helm's upgrade --install meets as
    # pkg/cmd/install.go runInstall does: "Release NAME has been cancelled.", the context cancelled, main's
    # "Error: " and exit 1
    def cancelled(signum, frame):
        print(f"Release {{args[1]}} has been cancelled.", flush=True)
        sys.stderr.write("Error: context canceled\\n")
        sys.exit(1)
    signal.signal(signal.SIGINT, cancelled)
    signal.signal(signal.SIGTERM, cancelled)
    print(f'Release "{{args[1]}}" does not exist. Installing it now.', flush=True)
    with open(os.environ["HELM_SLOW"], "w") as out:
        out.write(str(os.getpid()))
    while True:
        signal.pause()
if args[:1] == ["status"]:
    shown = os.environ.get("HELM_STATUS")
    if not shown:
        # helm's pkg/storage/driver/driver.go ErrReleaseNotFound, printed as "Error: " + err by cobra's Execute,
        # exit 1 by cmd/helm/helm.go (helm 4);
        # pyhelm3's command.py maps "release: not found" to ReleaseNotFoundError
        sys.stderr.write("Error: release: not found\\n")
        sys.exit(1)
    sys.stdout.write(open(shown).read())
"""


def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: Path | None = None) -> Path:
    """The fake helm first on PATH; the file it records its commands in."""
    bin_dir, record = tmp_path / "bin", tmp_path / "helm.jsonl"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "helm").write_text(FAKE_HELM.format(python=sys.executable))
    (bin_dir / "helm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HELM_RECORD", str(record))
    if status:
        monkeypatch.setenv("HELM_STATUS", str(status))
    return record


def real_status(tmp_path: Path) -> Path:
    """What the real helm prints for the umbrella chart's release in JSON (`helm status -o json` and `install -o
    json` print the release through one printer, pkg/cmd/status.go in helm 4): a client-side dry-run install of a
    chart with the umbrella chart's metadata (its subcharts left out: the release's shape does not depend on them)."""
    chart = tmp_path / "metadata-only"
    chart.mkdir()
    metadata = yaml.safe_load((CHART / "Chart.yaml").read_text())
    metadata.pop("dependencies", None)
    (chart / "Chart.yaml").write_text(yaml.safe_dump(metadata))
    shown = subprocess.run(
        [
            str(ROOT / ".tools/bin/helm"),
            "install",
            RELEASE,
            str(chart),
            "-n",
            NAMESPACE,
            "--dry-run=client",
            "-o",
            "json",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert json.loads(shown)["chart"]["metadata"]["version"] == metadata["version"]
    (tmp_path / "status.json").write_text(shown)
    return tmp_path / "status.json"

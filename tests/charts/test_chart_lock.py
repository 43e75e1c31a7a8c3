"""Chart.lock pins the subcharts in Helm's own format: the real helm's `dependency build` takes it (and refuses it once
Chart.yaml's dependencies change), fetching the pinned archives from a repository served on 127.0.0.1 under the
repository URLs Chart.yaml names, as the README's `helm repo add` registers them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import chart

LOCK = chart.CHART / "Chart.lock"
# Dependency's fields in their Go struct's order (helm pkg/chart/v2/dependency.go at v4.1.4), each but name and
# repository `omitempty`
DEPENDENCY_FIELDS = ["name", "version", "repository", "condition", "tags", "enabled", "import-values", "alias"]
REPOS = {"https://spidernet-io.github.io/spiderpool": "spiderpool", "https://aws.github.io/eks-charts": "eks"}


def hash_req(req: list[dict[str, Any]], lock: list[dict[str, Any]]) -> str:
    """helm internal/resolver/resolver.go HashReq: sha256 of Go's json.Marshal([2][]*Dependency{req, lock}) (no
    spaces; fields in struct order, empty ones left out; no URL here has the characters Go escapes as HTML)."""

    def marshal(dep: dict[str, Any]) -> dict[str, Any]:
        return {k: dep[k] for k in DEPENDENCY_FIELDS if dep.get(k) or k in {"name", "repository"}}

    data = json.dumps([[marshal(d) for d in req], [marshal(d) for d in lock]], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


def test_the_lock_pins_chart_yamls_dependencies_with_helms_digest() -> None:
    lock = yaml.safe_load(LOCK.read_text())
    required = chart.dependencies()
    assert lock["dependencies"] == [
        {"name": d["name"], "repository": d["repository"], "version": d["version"]} for d in required
    ]
    assert lock["digest"] == hash_req(required, lock["dependencies"])
    assert set(lock) == {"dependencies", "digest", "generated"}


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The pinned archives served on 127.0.0.1 with an index `helm repo index` made, registered (repositories.yaml
    and the index in the cache, as `helm repo add` leaves them) under the URLs Chart.yaml names: helm's environment."""
    served = tmp_path / "served"
    served.mkdir()
    for dep in chart.dependencies():
        shutil.copy2(chart.UPSTREAM_CHARTS / f"{dep['name']}-{dep['version']}.tgz", served)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        subprocess.run([chart.HELM, "repo", "index", str(served), "--url", url], check=True, timeout=60)
        cache = tmp_path / "cache"
        cache.mkdir()
        for name in REPOS.values():
            shutil.copy2(served / "index.yaml", cache / f"{name}-index.yaml")
        config = tmp_path / "repositories.yaml"
        config.write_text(yaml.safe_dump({"repositories": [{"name": n, "url": u} for u, n in REPOS.items()]}))
        home = {f"HELM_{d}_HOME": str(tmp_path / d.lower()) for d in ("CACHE", "CONFIG", "DATA")}
        yield {**os.environ, **home, "HELM_REPOSITORY_CONFIG": str(config), "HELM_REPOSITORY_CACHE": str(cache)}
    finally:
        server.shutdown()


def build(chart_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [chart.HELM, "dependency", "build", str(chart_dir), "--skip-refresh"]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
def test_helm_dependency_build_takes_the_lock_and_fetches_the_pinned_archives(
    repository: dict[str, str], tmp_path: Path
) -> None:
    chart_dir = tmp_path / "spiderpool-rdma"
    shutil.copytree(chart.CHART, chart_dir, ignore=shutil.ignore_patterns("charts"))
    done = build(chart_dir, repository)
    assert done.returncode == 0, done.stderr
    for dep in chart.dependencies():
        archive = f"{dep['name']}-{dep['version']}.tgz"
        assert (chart_dir / "charts" / archive).read_bytes() == (chart.UPSTREAM_CHARTS / archive).read_bytes()
    assert (chart_dir / "Chart.lock").read_text() == LOCK.read_text()  # built from, not rewritten

    text = (chart_dir / "Chart.yaml").read_text()  # a dependency changed without `helm dependency update`
    (chart_dir / "Chart.yaml").write_text(text.replace("version: 1.2.2", "version: 1.2.3"))
    done = build(chart_dir, repository)
    assert done.returncode == 1 and "the lock file (Chart.lock) is out of sync" in done.stderr


@pytest.mark.slow
def test_without_the_repositories_added_the_build_says_so(tmp_path: Path) -> None:
    chart_dir = tmp_path / "spiderpool-rdma"
    shutil.copytree(chart.CHART, chart_dir, ignore=shutil.ignore_patterns("charts"))
    env = {**os.environ, "HELM_REPOSITORY_CONFIG": str(tmp_path / "none.yaml")}
    env |= {f"HELM_{d}_HOME": str(tmp_path / d.lower()) for d in ("CACHE", "CONFIG", "DATA")}
    done = build(chart_dir, env)
    assert done.returncode == 1 and "no repository definition for" in done.stderr

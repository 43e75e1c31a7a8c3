"""spider-validate as a user installs it: its own distribution, only its runtime dependencies, its data inside
the package. scripts/test-installed-validator.sh runs this (and the lab suites) in a fresh environment where
the package comes from the built wheel; in the development environment it is the editable install."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import spider_validate
from spider_validate import names

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("spider-validate")
INSTALLED = bool(os.environ.get("SPIDER_VALIDATE_INSTALLED"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not INSTALLED, reason="only in the fresh environment of scripts/test-installed-validator.sh")
def test_the_package_comes_from_the_wheel_not_the_source_tree() -> None:
    location = Path(spider_validate.__file__).resolve()
    assert REPO / "validators" not in location.parents and "site-packages" in location.parts


def test_the_distribution_declares_what_the_cli_imports_and_nothing_of_the_infrastructure() -> None:
    requires = metadata.requires("spider-validate") or []
    runtime = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in requires if "extra ==" not in r}
    assert {"kubernetes", "urllib3", "rich", "junit-xml", "click", "pyyaml"} <= runtime
    assert not runtime & {"boto3", "botocore", "cdktn", "cdktn-provider-aws", "constructs", "pydantic", "jinja2"}
    extras = {r.split("extra ==")[1].strip(" '\""): r for r in requires if "extra ==" in r}
    assert extras["kubeconfig"].startswith("boto3") and extras["aws"].startswith("boto3")


@pytest.mark.skipif(not os.environ.get("SPIDER_VALIDATE_KUBERNETES_MAJOR"), reason="a run of one client major only")
def test_the_kubernetes_client_is_the_major_this_run_is_for() -> None:
    """Each run of scripts/test-installed-validator.sh stands for one major of the client: make sure it got it."""
    assert metadata.version("kubernetes").split(".")[0] == os.environ["SPIDER_VALIDATE_KUBERNETES_MAJOR"]


def test_the_entry_point_runs_list_images_manifests_and_version() -> None:
    assert run("--version").stdout == f"spider-validate, version {spider_validate.__version__}\n"
    listing = run("list")
    assert listing.returncode == 0 and "rdma/bandwidth" in listing.stdout
    assert any(
        i.startswith("registry.k8s.io/e2e-test-images/agnhost:2.53@sha256:") for i in run("images").stdout.split()
    )
    manifests = run("manifests", "--nodes", "w0,w1")
    assert manifests.returncode == 0 and "nodeName: w1" in manifests.stdout


def without_boto3() -> None:
    try:
        import boto3  # noqa: F401
    except ImportError:
        return
    pytest.skip("boto3 is installed here (the kubeconfig and aws extras)")


def test_the_kubeconfig_command_without_boto3_says_how_to_get_it() -> None:
    without_boto3()
    result = run("kubeconfig", "--cluster", "demo", "--region", "us-east-1")
    assert result.returncode == 2
    assert f"`kubeconfig` needs boto3: {names.install_hint('kubeconfig')}" in result.stderr


def test_the_cloud_audit_without_boto3_says_how_to_get_it() -> None:
    without_boto3()
    dump = REPO / "tests" / "fixtures" / "audit" / "consistent.json"
    result = run("audit", "--from-file", str(dump), "--cloud", "aws", "--region", "us-east-1")
    assert result.returncode == 2
    assert f"--cloud aws needs boto3: {names.install_hint('aws')}" in result.stderr

"""Shared fixtures: the instance table, configurations written as YAML, synthesized stacks."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from cdk.config import ClusterConfig
from cdk.ec2_types import InstanceTable
from cdk.ipplan import IpPlan, load_plan

if TYPE_CHECKING:
    from tests.bootstrap.sandbox import Keys

pytest_plugins = ["tests.lab.fixtures"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    """Stop before collection when ../shared is missing: test modules read it as they are imported, which would
    end the run in a FileNotFoundError that does not say what the tree is or where it comes from."""
    if not SHARED.is_dir():
        pytest.exit(
            f"the tests need the shared reference tree at {SHARED} (beside this repository; not in git): upstream "
            "Spiderpool CRDs and values, the packaged subcharts, the EC2 instance table. CI provides it; contributors "
            "get it from the maintainers (docs/testing.md lists each file and its upstream source). `make synth` and "
            "the product need none of it.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


def fresh_clone(tmp_path: Path) -> Path:
    """The files a `git clone` of this tree would have (tracked and new, not ignored), without ../shared."""
    clone = tmp_path / "main"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / name.decode()
        if src.is_file():
            (clone / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            (clone / name.decode()).write_bytes(src.read_bytes())
    assert not (tmp_path / "shared").exists()
    return clone


@pytest.fixture(scope="session")
def table() -> InstanceTable:
    return InstanceTable.load()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    def write(data: dict[str, Any]) -> Path:
        path = tmp_path / "cluster.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


#: Configurations every synthesis-level test covers: each rdma mode, and an HA control plane reached from an
#: admin network whose EFA workers give pods the device through DRA.
VARIANTS: dict[str, dict[str, Any]] = {
    "default-efa": {},
    "softroce": {"name": "softroce", "workers": {"instance_type": "m7i.xlarge", "rdma": "softroce"}},
    "none": {
        "name": "plain",
        "workers": {"instance_type": "m7i.large", "rdma": "none", "count": 3},
        "secret_readers": ["arn:aws:iam::123456789012:role/cluster-admins"],  # the account of tests/iam_model.py
    },
    "ha": {  # and EFA through Dynamic Resource Allocation (aws-dranet)
        "name": "ha-cluster",
        "control_plane": {"count": 3},
        "workers": {"count": 4, "ipv4_prefixes": 4, "rdma_devices": "dra"},
        "admin_cidr": "10.99.0.0/16",  # a VPN's range outside the VPC (10.42.0.0/16)
    },
}


@dataclass
class Synthesized:
    config: ClusterConfig
    plan: IpPlan
    outdir: Path
    stack: dict[str, Any]

    def resources(self, rtype: str) -> dict[str, dict[str, Any]]:
        return dict(self.stack.get("resource", {}).get(rtype, {}))


def synthesize(outdir: Path, config_path: Path) -> int:
    """Run the app as `cdktn synth` does (same module, same environment variables)."""
    from cdk import main as app_main

    env = {"CDKTF_OUTDIR": str(outdir), "SPIDERPOOL_RDMA_CONFIG": str(config_path)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return app_main.main()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory, table: InstanceTable) -> dict[str, Synthesized]:
    """Every variant synthesized once per test session (the jsii runtime is slow to start)."""
    out: dict[str, Synthesized] = {}
    for name, data in VARIANTS.items():
        base = tmp_path_factory.mktemp(name)
        path = base / "cluster.yaml"
        path.write_text(yaml.safe_dump(data))
        assert synthesize(base / "cdktf.out", path) == 0
        config, plan = load_plan(path, table)
        stack_file = base / "cdktf.out" / "stacks" / config.name / "cdk.tf.json"
        out[name] = Synthesized(config, plan, base / "cdktf.out", json.loads(stack_file.read_text()))
    return out


def _uses_network_namespaces(item: pytest.Item) -> bool:
    """The lab's double, or a test (or one of its fixtures) that makes namespaces with tests/lab/netns.py itself."""
    if "lab_session" in getattr(item, "fixturenames", ()):
        return True
    if getattr(getattr(item, "module", None), "netns", None) is None:
        return False
    info = getattr(item, "_fixtureinfo", None)
    funcs = [getattr(item, "function", None)]
    funcs += [d.func for defs in (info.name2fixturedefs.values() if info else ()) for d in defs]
    return any("netns." in inspect.getsource(f) for f in funcs if f is not None and _is_source(f))


def _is_source(fn: Callable[..., Any]) -> bool:
    try:
        inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    return True


# What runs a real tool for seconds per test: the real helm with the real subcharts (chart_dir), the bootstrap
# sandbox (each test runs the node's scripts end to end: every test that makes one takes its signing keys, `keys`),
# checkov, the wheel installed in a fresh environment, and the API client against real sockets that wait out its
# timeouts and deadlines, the cloud audit against a moto server with a deployed cluster (moto).
SLOW_FIXTURES = {"chart_dir", "moto", "keys"}
SLOW_MODULES = {"test_installed", "test_kube_client"}


def _slow(item: pytest.Item) -> bool:
    module = getattr(getattr(item, "module", None), "__name__", "").rpartition(".")[2]
    fixtures = set(getattr(item, "fixturenames", ()))
    return module in SLOW_MODULES or bool(fixtures & SLOW_FIXTURES) or "checkov" in item.name


# What synthesizes (the jsii runtime): the session's synthesized variants. Tests that call `synthesize` themselves
# declare `synth`.
SYNTH_FIXTURES = {"synthesized"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`root` on what needs network namespaces, `slow` on real tools that take seconds, `synth` on what reads the
    synthesized variants (other synthesizing tests declare it). `make test-unit` runs the rest."""
    for item in items:
        if _uses_network_namespaces(item):
            item.add_marker(pytest.mark.root)
        if _slow(item):
            item.add_marker(pytest.mark.slow)
        if set(getattr(item, "fixturenames", ())) & SYNTH_FIXTURES:
            item.add_marker(pytest.mark.synth)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """The stand-ins for the pkgs.k8s.io and EFA signing keys (real gpg), a home per test module: the bootstrap
    sandbox's tests and the upgrade's. Imported here, not above: the sandbox loads cdk's synthesis (the jsii
    runtime), which the tests without it must not start."""
    from tests.bootstrap.sandbox import make_keys

    return make_keys(tmp_path_factory.mktemp("gnupg"))

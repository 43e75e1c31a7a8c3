"""spider_validate.names is the one home of the names that cross layers: it depends on nothing, and it is the only
part of the validator that the infrastructure imports."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from spider_validate import names

from cdk import userdata
from cdk.config import ClusterConfig
from cdk.ipplan import make_plan
from tests.conftest import REPO

NAMES = REPO / "validators" / "spider_validate" / "names.py"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, as written (`from a.b import c` gives a.b.c and a.b: c may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_names_imports_the_standard_library_only() -> None:
    roots = {m.split(".")[0] for m in imported_modules(NAMES)}
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots


def validator_imports_but_names(paths: list[Path]) -> set[tuple[Path, str]]:
    """(file, module) for each module of spider_validate a file imports other than names."""
    return {
        (path, module)
        for path in paths
        for module in imported_modules(path)
        if module.split(".")[0] == "spider_validate"
        and module not in {"spider_validate", "spider_validate.names"}
        and not module.startswith("spider_validate.names.")
    }


def test_cdk_imports_nothing_of_the_validator_but_names() -> None:
    """The validator is a distribution of its own; the stack may share its names, never its code."""
    assert validator_imports_but_names(sorted((REPO / "cdk").rglob("*.py"))) == set()


def test_the_rule_above_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from spider_validate.names import kms_alias\nfrom spider_validate import kube\nimport spider_validate.report\n"
    )
    found = {name for _, name in validator_imports_but_names([module])}
    assert found == {"spider_validate.kube", "spider_validate.report"}


def test_composed_names() -> None:
    """The forms AWS holds them in (README: the SSM path /spiderpool-rdma/NAME/, the tag spiderpool-rdma/cluster)."""
    assert names.ssm_parameter("c1", names.KUBECONFIG) == "/spiderpool-rdma/c1/kubeconfig"
    assert names.kms_alias("c1") == "alias/spiderpool-rdma-c1"


def test_the_first_control_plane_is_the_node_the_plan_names_so() -> None:
    """`spider-validate kubeconfig` finds it by NODE_TAG, whose value is the plan's node name (cdk/constructs/nodes.py);
    it is the node whose bootstrap runs kubeadm init and publishes the kubeconfig."""
    (first,) = [n for n in make_plan(ClusterConfig()).nodes if userdata.node_role(n) == "control-plane-init"]
    assert first.name == names.FIRST_CONTROL_PLANE

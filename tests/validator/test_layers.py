"""The validator's packages import downwards only: each package's `__init__` docstring says on its second line what
it may import, this test holds every import of every module to it (inside functions and `if TYPE_CHECKING:` too),
and holds the declared order itself to the layout: cli above everything; report, watch and suites above engine;
engine above probes and cluster; no cycle."""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

ROOT = REPO / "validators" / "spider_validate"
PACKAGES = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file())
SHARED = {"names", "root"}  # names.py and the package's own __init__ (its version): standard library only


def docstring(package: str) -> list[str]:
    doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
    assert doc, f"{package}/__init__.py has no docstring"
    return doc.splitlines()


def declared(package: str) -> set[str]:
    """What the package's docstring says it may import (its second line), besides itself."""
    line = docstring(package)[1]
    if "every other package" in line:
        return set(PACKAGES) - {package}
    return {p for p in [*PACKAGES, "names"] if re.search(rf"\b{p}\b", line)} - {package}


def package_of(module: str) -> str:
    """The package (or names/root) a dotted module of spider_validate belongs to."""
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    return parts[1] if parts[1] in PACKAGES or parts[1] == "names" else "root"


def imports(source: str, path: str = "<module>") -> set[tuple[int, str]]:
    """(line, package) of every spider_validate import in a module's source, wherever it stands."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import hides its direction; write it absolute"
            if node.module == "spider_validate":  # from spider_validate import engine, __version__
                found.update((node.lineno, package_of(f"spider_validate.{a.name}")) for a in node.names)
            elif node.module and node.module.startswith("spider_validate."):
                found.add((node.lineno, package_of(node.module)))
        elif isinstance(node, ast.Import):
            found.update(
                (node.lineno, package_of(a.name)) for a in node.names if a.name.split(".")[0] == "spider_validate"
            )
    return found


def violations(package: str, source: str, path: str = "<module>") -> list[str]:
    allowed = declared(package) | SHARED | {package}
    return [f"{path}:{line} imports {dep}" for line, dep in sorted(imports(source, path)) if dep not in allowed]


def test_every_package_says_in_two_lines_what_it_holds_and_what_it_may_import() -> None:
    for package in PACKAGES:
        lines = docstring(package)
        assert len(lines) == 2 and lines[1].startswith("May import "), (package, lines)


def test_the_declared_order_is_the_layout_and_has_no_cycle() -> None:
    graph = {p: declared(p) for p in PACKAGES}
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError on a cycle
    assert set(order) == set(PACKAGES) | {"names"}
    assert not any("cli" in deps for deps in graph.values())  # cli above everything
    for upper in ("report", "watch", "suites"):
        assert "engine" in graph[upper] and not graph["engine"] & {upper, "cli"}
    for lower in ("probes", "cluster"):
        assert lower in graph["engine"] and graph[lower] == {"names"}


def test_every_import_goes_where_its_package_says() -> None:
    found = [
        problem
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for problem in violations(package, path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []


def module_name(path: Path) -> str:
    return ".".join(("spider_validate", *path.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")


def module_imports(source: str, modules: set[str]) -> set[str]:
    """The modules of `modules` a source imports (`from a import b` is a.b when that is a module, else a)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.update(
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
            )
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found & modules


def test_no_module_imports_itself_back_through_others() -> None:
    """Within a package too (the engine's model, context and runner once referred to each other, type-only)."""
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {name: module_imports(path.read_text(), set(paths)) - {name} for name, path in paths.items()}
    graphlib.TopologicalSorter(graph).prepare()  # CycleError names the cycle


def test_shared_modules_import_nothing_of_the_packages() -> None:
    for path in (ROOT / "names.py", ROOT / "__init__.py"):
        assert {dep for _, dep in imports(path.read_text())} <= SHARED, path


@pytest.mark.parametrize(
    "source",
    [
        "from spider_validate.report import formats\n",
        "from spider_validate import suites\n",
        "import spider_validate.cli.app\n",
        "def f():\n    from spider_validate.watch.loop import Watcher\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from spider_validate.ipam.audit import Snapshot\n",
    ],
)
def test_the_rule_sees_an_upward_import_however_it_is_written(source: str) -> None:
    assert violations("engine", source) != []
    assert violations("engine", "from spider_validate.probes.output import reads\n") == []

"""What a fresh clone gets from git itself: the commands the Makefile and CI run by path must be executable, and
the product names nothing of `../shared`, which users do not have."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, fresh_clone


def _git_modes() -> dict[str, str]:
    out = subprocess.run(["git", "ls-files", "-s"], cwd=REPO, check=True, capture_output=True, text=True).stdout
    return {line.split("\t", 1)[1]: line.split()[0] for line in out.splitlines()}


def test_scripts_run_by_path_are_executable_in_git() -> None:
    """A clone takes the mode from the index, not from this working tree (the lost bit broke `make synth`)."""
    makefile = (REPO / "Makefile").read_text()
    run_by_path = set(re.findall(r"^\t@?((?:scripts|\.ci)/[\w.-]+)", makefile, re.MULTILINE)) | {".ci/run"}
    modes = _git_modes()
    assert run_by_path <= modes.keys(), run_by_path - modes.keys()
    assert {path: modes[path] for path in run_by_path if modes[path] != "100755"} == {}


# What users install or run; only tests, generator scripts and the README's test section may name ../shared.
PRODUCT = ("cdk/", "bootstrap/", "charts/", "validators/", "cdktf.json", "Makefile")


def test_the_product_names_nothing_of_the_shared_tree() -> None:
    named = [
        f"{path}:{n}"
        for path in _git_modes()
        if path.startswith(PRODUCT) and (REPO / path).is_file()
        for n, line in enumerate((REPO / path).read_bytes().decode("utf-8", "replace").splitlines(), 1)
        if re.search(r"(^|[\s(\"'/.])shared/upstream|\.\./shared", line)
    ]
    assert named == []


def test_make_test_unit_installs_what_it_imports_first() -> None:
    """In a fresh clone `make test-unit` ran pytest before anything was installed: No module named 'spider_validate'
    (and helm, which the chart tests it runs call)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # not a sub-make of a `make test-unit`
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "test-unit"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    commands = [line for line in dry.splitlines() if line.strip()]
    assert commands[0] == "scripts/install-tools.sh python helm", commands
    assert commands[-1].startswith("pytest "), commands


def test_the_tests_without_shared_stop_saying_what_it_is(tmp_path: Path) -> None:
    """Without ../shared collection used to end in a raw FileNotFoundError from a module that reads it."""
    clone = fresh_clone(tmp_path)
    run = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/cdk/test_iam.py"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert f"shared reference tree at {tmp_path / 'shared'}" in out and "docs/testing.md" in out, out
    assert "FileNotFoundError" not in out, out


def test_install_tools_says_what_it_installs_before_it_starts(tmp_path: Path) -> None:
    """A cold `make synth` was silent for minutes while pip and npm installed quietly. `false` as the interpreter
    stops the script right after its first line of output, before any download."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "install-tools.sh", tmp_path / "scripts")
    run = subprocess.run(
        [str(tmp_path / "scripts" / "install-tools.sh"), "python"],
        env={**os.environ, "PYTHON": "false"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert run.stderr.startswith("install-tools: the Python environment .venv"), run.stderr


#: The longest README line a reader scrolls sideways for, in a terminal or a diff; prose wraps, a table's long
#: cells move to docs/.
README_LINE_LIMIT = 400


def test_no_readme_line_is_over_the_limit() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    long = [f"line {n}: {len(line)} characters" for n, line in enumerate(lines, 1) if len(line) > README_LINE_LIMIT]
    assert long == []

"""What a fresh clone gets from git itself: the commands the Makefile and CI run by path must be executable, and
the product names nothing of `../shared`, which users do not have."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO


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

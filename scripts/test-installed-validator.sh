#!/usr/bin/env bash
# CI: spider-validate as users install it. Build its wheel from validators/, install it into a fresh virtual
# environment (its declared dependencies only, plus pytest), and run the CLI and lab suites there: every
# command goes through the installed `spider-validate` entry point, against the namespace double.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

cp -r validators "${work}/src"                      # build outside the tree: no build/ or egg-info left here
# a build/ left in the tree by an earlier in-tree build would be reused as it is (cp gives its files new times)
rm -rf "${work}/src/build" "${work}"/src/*.egg-info
.venv/bin/pip wheel -q --no-deps -w "${work}/dist" "${work}/src"        # setuptools and wheel from PyPI
"${PYTHON}" -m venv "${work}/venv"
"${work}/venv/bin/pip" install -q "${work}"/dist/spider_validate-*.whl
"${work}/venv/bin/pip" install -q -c requirements.lock pytest
"${work}/venv/bin/spider-validate" --version
# --noconftest: tests/conftest.py serves the infrastructure's tests (it imports cdk, not installed here);
# the lab's fixtures are loaded directly. The repository root is on sys.path for `tests` only.
SPIDER_VALIDATE_INSTALLED=1 "${work}/venv/bin/python" -m pytest -q -p no:cacheprovider --noconftest \
  -p tests.lab.fixtures tests/validator/test_installed.py tests/validator/test_cli_inputs.py \
  tests/validator/test_kube_client.py \
  tests/validator/test_validate_lab.py tests/validator/test_ipam_lab.py

#!/usr/bin/env bash
# CI: spider-validate as users install it. Build its wheel from validators/, install it into a fresh virtual
# environment (its declared dependencies only, plus pytest), and run the CLI and lab suites there: every
# command goes through the installed `spider-validate` entry point, a process of its own, against the namespace
# double served as a Kubernetes API (tests/lab/apiserver.py) with a kubeconfig.
# Then once more per older major of the `kubernetes` client the distribution accepts (from its lower bound in
# validators/pyproject.toml up to the newest, which the first install picked), each in a fresh environment with
# that major installed, running the suites that go through the client (the lab double does not).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
CLIENT_TESTS=(tests/validator/test_installed.py tests/validator/cli/test_cli_inputs.py tests/validator/cluster/test_kube_client.py)
LAB_TESTS=(tests/validator/suites/test_validate_lab.py tests/validator/ipam/test_ipam_lab.py tests/validator/cli/test_wire_faults_lab.py)
# What the tests need beside the wheel, at requirements.lock's versions: pytest; the lab double's own imports,
# cel-python (tests/upstream/dra_allocator.py evaluates DeviceClass selectors) and kubernetes-validate (the OpenAPI
# schemas tests/lab/discovery.py serves), cryptography (the CA of tests/lab/apiserver.py, which the CLI runs against).
TEST_DEPS=(pytest cel-python kubernetes-validate cryptography)

cp -r validators "${work}/src"                      # build outside the tree: no build/ or egg-info left here
# a build/ left in the tree by an earlier in-tree build would be reused as it is (cp gives its files new times)
rm -rf "${work}/src/build" "${work}"/src/*.egg-info
.venv/bin/pip wheel -q --no-deps -w "${work}/dist" "${work}/src"        # setuptools and wheel from PyPI

# installed_run MAJOR TESTS...: a fresh venv with the wheel and the kubernetes client MAJOR (empty: the newest pip
# picks), then TESTS in it; test_installed.py checks that the client's major is MAJOR.
installed_run() {
  local major="$1" venv="${work}/venv-${1:-newest}"
  shift
  "${PYTHON}" -m venv "${venv}"
  "${venv}/bin/pip" install -q "${work}"/dist/spider_validate-*.whl ${major:+"kubernetes==${major}.*"}
  "${venv}/bin/pip" install -q -c requirements.lock "${TEST_DEPS[@]}"
  "${venv}/bin/spider-validate" --version
  # --noconftest: tests/conftest.py serves the infrastructure's tests (it imports cdk, not installed here);
  # the lab's fixtures are loaded directly. The repository root is on sys.path for `tests` only.
  SPIDER_VALIDATE_INSTALLED=1 SPIDER_VALIDATE_KUBERNETES_MAJOR="${major}" \
    "${venv}/bin/python" -m pytest -q -p no:cacheprovider --noconftest -p tests.lab.fixtures "$@"
}

installed_run "" "${CLIENT_TESTS[@]}" "${LAB_TESTS[@]}"
newest="$("${work}/venv-newest/bin/python" -c 'import kubernetes; print(kubernetes.__version__.split(".")[0])')"
lowest="$("${PYTHON}" -c 'import re, tomllib
deps = tomllib.load(open("validators/pyproject.toml", "rb"))["project"]["dependencies"]
print(next(re.fullmatch(r"kubernetes>=(\d+)", d)[1] for d in deps if d.startswith("kubernetes")))')"
echo "kubernetes client: newest ${newest}, lowest accepted ${lowest}"
for ((major = lowest; major < newest; major++)); do
  installed_run "${major}" "${CLIENT_TESTS[@]}"
done

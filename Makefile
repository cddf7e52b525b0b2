# agentprod — the two commands a newcomer needs are `make dev` and `make test`.
# Big downloads (RocketMQ jars) are cached under $(AGENTPROD_CACHE), outside the checkout;
# runtime state (data dirs, logs, pidfiles) lives in the git-ignored .cache/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export AGENTPROD_CACHE ?= $(HOME)/.cache/agentprod
# One PYTHONPATH for every tool that runs our code from the checkout: the harness (hack/) and
# the repository root (bench/, tests/); app/ and operator/ are installed (editable) in the venv.
export PYTHONPATH := hack:.
HARNESS := $(BIN)/python -m harness

.DEFAULT_GOAL := help

.PHONY: help check imports dev test install system-deps lint typecheck unit integration e2e services-up \
        services-down services-status cluster-up cluster-down operator bench bench-celery \
        bench-llm bench-load clean chart chart-sync llm-up llm-down

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## List the targets with what each does (this text).
help:
	@awk '/^## /{text = text substr($$0, 4) " "; next} \
	     /^[a-z][a-z-]*:/{if (text) {split($$0, t, ":"); printf "  make %-16s %s\n", t[1], text}; text = ""} \
	     !/^## /{text = ""}' $(MAKEFILE_LIST)

## Run the product on its embedded default: API + worker on http://127.0.0.1:8000, no Java/Redis.
dev: install
	$(BIN)/agentprod dev

## Install everything (Python deps, redis-server, RocketMQ jars) and run the whole suite.
## The installs of system-deps run in the background at nice 19 while lint, types and the tests
## run; the tests that need no build go first, the others wait on their build's lock.
test: install
	$(HARNESS) beside-installs "$(MAKE) --no-print-directory lint typecheck" "$(BIN)/pytest"

## redis-server from Debian (when missing), RocketMQ 5 from Maven Central, the Kubernetes
## control plane and node (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
## kubelet, kube-proxy, CoreDNS, kubectl, helm) built with Go, the node's Debian packages
## (containerd, runc, CNI plugins, nftables, buildah, debootstrap), the node's images built
## from the Dockerfiles, skaffold's JSON schema, the OpenTelemetry Collector (built with
## Go, for the tracing test) and Debian's chromium (the console's browser test); cached under
## $(AGENTPROD_CACHE). The builds run one at a time, downloads and apt beside them, each step
## timed (hack/harness/lanes.py).
system-deps: install
	$(HARNESS) system-deps

## Lint, types, import contracts and the unit tests: the quick everyday loop (no servers).
check: lint typecheck unit

## ruff (lint + format) and the import-linter contracts of pyproject.toml.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## The import-linter contracts alone (layers, "only store.py imports redis", pure decisions).
imports: install
	$(BIN)/lint-imports

## mypy --strict over app, operator, harness and bench.
typecheck: install
	$(BIN)/mypy

## Unit tests: pure functions and the embedded mode, no servers and no Go-built binary.
unit: install
	$(BIN)/pytest tests/unit

## Integration tests against real RocketMQ, Redis, kube-apiserver (started by the fixtures).
integration: install system-deps
	$(BIN)/pytest tests/integration

e2e: install system-deps
	$(BIN)/pytest tests/e2e

## Real RocketMQ 5 (namesrv :9876, broker :10911, proxy gRPC :8081) and Redis :6379 for local work.
services-up: install system-deps
	$(HARNESS) up

services-down: install
	$(HARNESS) down

services-status: install
	$(HARNESS) status

## A real OpenAI-compatible model server (llama.cpp + SmolLM2-135M) on 127.0.0.1:8088; prints
## the OPENAI_BASE_URL and model variables to export (`make -s llm-up > .env.llm`).
llm-up: install
	@$(HARNESS) llm-up

llm-down: install
	@$(HARNESS) llm-down

## Local cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and one real
## node (containerd + kubelet + kube-proxy + CoreDNS on bridge 10.88.0.1/16, no default route),
## the images built from the Dockerfiles imported, the CRD installed; kubeconfig at
## .cache/cluster/kubeconfig (see docs/kind.md).
cluster-up: install system-deps
	$(HARNESS) cluster-up

cluster-down: install
	$(HARNESS) cluster-down

## Run the operator against `make cluster-up` (all namespaces).
operator: install
	KUBECONFIG=.cache/cluster/kubeconfig $(BIN)/agentprod-operator --all-namespaces

## Helm chart: lint --strict and template assertions (no cluster); the server-side dry-run,
## install and upgrade tests are tests/e2e/test_chart.py.
chart: install system-deps
	$(BIN)/pytest tests/chart

## Copy the generated CRD into the chart and regenerate the values reference of docs/install.md.
chart-sync: install
	cp crds/agentpipelines.agentprod.io.yaml charts/agentprod/files/
	$(BIN)/python -m tests.chart.values_reference

## Benchmarks (print figures; see docs/benchmarks.md).
bench: install system-deps
	$(BIN)/python -m bench.api_latency
	$(BIN)/python -m bench.auth_overhead
	$(BIN)/python -m bench.end_to_end
	$(BIN)/python -m bench.operator_ready
	$(BIN)/python -m bench.task_control
	$(BIN)/python -m bench.autoscale_sim

## agentprod vs Celery 5 end to end, 3 alternating rounds (~15 min); BENCH_ARGS=--quick: ~2 min.
bench-celery: install
	$(HARNESS) deps
	$(BIN)/python -m bench.compare_celery $(BENCH_ARGS)

## Model-bound tasks (loopback model server, 1-2 s per call): agentprod's worker at concurrency
## 64/256/1024 vs Celery's threads, gevent and prefork pools, 2 alternating rounds (~15 min);
## BENCH_ARGS=--quick: one round at 64.
bench-llm: install
	$(HARNESS) deps
	$(BIN)/python -m bench.compare_llm $(BENCH_ARGS)

## API latency under open-loop load (vegeta, built once with Go): 200/500/1000 requests/s, 60 s each.
bench-load: install
	$(HARNESS) deps
	$(BIN)/python -m bench.load_api $(BENCH_ARGS)

clean:
	rm -rf .cache .mypy_cache .ruff_cache .pytest_cache

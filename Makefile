# Everything a fresh machine needs is installed by these targets (Python deps via uv,
# Kafka jars via Maven on first use, cached under .cache/).
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PY := .venv/bin/python
BIN := .venv/bin

.PHONY: install tools helm-docs lint test test-unit test-integration run bench bench-quick clean

install: .venv/.installed

$(UV):
	python3 -m pip install --quiet --user "uv==$(UV_VERSION)" || python3 -m pip install --quiet "uv==$(UV_VERSION)"

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups
	@touch $@

# Tools the ops tests run, pinned and cached under .cache/: docker-compose (PyPI), helm and
# helm-docs built from the Go module proxy, CRDs from the operators' Go modules, Prometheus and
# promtool (a pinned Debian package, unpacked).
tools: install
	UV=$(UV) scripts/tools/compose.sh
	scripts/tools/helm.sh
	scripts/tools/prometheus.sh >/dev/null

lint: install
	$(BIN)/ruff check consumer tests bench scripts
	$(BIN)/ruff format --check consumer tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint tools
	$(BIN)/klaviyo-consumer dev fetch-broker
	$(BIN)/pytest

# Regenerate the chart README from values.yaml and README.md.gotmpl (tests/ops checks it).
helm-docs: tools
	cd helm/klaviyo-consumer && ../../.cache/tools/bin/helm-docs -c . -s file --skip-version-footer -l error

test-unit: install
	$(BIN)/pytest tests/unit

test-integration: install
	$(BIN)/klaviyo-consumer dev fetch-broker
	$(BIN)/pytest tests/integration

run: install
	$(BIN)/klaviyo-consumer dev fetch-broker
	$(BIN)/klaviyo-consumer dev up

# Figures to bench/results/<date>-<commit>.{json,md}; see docs/performance.md.
# BENCH_ARGS: more options, e.g. BENCH_ARGS="--jobs derive,peer" (python -m bench --help).
# The bench fetches the broker jars itself before starting its broker (as dev fetch-broker).
bench: install
	UV=$(UV) $(PY) -m bench --profile full $(BENCH_ARGS)

bench-quick: install
	UV=$(UV) $(PY) -m bench --profile quick $(BENCH_ARGS)

clean:
	rm -rf .venv .cache .pytest_cache .mypy_cache .ruff_cache

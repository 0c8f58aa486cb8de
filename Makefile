# The user's two commands: `make demo` and `make test`. Both set everything up first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean lock

PLUGINS := plugins/aebench-rbm plugins/aebench-plugin-template plugins/aebench-tensorboard plugins/aebench-mlflow

# The environment is the lock, not whatever the ranges in pyproject.toml resolve to today:
# every dependency at an exact version and hash (requirements.lock; LOCK=requirements-gpu.lock
# for the CUDA build), then aebench and its plug-ins on top without resolving anything again.
LOCK ?= requirements.lock

$(STAMP): pyproject.toml $(LOCK) $(addsuffix /pyproject.toml,$(PLUGINS))
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q pip==26.3
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e . $(addprefix -e ,$(PLUGINS))
	$(BIN)/python -m pip check
	touch $(STAMP)

# Regenerate both locks from requirements/*.in (uv, pinned; Linux x86_64, Python 3.11).
# The CPU lock takes torch from /opt/wheels (this machine's CPU build), the GPU lock from PyPI.
LOCK_TOOL := .venv-lock/bin/uv
$(LOCK_TOOL):
	$(PY) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q uv==0.13.9

UV_COMPILE = $(LOCK_TOOL) pip compile --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 $(foreach p,aebench $(notdir $(PLUGINS)),--no-emit-package $(p))

lock: $(LOCK_TOOL)
	$(UV_COMPILE) --find-links /opt/wheels requirements/cpu.in -o requirements.lock
	$(UV_COMPILE) requirements/gpu.in -o requirements-gpu.lock

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/aebench demo --out demo-results

test: $(STAMP)
	# Lint first (pyproject's [tool.ruff]: line length 120, rules E F W I B), then the suite.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q --nbval

# The peer comparison's pythae (the [bench] extra), torch named again so pip keeps the CPU build.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q torch==2.13.0 -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py
	# Cluster: 2 dask workers vs 1 without a shared disk, bytes each run ships back
	$(BIN)/python benchmarks/cluster.py
	# Data fidelity: RBF-SVM error on every generated variation set vs Larochelle et al.'s
	$(BIN)/python benchmarks/fidelity.py

clean:
	rm -rf $(VENV) .venv-lock demo-results .pytest_cache

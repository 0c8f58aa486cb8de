# The user's two commands: `make demo` and `make test`. Both set everything up first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

PLUGINS := plugins/aebench-rbm plugins/aebench-plugin-template plugins/aebench-tensorboard plugins/aebench-mlflow

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU build from local disk; an open range would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]' $(addprefix -e ,$(PLUGINS))
	touch $(STAMP)

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
	rm -rf $(VENV) demo-results .pytest_cache

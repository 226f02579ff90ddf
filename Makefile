# `make demo` and `make test` set themselves up whenever pyproject.toml changes: demo
# creates .venv with the package and its runtime dependencies only (seconds); test adds
# the dev extra (linters, notebooks, scikit-learn: most of the time and space).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
RUNTIME_INSTALLED := $(VENV)/.runtime-installed
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.bench-installed

.PHONY: demo test lint bench notebooks clean

$(RUNTIME_INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -e .
	touch $(RUNTIME_INSTALLED)

$(INSTALLED): $(RUNTIME_INSTALLED)
	$(PIP) install --quiet -e ".[dev]"
	touch $(INSTALLED)

demo: $(RUNTIME_INSTALLED)
	$(BIN)/microgradient '1/(1+exp(-w*x))' w=0 x=1 -o sigmoid.svg

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy microgradient

test: lint
	$(BIN)/python -m pytest --nbmake tests notebooks
	$(BIN)/python -m pytest --doctest-modules microgradient

# re-execute the notebooks and save their outputs (NOTEBOOKS="02_chain_rule.ipynb" for some)
notebooks: $(INSTALLED)
	$(BIN)/python notebooks/execute.py $(NOTEBOOKS)

# micrograd comes from the package index; PyTorch is compared only if already installed
$(BENCH_INSTALLED): $(INSTALLED)
	$(PIP) install --quiet -e ".[bench]"
	touch $(BENCH_INSTALLED)

bench: $(BENCH_INSTALLED)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# `make demo` and `make test` set themselves up: they create .venv and install
# the package with its dev extra whenever pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/python -c "from microgradient import Value; w, x = Value(0.0, 'w'), Value(1.0, 'x'); h = 1 / (1 + (-(w * x)).exp()); h.backward(); print('h =', h.data, ' dh/dw =', w.grad, ' dh/dx =', x.grad)"

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy microgradient

test: lint
	$(BIN)/python -m pytest --nbmake tests notebooks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

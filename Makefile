# lsops: `make demo` and `make test` each create .venv when it is missing and install into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# lsops is installed editable; where PYTHONDONTWRITEBYTECODE is set, no process would ever
# write its bytecode and each one (CLI, report kernel, demo worker, test subprocess) would
# compile every lsops module it imports (0.3-0.5 s of CPU). An installed wheel has its
# bytecode; this gives the checkout the same. Cheap when up to date, redone when stale.
BYTECODE := $(BIN)/python -m compileall -q lsops_lib

.PHONY: demo test lab bench lint clean

# the embedded PostgreSQL: the machine's server binaries when it has them (Debian:
# apt-get install postgresql), else the pgserver wheel (PostgreSQL 16 with pgvector)
HAS_PG := $(shell d=$$(pg_config --bindir 2>/dev/null); [ -x "$$d/initdb" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && echo yes)
DEMO_SPEC := $(if $(HAS_PG),.,.[embedded-pg])

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -q -e '$(DEMO_SPEC)'
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(PIP) install -q -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(PIP) install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed

## the whole product on embedded defaults: simulated API, embedded PostgreSQL, a month, the reports
demo: $(VENV)/.installed
	@$(BYTECODE)
	$(BIN)/lsops demo

## the whole test suite
test: $(VENV)/.installed-test
	@$(BYTECODE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## JupyterLab on notebooks/ with the demo's configuration
lab: $(VENV)/.installed
	@$(BYTECODE)
	$(BIN)/lsops demo --lab

## benchmarks (QUICK=1 for a short run)
bench: $(VENV)/.installed-test
	@$(BYTECODE)
	$(BIN)/python benchmarks/run.py $(if $(QUICK),--quick,)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

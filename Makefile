# replab: `make demo` and `make test` do all their own set-up on a fresh Debian machine.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
DEPS    ?= core venv
ENGINE  ?= local
PYTEST_ARGS ?=

.PHONY: install system-deps demo test test-fast lint bench soak clean

system-deps:
	bash scripts/install-deps.sh $(DEPS)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	$(VENV)/bin/pip install -q 'mysqlclient>=2.2' || echo "note: mysqlclient did not build; feed falls back to PyMySQL (slower single-row inserts)"
	touch $@

install: system-deps $(VENV)/.installed

demo: DEPS = core venv $(if $(filter compose,$(ENGINE)),docker)
demo: install
	ENGINE=$(ENGINE) bash scripts/demo.sh

test: DEPS = core venv browser docker
test: install
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

soak: install
	$(VENV)/bin/pytest -m slow -v $(PYTEST_ARGS)

test-fast: $(VENV)/.installed
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src

bench: DEPS = core venv bench
bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

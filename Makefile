# replab: `make demo` and `make test` do all their own set-up on a fresh Debian machine.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
DEPS    ?= core venv
ENGINE  ?= local
PYTEST_ARGS ?=
# two test files at a time (each file on one worker, so module-scoped clusters stay whole): the tests mostly
# wait on servers, and two at once take ~0.55x the time of one after the other on 2 cores. PYTEST_PARALLEL=
# runs them one by one.
PYTEST_PARALLEL ?= -n 2 --dist loadfile
# a test that fails is run once more (real servers on a busy 2-core machine have timing noise); pytest marks
# it R, lists it (-rR) and counts it as "rerun" in its summary line, so a flaky test shows. PYTEST_RERUNS= turns it off.
PYTEST_RERUNS ?= --reruns 1 --reruns-delay 2 -rfER
# the catalogue servers `make test` fetches once (cached in ~/.cache/replab/servers) and tests on
TEST_SERVERS ?= mysql-9.7 mariadb-11.8
# the catalogue MariaDBs that get galera-4 from their own suite (idempotent: a stat once it is there)
GALERA_SERVERS ?= mariadb-11.8
# MySQL Router (Debian sid's mysql-router) put into these trees, for --proxy mysql-router
ROUTER_SERVERS ?= mysql-9.7

.PHONY: install system-deps servers demo test test-fast lint bench soak clean

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

# fetch each test server once; a second run finds them in the cache and fetches nothing
servers: $(VENV)/.installed
	@for s in $(TEST_SERVERS); do $(PY) -m replab servers add $$s || exit 1; done
	@for s in $(GALERA_SERVERS); do $(PY) -m replab servers add-galera $$s || exit 1; done
	@for s in $(ROUTER_SERVERS); do $(PY) -m replab servers add-router $$s || exit 1; done

test: DEPS = core venv browser servers docker proxy net galera
test: install servers
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_PARALLEL) $(PYTEST_RERUNS) $(PYTEST_ARGS)

soak: install
	$(VENV)/bin/pytest -m slow -v $(PYTEST_ARGS)

test-fast: $(VENV)/.installed
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src

bench: DEPS = core venv bench servers proxy net galera
bench: install servers
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

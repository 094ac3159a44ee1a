# The two commands a new machine needs: `make run` and `make test`.
# Both create the virtual environment in .venv when it is missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
FINKS := $(VENV)/bin/finks
ENV ?= local
# Sessions run two at a time where they share nothing (`resources:` in their YAML keeps
# those that share the local stack apart); JOBS=1 runs them one by one.
JOBS ?= 2
# The suite mostly waits on the servers it starts (Prefect, moto, the FMP simulator): three
# pytest-xdist workers, each test file on one of them (its module fixtures shared), take
# about half the wall time of one on two cores. TEST_JOBS=0 runs it in one process.
TEST_JOBS ?= 3
PYTEST := $(PY) -m pytest $(if $(filter-out 0,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadfile)

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# Prefect's database is finks' choice (core/settings.py: PostgreSQL when one answers
# on 127.0.0.1:5432, else SQLite; FINKS_PREFECT_DATABASE or FINKS_DATABASE_URL override),
# so `make start` and a hand-typed `finks dev up` get the same history.

.PHONY: install run test test-fast start stop reset status bench lint
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@bash tools/system-packages.sh
	@bash tools/install-prowler.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[all]"
	@# mypy's cache of the infra program's types (pulumi_aws is large: ~80 s cold, ~8 s warm);
	@# S2's type check and `make lint` reuse it. A failure here is S2's to report, not install's.
	@echo "warming mypy's cache for infra/ ..." >&2; $(PY) -m mypy infra >/dev/null 2>&1 || true
	@touch $@

run: install            ## set up, then run the whole plan on the local environment
	$(FINKS) run --all --env $(ENV) --jobs $(JOBS)

test: install           ## the whole test suite (slow and service tests included)
	$(PYTEST)

test-fast: install      ## skip the slow end-to-end tests
	$(PYTEST) -m "not slow"

start: install          ## start the local stack (Prefect server, AWS emulator, lake)
	$(FINKS) dev up --worker

stop: install
	$(FINKS) dev down

reset: install
	$(FINKS) dev reset --yes

status: install
	$(FINKS) status --env $(ENV)

bench: install
	$(PY) bench/bench_cli.py

lint: install           ## ruff and mypy over the whole project
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

# syncq — `make run` starts the local stack, `make test` runs the suite. Both bootstrap
# their own virtualenvs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TASKS_VENV := .venv-tasks
PYTEST_ARGS ?=
# The suite waits more than it computes (servers starting, streams, retries): files run in
# parallel processes, each with its own embedded PostgreSQL (TEST_WORKERS=0: one process).
TEST_WORKERS ?= 3

.PHONY: venv browser run test fuzz check lint typecheck migrate seed-demo bundle bench chaos clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

$(TASKS_VENV)/bin/.installed: infra/local/requirements-tasks.txt
	$(PYTHON) -m venv $(TASKS_VENV)
	$(TASKS_VENV)/bin/python -m pip install -q --upgrade pip
	$(TASKS_VENV)/bin/python -m pip install -q -r infra/local/requirements-tasks.txt
	touch $@

venv: $(BIN)/.installed $(TASKS_VENV)/bin/.installed

# The dashboard's browser tests drive Debian's Chromium (Playwright never downloads one).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends chromium; }

run: venv
	$(BIN)/python -m infra.local.stack

test: venv browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The contract fuzzer at length (a bounded run is part of `make test`).
FUZZ_EXAMPLES ?= 300
FUZZ_SCENARIOS ?= 100
FUZZ_STEPS ?= 10
fuzz: venv
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SCENARIOS=$(FUZZ_SCENARIOS) FUZZ_STEPS=$(FUZZ_STEPS) \
		$(BIN)/python -m pytest tests/contract/test_fuzz.py -p no:randomly $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every function's entry point is a main.py in a folder whose name is not a Python
# identifier, so mypy cannot check them as modules of one run: one run each (cached).
typecheck: venv
	$(BIN)/mypy shared infra bench
	@status=0; for f in functions/*/main.py; do $(BIN)/mypy $$f || status=1; done; exit $$status

# The gate: what CI runs first (.ci/run).
check: lint typecheck test

migrate: venv
	$(BIN)/python -m infra.ops migrate

seed-demo: venv
	$(BIN)/python -m infra.ops seed-demo

bundle: venv
	$(BIN)/python -m infra.deploy.bundle

bench: venv
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python -m bench.$$(basename $$b .py) || exit 1; done

# The reliability figures on the real local stack under faults (README: Chaos).
CHAOS_ARGS ?=
chaos: venv
	$(BIN)/python -m infra.chaos $(CHAOS_ARGS)

clean:
	rm -rf build .mypy_cache .ruff_cache

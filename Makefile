# The two commands a newcomer runs: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Test processes (pytest-xdist): most tests wait on emulated rollouts and real servers, not the CPU, so three
# processes finish the suite in about two thirds of the time on two cores.
PYTEST_WORKERS ?= 3
# Work stealing: a process that runs out of tests takes some of another's queue, so the suite no longer ends
# with one process finishing its share of long rollouts while the others wait (14 min instead of 17:43 on a
# 2-core AMD EPYC, the same tests).
PYTEST_DIST ?= worksteal

.PHONY: install demo test pytest lint typecheck unit bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

demo: install
	bash scripts/demo.sh

# `ruff format --check` too: one formatting, so a diff shows only what changed.
lint: install
	$(VENV)/bin/ruff check orchestrator tests benchmarks scripts
	$(VENV)/bin/ruff format --check orchestrator tests benchmarks scripts

typecheck: install
	$(VENV)/bin/mypy

test: lint typecheck pytest

# pytest's exit code 5 (no tests collected) fails the run like any other: a selection that matches nothing
# is a broken CI configuration, not a pass.
pytest:
	@$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) $(PYTEST_ARGS) || { code=$$?; \
	  if [ $$code -eq 5 ]; then echo "make: pytest collected no tests (PYTEST_ARGS=$(PYTEST_ARGS))" >&2; fi; \
	  exit $$code; }

unit: install
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/render.py

clean:
	rm -rf .orchestrator out

# decon: common targets (setup installs the dev and ray extras: `decon ray` is tested too). Area-specific targets live in mk/*.mk.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test test-fast lint quickstart

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,ray]'
	touch $@

PYTEST_ARGS ?= -q

test: setup
	@reason=$$(scripts/ensure_chromium.sh); \
	DECON_BROWSER_UNAVAILABLE="$$reason" DECON_QUIET=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

# The inner loop: everything not marked slow (no clusters, server processes or browsers), under 2 minutes.
# CI runs `make test`, which includes the slow tests.
test-fast: setup
	DECON_QUIET=1 $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint:
	$(BIN)/ruff check decon orchestrator tests scripts

quickstart: setup
	$(BIN)/decon detect --training-dir fixtures/training --report-output-dir /tmp/decon-quickstart \
		--purify --cleaned-output-dir /tmp/decon-quickstart-cleaned

-include mk/*.mk

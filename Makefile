# decon: common targets. Area-specific targets live in mk/*.mk.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test lint bench quickstart

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'

test: setup
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check decon orchestrator tests scripts

quickstart: setup
	$(BIN)/decon detect --training-dir fixtures/training --evals-dir fixtures/reference --report-output-dir /tmp/decon-quickstart

-include mk/*.mk

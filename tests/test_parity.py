"""Parity with the upstream binary's reports on every golden case (tests/golden)."""

from __future__ import annotations

import pytest

from decon.cli import main
from tests.parity import case_names, compare_case, compare_cleaned, prepare_inputs

# the two slowest cases run in `make test` only; every other case runs in `make test-fast` as well
_SLOW_CASES = {"synthetic-uniseg", "quickstart"}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in _SLOW_CASES else c
                                  for c in case_names()])
def test_golden_case(case: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DECON_QUIET", "1")
    argv, reports, cleaned = prepare_inputs(case, tmp_path)
    assert main(["detect", *argv]) == 0
    problems = compare_case(case, reports) + compare_cleaned(case, cleaned)
    assert not problems, "\n".join(problems)

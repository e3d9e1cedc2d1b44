"""Bad input of what decides the pick (search.metric/mode, scheduler.judge, select:), through
the harness of tests/test_bad_input.py: one line, exit 2, nothing written."""

from __future__ import annotations

import pytest

from tests.test_bad_input import check_bad_input, spec_text, w
from tune_app import search

GRID = "  lr: {grid: [1.0e-3, 3.0e-3]}\n"  # two configurations


def _spec(t, r, extra: str, train: str = GRID) -> list[str]:
    return ["--space", w(t, spec_text(train, r) + extra)]


# id -> (command, setup(tmp, results) -> argv, expected text in the error)
CASES = {
    "unknown-metric": (search, lambda t, r: _spec(t, r, "search:\n  metric: val_acc\n"), "did you mean 'val_accuracy'"),
    "metric-mode-contradiction": (search, lambda t, r: _spec(t, r, "search:\n  metric: val_loss\n  mode: max\n"),
                                  "search.mode: val_loss is better lower"),
    "judge-ema-out-of-range": (search, lambda t, r: _spec(t, r, "scheduler:\n  judge: ema\n  ema: 1.0\n"),
                               "scheduler.ema: 1.0 must be in [0, 1)"),
    "select-negative-finalists": (search, lambda t, r: _spec(t, r, "select:\n  finalists: -1\n"),
                                  "select.finalists: -1 must be >= 0"),
    "select-zero-seeds": (search, lambda t, r: _spec(t, r, "select:\n  seeds: 0\n"), "select.seeds: 0 must be >= 1"),
    "select-negative-epochs": (search, lambda t, r: _spec(t, r, "select:\n  epochs: -2\n"),
                               "select.epochs: -2 must be >= 0"),
    "more-finalists-than-configurations": (search, lambda t, r: _spec(t, r, "select:\n  finalists: 3\n"),
                                           "3 finalists, but the search has only 2 configuration(s)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    check_bad_input(CASES[case], tmp_path, capsys, monkeypatch)

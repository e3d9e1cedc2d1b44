"""Bad input of two-objective searches (search.objectives) and of retrain_best --pick, through the
harness of tests/test_bad_input.py: one line, exit 2, nothing written."""

from __future__ import annotations

import pytest

from tests.test_bad_input import check_bad_input, fake_experiment, spec_text, w
from tune_app import retrain_best, search

GRID = "  lr: {grid: [1.0e-3, 3.0e-3]}\n"  # two configurations


def _spec(t, r, extra: str) -> list[str]:
    return ["--space", w(t, spec_text(GRID, r) + extra)]


def _objectives(names: str, extra: str = "") -> str:
    return f"search:\n  objectives: {names}\n{extra}"


# id -> (command, setup(tmp, results) -> argv, expected text in the error)
CASES = {
    "objectives-unknown": (search, lambda t, r: _spec(t, r, _objectives("[val_accuracy, param]")),
                           "unknown objective 'param' (fix: did you mean 'params'?)"),
    "objectives-twice": (search, lambda t, r: _spec(t, r, _objectives("[val_accuracy, val_accuracy]")),
                         "lists val_accuracy twice"),
    "objectives-not-two": (search, lambda t, r: _spec(t, r, _objectives("[val_accuracy, params, latency_ms]")),
                           "takes two objectives (a validation metric, then a cost), got 3"),
    "objectives-cost-first": (search, lambda t, r: _spec(t, r, _objectives("[params, val_accuracy]")),
                              "fix: write [val_accuracy, params]"),
    "objectives-no-cost": (search, lambda t, r: _spec(t, r, _objectives("[val_accuracy, val_loss]")),
                           "the second objective must be a cost of the model"),
    "objectives-metric-contradiction": (search, lambda t, r: _spec(t, r, _objectives(
        "[val_accuracy, params]", "  metric: val_loss\n")), "search.metric: val_loss contradicts search.objectives"),
    "objectives-with-race": (search, lambda t, r: _spec(t, r, _objectives("[val_accuracy, params]")
                                                        + "select:\n  finalists: 2\n"),
                             "select.finalists: the race ranks configurations by one metric"),
    "pick-unknown-rule": (retrain_best, lambda t, r: ["--experiment", str(fake_experiment(t / "p", "quick")),
                                                      "--pick", "smallest", "0.01"], "--pick: unknown rule"),
    "pick-front-without-objectives": (retrain_best, lambda t, r: ["--experiment", str(_one_objective(t)),
                                                                  "--pick", "smallest-within", "0.01"],
                                      "needs a search with two objectives"),
}


def _one_objective(t):
    """A finished one-objective search with a scored trial: the pick itself must refuse."""
    path = fake_experiment(t / "one", "quick")
    (path / "trial_00000" / "result.json").write_text('{"epoch": 1, "val_accuracy": 0.5}\n')
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    check_bad_input(CASES[case], tmp_path, capsys, monkeypatch)

"""Bad input of the searchers and schedulers beyond grid, TPE and ASHA (random search, Optuna's
samplers, HyperBand, median stopping, PBT), through the harness of tests/test_bad_input.py:
one line, exit 2, nothing written."""

from __future__ import annotations

import pytest

from tests.test_bad_input import check_bad_input, spec_text, w
from tune_app import search

LR = "  lr: {loguniform: [1.0e-4, 1.0e-2]}\n"


def _spec(t, r, extra: str, train: str = LR, epochs: int = 4) -> list[str]:
    return ["--space", w(t, spec_text(train, r).replace("epochs: 1\n", f"epochs: {epochs}\n") + extra)]


RANDOM_PBT = "search:\n  algorithm: random\n  num_samples: 4\nscheduler:\n  name: pbt\n"

# id -> (command, setup(tmp, results) -> argv, expected text in the error)
CASES = {
    "pbt-nothing-to-mutate": (search, lambda t, r: _spec(
        t, r, "search:\n  algorithm: random\n  num_samples: 4\nscheduler:\n  name: pbt\n",
        train="  optimizer: {choice: [adam, sgd]}\n"), "none of lr, weight_decay, momentum, label_smoothing"),
    "pbt-with-optuna": (search, lambda t, r: _spec(
        t, r, "search:\n  algorithm: optuna\n  num_samples: 4\nscheduler:\n  name: pbt\n"),
        "Optuna would learn from results that the values"),
    "pbt-interval-not-below-epochs": (search, lambda t, r: _spec(
        t, r, RANDOM_PBT + "  perturbation_interval: 4\n"), "4 is not below train.epochs (4)"),
    "pbt-with-a-race": (search, lambda t, r: _spec(t, r, RANDOM_PBT + "select:\n  finalists: 3\n"),
                        "no fixed configuration to race"),
    "sampler-with-grid": (search, lambda t, r: _spec(
        t, r, "search:\n  sampler: cmaes\n", train="  lr: {grid: [1.0e-3, 3.0e-3]}\n"),
        "search.sampler: only applies to search.algorithm: optuna, not grid"),
    "unknown-sampler": (search, lambda t, r: _spec(t, r, "search:\n  algorithm: optuna\n  sampler: cma\n"),
                        "did you mean 'cmaes'"),
    "hyperband-too-few-epochs": (search, lambda t, r: _spec(
        t, r, "search:\n  algorithm: random\n  num_samples: 4\nscheduler:\n  name: hyperband\n  reduction_factor: 3\n",
        epochs=2), "2 epochs leave HyperBand nothing to halve"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    check_bad_input(CASES[case], tmp_path, capsys, monkeypatch)

"""Searcher entries: which domains each takes, and the seeded algorithm each builds."""

from __future__ import annotations

import pytest

from tests.conftest import make_spec
from tune_app.errors import UsageError
from tune_app.spec import load_spec
from tune_app.tuner.searchers import OPTUNA_SAMPLERS, SEARCHERS

RANDOM = {"search": {"algorithm": "random", "num_samples": 3, "seed": 7},
          "train": {"lr": {"loguniform": [1e-4, 1e-2]}, "epochs": 2}, "model": {"groups": {"choice": [2, 4]}}}


def test_random_takes_sampled_domains_and_draws_num_samples(tmp_path):
    spec = load_spec(make_spec(tmp_path, RANDOM))
    assert spec.trial_count() == 3
    searcher = SEARCHERS["random"].build(spec, tmp_path)
    assert type(searcher).__name__ == "BasicVariantGenerator"


def test_random_refuses_a_grid(tmp_path):
    with pytest.raises(UsageError, match="samples values"):
        load_spec(make_spec(tmp_path, {**RANDOM, "train": {"lr": {"grid": [1e-3, 2e-3]}}}))


@pytest.mark.parametrize("name", sorted(OPTUNA_SAMPLERS))
def test_each_optuna_sampler_is_built_seeded(tmp_path, name):
    spec = load_spec(make_spec(tmp_path, {**RANDOM, "search": {"algorithm": "optuna", "sampler": name, "seed": 7,
                                                              "num_samples": 3}}))
    searcher = SEARCHERS["optuna"].build(spec, tmp_path)
    assert type(searcher._sampler).__name__ == OPTUNA_SAMPLERS[name]
    assert "optuna" in SEARCHERS["optuna"].describe(spec) and name in SEARCHERS["optuna"].describe(spec)


def test_a_sampler_without_optuna_is_refused(tmp_path):
    with pytest.raises(UsageError, match="search.sampler: only applies to search.algorithm: optuna"):
        load_spec(make_spec(tmp_path, {**RANDOM, "search": {"algorithm": "random", "sampler": "tpe"}}))

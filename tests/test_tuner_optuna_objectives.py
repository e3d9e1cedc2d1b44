"""The two-objective searcher keeps its two directions when Tune hands it TuneConfig's single metric."""

from __future__ import annotations

import optuna
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from tune_app.tuner.optuna_objectives import TwoObjectiveOptunaSearch

SPACE = {"hp": {"train.lr": tune.loguniform(1e-4, 1e-2)}}
MAXIMIZE, MINIMIZE = optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE


def test_tune_config_metric_does_not_replace_the_two_objectives():
    searcher = TwoObjectiveOptunaSearch(metric=["judged_val_accuracy", "params"], mode=["max", "min"])
    # What Tune calls with TuneConfig(metric=..., mode=...), which ASHA and the checkpoints keep.
    assert searcher.set_search_properties("judged_val_accuracy", "max", SPACE)
    assert searcher.metric == ["judged_val_accuracy", "params"]
    assert searcher._ot_study.directions == [MAXIMIZE, MINIMIZE]
    assert set(searcher.suggest("t1")["hp"]) == {"train.lr"}
    searcher.on_trial_complete("t1", {"judged_val_accuracy": 0.9, "params": 1000})
    assert searcher._ot_study.trials[0].values == [0.9, 1000]


def test_plain_optuna_search_would_lose_them():
    # Why the subclass exists: Ray's own searcher takes TuneConfig's metric over its list.
    searcher = OptunaSearch(metric=["judged_val_accuracy", "params"], mode=["max", "min"])
    searcher.set_search_properties("judged_val_accuracy", "max", SPACE)
    assert searcher._ot_study.directions == [MAXIMIZE]

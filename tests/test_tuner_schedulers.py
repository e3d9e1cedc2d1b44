"""Scheduler entries: spec rules, and HyperBand's budget as Ray's own scheduler fills it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tune_app.errors import UsageError
from tune_app.tuner.schedulers import SCHEDULERS, Pbt, hyperband_brackets


class _Trial:
    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


def _ray_brackets(trials: int, max_t: int, eta: float) -> list[tuple[int, int, int]]:
    """(trials, n0, r0) per bracket, as ray's HyperBandScheduler assigns them."""
    from ray.tune.schedulers import HyperBandScheduler

    scheduler = HyperBandScheduler(time_attr="training_iteration", max_t=max_t, reduction_factor=eta)
    scheduler.set_search_properties("m", "max")
    for index in range(trials):
        scheduler.on_trial_add(None, _Trial(str(index)))
    return [(len(b._all_trials), b._n0, b._r0) for band in scheduler._hyperbands for b in band if b is not None]


@pytest.mark.parametrize("trials,max_t,eta", [(12, 9, 3), (12, 3, 3), (30, 10, 3), (7, 8, 2), (40, 27, 3)])
def test_brackets_are_filled_as_ray_fills_them(trials, max_t, eta):
    ours = hyperband_brackets(trials, max_t, eta)
    assert [(b["trials"], b["milestones"][0]) for b in ours] == [(t, r0) for t, _, r0 in _ray_brackets(trials, max_t, eta)]


def test_budget_by_hand():
    # max_t 9, eta 3: s_max_1 = 3 brackets per band. s=0: 3 trials x 9 = 27. s=1: 5 trials x 3,
    # keep ceil(5/3)=2 to 9: 15 + 2x6 = 27. s=2 (4 of its 9 places): 4 x 1, keep 3 to 3 (+6),
    # keep 1 to 9 (+6): 16. Total 70.
    brackets = hyperband_brackets(12, 9, 3)
    assert [b["epochs"] for b in brackets] == [27, 27, 16]
    assert [b["milestones"] for b in brackets] == [[9], [3, 9], [1, 3, 9]]


def _spec(**scheduler):
    from tune_app.config import SchedulerConfig, SearchConfig, TrainConfig
    from tune_app.spec import Domain

    space = scheduler.pop("space", {"train.lr": Domain("loguniform", (1e-4, 1e-2))})
    return SimpleNamespace(scheduler=SchedulerConfig(**scheduler), search=SearchConfig(algorithm="random", num_samples=4),
                           base=SimpleNamespace(train=TrainConfig(epochs=6)), space=space, trial_count=lambda: 4)


def error(key, message, fix=None):
    return UsageError(message, key=key, fix=fix)


def test_pbt_needs_a_train_field_to_mutate():
    from tune_app.spec import Domain

    with pytest.raises(UsageError, match="none of lr, weight_decay"):
        SCHEDULERS["pbt"].check(_spec(name="pbt", space={"model.groups": Domain("choice", (1, 2))}), error)
    SCHEDULERS["pbt"].check(_spec(name="pbt"), error)


def test_pbt_perturbs_before_the_last_epoch():
    with pytest.raises(UsageError, match="never perturb"):
        SCHEDULERS["pbt"].check(_spec(name="pbt", perturbation_interval=6), error)


def test_asha_state_is_plain_data():
    import json

    asha = SCHEDULERS["asha"].build(SimpleNamespace(base=SimpleNamespace(train=SimpleNamespace(epochs=8)),
                                                    scheduler=SimpleNamespace(grace_period=1, reduction_factor=2)))
    assert json.loads(json.dumps(SCHEDULERS["asha"].state(asha)))["counter"] == 0


def test_pbt_mutates_only_train_fields_a_running_trial_can_take_on(write_spec):
    from tune_app.spec import load_spec

    spec = load_spec(write_spec({
        "model": {"groups": 2},
        "train": {"lr": {"loguniform": [1.0e-4, 1.0e-2]}, "optimizer": {"choice": ["adam", "sgd"]},
                  "momentum": {"choice": [0.9]}, "batch_size": {"choice": [32, 64]}},
        "search": {"algorithm": "random", "num_samples": 4}, "scheduler": {"name": "pbt"}}))
    # optimizer: its state cannot change type mid-run; a one-value choice has nowhere to go.
    assert sorted(Pbt.mutated(spec)) == ["train.batch_size", "train.lr"]
    assert spec.select.finalists == 0  # no race under PBT (its default of 3 is dropped)
    assert Pbt.stop(spec) == {"epoch": 4}


def test_hyperband_brackets_follow_ray_s_arithmetic():
    # max_t 4, eta 2: brackets of 3 trials from 4 epochs, 3 from 2 (halved to 2 at 4), 4 from 1.
    brackets = hyperband_brackets(10, 4, 2)
    assert [(b["trials"], b["milestones"], b["epochs"]) for b in brackets] == [
        (3, [4], 12), (3, [2, 4], 10), (4, [1, 2, 4], 4 + 2 * 1 + 1 * 2)]

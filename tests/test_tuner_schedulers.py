"""Scheduler entries: what PBT may mutate, and HyperBand's epoch arithmetic."""

from __future__ import annotations

from tune_app.tuner.schedulers import Pbt, hyperband_brackets


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

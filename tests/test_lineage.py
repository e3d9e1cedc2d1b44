"""PBT's lineage read back from result.json rows, and what retrain_best takes from a PBT trial."""

from __future__ import annotations

import json
from pathlib import Path

from tune_app.experiment import load_experiment
from tune_app.lineage import clones, lineage, schedule_sentence
from tune_app.pick import choose


def row(epoch: int, lr: float, acc: float, **extra) -> dict:
    return {"epoch": epoch, "lr": lr, "val_accuracy": acc, "val_loss": 1 - acc,
            "config": {"hp": {"train.lr": lr, "train.batch_size": 64}}, **extra}


def pbt_experiment(root: Path) -> Path:
    """A finished PBT search as the callbacks leave it: trial_00001 was cloned from trial_00000
    after epoch 2 with a larger lr, then trained best; trial_00000 was never cloned."""
    path = root / "pbt"
    histories = {
        "trial_00000": [row(1, 1e-3, 0.5), row(2, 1e-3, 0.7), row(3, 1e-3, 0.72), row(4, 1e-3, 0.74)],
        "trial_00001": [row(1, 1e-4, 0.2), row(2, 1e-4, 0.3),
                        row(3, 1.2e-3, 0.8, cloned_from="trial_00000", cloned_from_epoch=2), row(4, 1.2e-3, 0.78)],
    }
    for name, history in histories.items():
        (path / name).mkdir(parents=True)
        (path / name / "result.json").write_text("".join(json.dumps(r) + "\n" for r in history))
        (path / name / "params.json").write_text(json.dumps(history[-1]["config"]))
        (path / name / "ended.json").write_text(json.dumps({"status": "TERMINATED"}))
    meta = {"status": "finished", "spec_path": "pbt.yaml",
            "base": {"dataset": {"name": "digits"}, "train": {"epochs": 4, "lr": 1e-3, "seed": 0}},
            "space": {"train.lr": {"kind": "loguniform", "values": [1e-4, 1e-2]}},
            "search": {"algorithm": "random", "metric": "val_accuracy", "mode": "max", "num_samples": 2},
            "scheduler": {"name": "pbt", "perturbation_interval": 2, "quantile_fraction": 0.5},
            "retrain": {"epochs": 0, "train_on": "train"}}
    (path / "experiment.json").write_text(json.dumps(meta))
    return path


def test_a_clone_names_its_source_epoch_and_the_values_before_and_after(tmp_path):
    exp = load_experiment(pbt_experiment(tmp_path))
    assert clones(exp.trials[0]) == []
    (clone,) = lineage(exp.trials)
    assert (clone.trial, clone.epoch, clone.source, clone.source_epoch) == ("trial_00001", 3, "trial_00000", 2)
    assert clone.before == {"train.lr": 1e-4, "train.batch_size": 64}
    assert clone.after == {"train.lr": 1.2e-3, "train.batch_size": 64}
    assert clone.changes() == "lr 0.0001 -> 0.0012"  # unchanged values are left out
    assert schedule_sentence(exp.trials[1]) == "epoch 3: lr 0.0001 -> 0.0012 (cloned from trial_00000)"
    assert schedule_sentence(exp.trials[1], epoch=2) == ""


def test_retrain_best_takes_a_pbt_trial_s_values_at_its_best_epoch_and_says_so(tmp_path):
    path = pbt_experiment(tmp_path)
    # The last epoch ran at another lr than the best one: the best epoch's values are taken.
    rows = [json.loads(line) for line in (path / "trial_00001" / "result.json").read_text().splitlines()]
    rows[-1]["config"]["hp"]["train.lr"] = 9e-3
    (path / "trial_00001" / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    choice = choose(load_experiment(path))
    assert choice.run == "trial_00001" and choice.hparams == {"train.lr": 1.2e-3, "train.batch_size": 64}
    assert choice.config(load_experiment(path), 0).train.lr == 1.2e-3
    assert choice.details["pbt"] == {"best_epoch": 3, "changes": "epoch 3: lr 0.0001 -> 0.0012 (cloned from "
                                                                  "trial_00000)"}
    assert "values it had at its best epoch (3), held constant" in choice.sentence

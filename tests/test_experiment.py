"""Reading an experiment folder back: ranking trials, and configurations over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tune_app.experiment import load_experiment

# config -> per-seed validation accuracies by epoch ("nan" marks a diverged epoch)
RUNS = {
    (2, 1e-3): [[0.6, 0.90], [0.5, 0.70]],    # luckiest single run, mean 0.80
    (4, 1e-3): [[0.7, 0.85], [0.8, 0.84]],    # mean 0.845: the one to trust
    (4, 3e-3): [[0.95, 0.99], [0.2, "nan"]],  # great once, diverged once
}


def write_experiment(root: Path, num_samples: int) -> Path:
    path = root / f"exp{num_samples}"
    meta = {"status": "finished", "base": {"train": {"epochs": 2}},
            "search": {"algorithm": "grid", "num_samples": num_samples, "metric": "val_accuracy",
                       "mode": "max"}}
    path.mkdir()
    (path / "experiment.json").write_text(json.dumps(meta))
    index = 0
    for (groups, lr), runs in RUNS.items():
        for seed, accuracies in enumerate(runs):
            trial = path / f"trial_{index:05d}"
            trial.mkdir()
            (trial / "params.json").write_text(json.dumps(
                {"hp": {"model.groups": groups, "train.lr": lr, "train.seed": seed}}))
            lines = []
            for epoch, acc in enumerate(accuracies, 1):
                bad = acc == "nan"
                lines.append(json.dumps({"epoch": epoch, "val_accuracy": float(acc), "diverged": bad,
                                         "train_loss": float("nan") if bad else 1.0}))
            (trial / "result.json").write_text("\n".join(lines) + "\n")
            (trial / "ended.json").write_text('{"status": "TERMINATED"}')
            index += 1
    return path


def test_seeded_grid_retrains_the_best_mean_not_the_luckiest_run(tmp_path):
    exp = load_experiment(write_experiment(tmp_path, 2))
    assert exp.seeded
    configs = exp.configurations()
    assert [(c.hparams["model.groups"], c.hparams["train.lr"]) for c in configs] == [(4, 1e-3), (2, 1e-3), (4, 3e-3)]
    assert configs[0].mean("val_accuracy", "max") == pytest.approx(0.845)
    best = exp.best_trial()
    assert best.hparams == {"model.groups": 4, "train.lr": 1e-3, "train.seed": 0}
    rows = exp.configuration_table()
    assert [r["rank"] for r in rows] == [1, 2, 3] and rows[0]["seeds"] == 2
    assert rows[0]["std"] == pytest.approx(0.00707, abs=1e-4) and rows[1]["worst"] == pytest.approx(0.70)
    assert rows[0]["trials"] == "trial_00002 trial_00003"


def test_without_seeds_the_best_single_run_is_retrained(tmp_path):
    exp = load_experiment(write_experiment(tmp_path, 1))
    assert not exp.seeded
    # The diverged configuration's good run still counts: that trial itself never diverged.
    assert exp.best_trial().hparams == {"model.groups": 4, "train.lr": 3e-3, "train.seed": 0}
    assert [r["trial"] for r in exp.table()][:2] == ["trial_00004", "trial_00000"]


def test_report_shows_configurations_only_for_seeded_grids(tmp_path):
    from tune_app.report import table_lines

    seeded = "\n".join(table_lines(load_experiment(write_experiment(tmp_path, 2))))
    assert "## Configurations, best mean first" in seeded and "mean_best_val_accuracy" in seeded
    assert seeded.index("## Configurations") < seeded.index("## Trials, best first")
    single = "\n".join(table_lines(load_experiment(write_experiment(tmp_path, 1))))
    assert "Configurations" not in single and "## Trials, best first" in single

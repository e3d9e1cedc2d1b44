"""search.metric decides the ranking, the pick, the TensorBoard and summary columns, and the
race's pick is what retrain_best trains: checked on experiment folders written by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tune_app.experiment import load_experiment

# trial -> (groups, lr, per-epoch (val_accuracy, val_loss, val_macro_f1)); each metric has another best
HISTORIES = {
    "trial_00000": (2, 1e-3, [(0.80, 0.90, 0.60), (0.90, 0.70, 0.65)]),  # best accuracy
    "trial_00001": (4, 1e-3, [(0.70, 0.50, 0.70), (0.85, 0.40, 0.75)]),  # best loss
    "trial_00002": (8, 1e-3, [(0.60, 0.80, 0.80), (0.88, 0.60, 0.85)]),  # best macro-F1
}


def write_experiment(root: Path, metric: str, mode: str, seeds: int = 1) -> Path:
    path = root / f"exp-{metric}-{seeds}"
    path.mkdir()
    meta = {"status": "finished", "base": {"train": {"epochs": 2}},
            "search": {"algorithm": "grid", "num_samples": seeds, "metric": metric, "mode": mode},
            "retrain": {"epochs": 0, "train_on": "train"}}
    (path / "experiment.json").write_text(json.dumps(meta))
    index = 0
    for groups, lr, rows in HISTORIES.values():
        for seed in range(seeds):
            trial = path / f"trial_{index:05d}"
            trial.mkdir()
            (trial / "params.json").write_text(json.dumps(
                {"hp": {"model.groups": groups, "train.lr": lr, "train.seed": seed}}))
            # a later seed scores a little lower, so seeds do not change the order
            (trial / "result.json").write_text("".join(json.dumps(
                {"epoch": e, "val_accuracy": a - 0.01 * seed, "val_loss": loss + 0.01 * seed,
                 "val_macro_f1": f - 0.01 * seed}) + "\n" for e, (a, loss, f) in enumerate(rows, 1)))
            (trial / "ended.json").write_text('{"status": "TERMINATED"}')
            index += 1
    return path


@pytest.mark.parametrize("metric,mode,groups", [("val_accuracy", "max", 2), ("val_loss", "min", 4),
                                                ("val_macro_f1", "max", 8)])
def test_the_metric_decides_the_ranking_and_the_pick(tmp_path, metric, mode, groups):
    from tune_app.pick import choose

    exp = load_experiment(write_experiment(tmp_path, metric, mode))
    assert exp.best_trial().hparams["model.groups"] == groups
    assert exp.table()[0]["groups"] == groups and f"best_{metric}" in exp.table()[0]
    choice = choose(exp)
    assert choice.stage == "search" and choice.hparams["model.groups"] == groups
    seeded = load_experiment(write_experiment(tmp_path, metric, mode, seeds=2))
    rows = seeded.configuration_table()
    assert rows[0]["groups"] == groups and f"mean_best_{metric}" in rows[0]


def test_tensorboard_best_column_follows_the_metric_and_its_mode(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tune_app.tb import TrialWriter, hparam_metrics

    writer = TrialWriter(str(tmp_path), {"lr": 0.1}, metric="val_loss", mode="min")
    for epoch, loss in enumerate([0.9, 0.5, 0.7], 1):
        writer.epoch({"epoch": epoch, "val_loss": loss, "val_accuracy": 0.5})
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert set(hparam_metrics("val_loss")) <= set(events.Tags()["scalars"])
    assert "hparams/best_val_accuracy" not in events.Tags()["scalars"]
    assert [e.value for e in events.Scalars("hparams/best_val_loss")] == pytest.approx([0.9, 0.5, 0.5])


def test_summary_and_metrics_name_the_metric(tmp_path):
    from tune_app.retrain_best import summary_markdown

    test = {"accuracy": 0.8, "top5_accuracy": 0.9, "loss": 0.5, "macro_f1": 0.7, "per_class_accuracy": {"a": 0.8}}
    m = {"experiment": "x", "trial": "race_00001", "hparams": {"model.groups": 8}, "epochs": 2, "train_on": "train",
         "metric": "val_macro_f1", "search_best_val_macro_f1": 0.85, "search_epochs": 2, "final_val_macro_f1": 0.8,
         "val_held_out": True, "test": test, "test_seeds": None, "search_seeds": None,
         "baselines": {"majority_class_accuracy": 0.1, "uniform_random_accuracy": 0.1},
         "chosen_by": {"stage": "race", "rule": "the rule", "sentence": "picked groups=8: a clear winner",
                       "seeds": [0, 1], "judged_epochs": 2, "value": 0.84}}
    text = summary_markdown(m)
    assert "| best val macro f1 in the search (2 epochs) | 0.8500 |" in text
    assert "gap (test - search best val macro f1) | -0.1500 |" in text  # test macro-F1, not accuracy
    assert "mean final val macro f1 over the race's 2 seeds (2 epochs) | 0.8400 |" in text
    assert "How it was chosen (race): the rule." in text and "Decision: picked groups=8" in text


def write_race(path: Path, finals: dict[tuple[int, int], list[float]], parameters: dict[int, int]) -> None:
    """A race/ folder: plan.json and one race_ run per (groups, seed); seed 0 of groups 2 reuses trial_00000."""
    race = path / "race"
    race.mkdir()
    seeds = [0, 1, 2]
    finalists = []
    index = 0
    for rank, ((groups, lr), values) in enumerate(finals.items(), 1):
        runs = []
        for seed, value in zip(seeds, values):
            hp = {"model.groups": groups, "train.lr": lr, "train.seed": seed}
            reuse = "trial_00000" if (groups, seed) == (2, 0) else None
            runs.append({"seed": seed, "hp": hp, "reuse": reuse})
            if reuse is None:
                run = race / f"race_{index:05d}"
                run.mkdir()
                (run / "params.json").write_text(json.dumps({"hp": hp}))
                (run / "result.json").write_text(json.dumps({"epoch": 1, "val_accuracy": 0.5}) + "\n"
                                                 + json.dumps({"epoch": 2, "val_accuracy": value}) + "\n")
                index += 1
        finalists.append({"hparams": {"model.groups": groups, "train.lr": lr},
                          "label": f"groups={groups}, lr={lr}", "search_rank": rank,
                          "parameters": parameters[groups], "runs": runs})
    (race / "plan.json").write_text(json.dumps({"metric": "val_accuracy", "mode": "max", "epochs": 2,
                                                "seeds": seeds, "finalists": finalists}))


def test_the_race_pick_is_what_retrain_best_trains_and_the_report_shows(tmp_path):
    from tune_app.pick import choose
    from tune_app.report_race import race_section

    path = write_experiment(tmp_path, "val_accuracy", "max")
    # groups=2 leads by the mean (its seed 0 is trial_00000's final 0.90), groups=4 is tied and smaller.
    write_race(path, {(2, 1e-3): [0.90, 0.91, 0.92], (4, 1e-3): [0.905, 0.90, 0.915],
                      (8, 1e-3): [0.70, 0.71, 0.69]}, {2: 5000, 4: 3000, 8: 1000})
    exp = load_experiment(path)
    assert len(exp.trials) == 3  # race runs are not search trials
    choice = choose(exp)
    assert choice.stage == "race" and choice.hparams == {"model.groups": 4, "train.lr": 1e-3}
    assert choice.run == "race_00002" and choice.epochs == 2
    assert choice.details["runner_up"] == "groups=4, lr=0.001" and choice.details["leader"] == "groups=2, lr=0.001"
    assert "tied with the leader groups=2, lr=0.001" in choice.sentence and "40% smaller" in choice.sentence
    assert choice.config(exp, 1).train.seed == 1 and choice.config(exp, 1).model.groups == 4
    figures = path / "report"
    figures.mkdir()
    text = "\n".join(race_section(exp, figures))
    assert "**Decision:** picked groups=4" in text and (figures / "race.png").is_file()
    assert "trial_00000 race_00000 race_00001" in text  # the reused search run is named
    assert "groups=4, lr=0.001 #2 -> #2" not in text and "no (same order)" in text


def test_mode_left_out_follows_the_metric_and_dry_run_shows_the_race(tmp_path):
    from tests.test_bad_input import spec_text
    from tune_app.search import describe_trials
    from tune_app.spec import load_spec

    grid = "  lr: {grid: [1.0e-3, 3.0e-3]}\n"
    path = tmp_path / "spec.yaml"
    path.write_text(spec_text(grid, str(tmp_path)) + "search:\n  metric: val_loss\nselect:\n  finalists: 2\n  seeds: 3\n")
    spec = load_spec(path)
    assert spec.search.mode == "min"
    assert "race: top 2 configurations x 3 seeds x 1 epochs = at most 6 epochs" in describe_trials(spec)
    path.write_text(spec_text("", str(tmp_path)))  # one configuration: nothing to race
    assert "race: none" in describe_trials(load_spec(path))

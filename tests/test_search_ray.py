"""A real (small) Ray Tune search with ASHA on digits, then retrain-best on its result."""

from __future__ import annotations

import json

import pytest

from tune_app import retrain_best, search
from tune_app.checkpoint import load_checkpoint
from tune_app.experiment import load_experiment

# Every test here runs (or shares a module fixture that runs) a real Ray search.
pytestmark = pytest.mark.ray

SPEC = {
    # 4 configurations x 2 seeds = 8 trials; lr 1e-5 barely learns in 4 epochs, so ASHA has
    # clear losers to stop.
    "model": {"groups": {"grid": [2, 4]}},
    "train": {"lr": {"grid": [3.0e-3, 1.0e-5]}, "seed": 7},
    "search": {"num_samples": 2},
}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    import ray

    from tests.conftest import make_spec

    tmp = tmp_path_factory.mktemp("search")
    spec = make_spec(tmp, SPEC, "quick.yaml")
    assert search.main(["--space", str(spec), "--num-cpus", "2"]) == 0
    yield tmp / "results" / "quick", spec
    ray.shutdown()


def test_search_runs_every_grid_point_and_asha_stops_some(experiment):
    path, _ = experiment
    exp = load_experiment(path)
    assert json.loads((path / "experiment.json").read_text())["status"] == "finished"
    assert len(exp.trials) == 8
    statuses = [t.status(exp.max_epochs) for t in exp.trials]
    assert "stopped early" in statuses and "completed" in statuses
    for trial in exp.trials:
        epochs = [h["epoch"] for h in trial.history]
        assert epochs == list(range(1, len(epochs) + 1))  # one report per epoch, no gaps
        assert {"val_accuracy", "val_loss", "train_loss", "train_accuracy"} <= set(trial.history[0])
    best = exp.best_trial()
    assert best.hparams["train.lr"] == 3e-3 and best.best("val_accuracy", "max") > 0.5


def test_trials_reuse_worker_processes_without_inheriting_state(experiment):
    # 8 trials on 2 CPUs: without actor reuse every trial pays a fresh worker (torch import,
    # dataset fetch), which tripled the quickstart's wall time.
    path, _ = experiment
    trials = load_experiment(path).trials
    pids = {h["pid"] for t in trials for h in t.history}
    assert len(pids) < len(trials)
    for trial in trials:
        # A reused worker must start each trial fresh: epoch 1 and no earlier trial's checkpoint.
        assert trial.history[0]["epoch"] == 1 and trial.history[0]["training_iteration"] == 1


def test_checkpoints_hold_state_and_config_and_only_the_best_few_are_kept(experiment):
    path, _ = experiment
    for trial in load_experiment(path).trials:
        checkpoints = trial.checkpoints()
        assert 1 <= len(checkpoints) <= 2
        state = load_checkpoint(checkpoints[-1])
        # judge: the judged column's running value (scheduler.judge best/ema), so a resume keeps it
        # trial: which trial wrote it (PBT's lineage: a trial cloned from it says so)
        assert set(state) == {"model", "optimizer", "schedule", "epoch", "config", "class_names", "loss_limit",
                              "judge", "trial"}
        assert state["trial"] == trial.name
        assert state["loss_limit"] > 0  # the divergence threshold carries over a resume
        assert state["config"]["train"]["lr"] == trial.hparams["train.lr"]


def test_each_trial_writes_tensorboard_events(experiment):
    path, _ = experiment
    for trial in load_experiment(path).trials:
        assert list((trial.path / "tb").glob("events.out.tfevents.*"))


def test_ranked_table_is_written(experiment):
    path, _ = experiment
    rows = json.loads((path / "trials.json").read_text())
    assert [r["rank"] for r in rows] == list(range(1, 9))
    assert rows[0]["best_val_accuracy"] >= rows[-1]["best_val_accuracy"]
    assert {"groups", "seed", "lr", "epochs", "status"} <= set(rows[0])


def test_each_configuration_runs_once_per_seed_and_is_ranked_by_the_mean(experiment):
    path, _ = experiment
    exp = load_experiment(path)
    configs = exp.configurations()
    assert len(configs) == 4 and exp.seeded
    for config in configs:
        assert sorted(t.hparams["train.seed"] for t in config.trials) == [7, 8]
        first, second = (t.history[0]["train_loss"] for t in config.trials)
        assert first != second  # another seed: other initial weights and batches
    means = [c.mean("val_accuracy", "max") for c in configs]
    assert means == sorted(means, reverse=True) and configs[0].hparams["train.lr"] == 3e-3
    assert exp.best_trial() in configs[0].trials
    table = exp.configuration_table()
    assert [r["seeds"] for r in table] == [2, 2, 2, 2] and "seed" not in table[0]


def test_retrain_best_evaluates_once_on_test_and_never_overwrites(experiment, capsys):
    import torch

    path, _ = experiment
    torch.set_num_threads(2)
    assert retrain_best.main(["--experiment", str(path)]) == 0
    # Like its trials (resources.cpus_per_trial: 1), not torch's default of every core.
    assert torch.get_num_threads() == 1
    out = capsys.readouterr().out
    # Not a terminal: one plain line per epoch, no progress-bar carriage returns.
    assert "\r" not in out and [line.split(": epoch ")[1][:3] for line in out.splitlines()
                                 if ": epoch " in line] == ["1/3", "2/3", "3/3"]
    best = path / "best"
    metrics = json.loads((best / "metrics.json").read_text())
    assert metrics["threads"] == 1
    assert metrics["trial"] == load_experiment(path).best_trial().name
    assert metrics["epochs"] == 3 and metrics["train_on"] == "train"
    assert metrics["test"]["accuracy"] > 0.5 and len(metrics["test"]["confusion_matrix"]) == 10
    assert sum(map(sum, metrics["test"]["confusion_matrix"])) == 360  # the whole test split, once
    assert "val-to-test gap" in (best / "summary.md").read_text()
    seeds = metrics["search_seeds"]  # the search ran 2 seeds per configuration
    assert seeds["runs"] == 2 and metrics["trial"] in seeds["trials"]
    assert seeds["mean_best_val_accuracy"] <= metrics["search_best_val_accuracy"]
    assert "mean best val accuracy over its 2 seeds" in (best / "summary.md").read_text()
    state = load_checkpoint(best)
    assert state["class_names"] == [str(d) for d in range(10)]
    before = (best / "metrics.json").read_bytes()
    assert retrain_best.main(["--experiment", str(path), "--epochs", "1", "--train-on", "train+val"]) == 0
    assert (best / "metrics.json").read_bytes() == before
    assert json.loads((path / "best-2" / "metrics.json").read_text())["train_on"] == "train+val"


def test_a_second_search_with_the_same_name_gets_its_own_folder(experiment):
    path, spec = experiment
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*")}
    from tests.conftest import make_spec

    single = make_spec(spec.parent, {"model": {"groups": 2}, "train": {"lr": 3.0e-3, "epochs": 1}}, "single.yaml")
    assert search.main(["--space", str(single), "--name", "quick"]) == 0
    siblings = [p for p in path.parent.iterdir() if p.name.startswith("quick-")]
    assert len(siblings) == 1 and len(load_experiment(siblings[0]).trials) == 1
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*") if p in before} == before

"""Real (small) two-objective searches on digits: a grid (the front computed from the results)
and Optuna (its multi-objective sampler: a study with two directions)."""

from __future__ import annotations

import pytest

from tests.conftest import make_spec
from tune_app import report, search
from tune_app.experiment import load_experiment
from tune_app.models import build_model, count_parameters
from tune_app.pareto import experiment_front
from tune_app.pick import choose

pytestmark = pytest.mark.ray  # real Ray searches (implies slow)


@pytest.fixture(scope="module", autouse=True)
def _shutdown_ray():
    yield
    import ray

    ray.shutdown()


def test_grid_search_reports_the_cost_and_draws_the_front(tmp_path, capsys):
    # QUICK_SPEC: groups 2 or 4 (different sizes) x two lr, 4 epochs, ASHA.
    spec = make_spec(tmp_path, {"search": {"objectives": ["val_accuracy", "params"]}}, "grid.yaml")
    assert search.main(["--space", str(spec), "--num-cpus", "2"]) == 0
    out = capsys.readouterr().out
    path = tmp_path / "results" / "quick"
    exp = load_experiment(path)
    assert exp.metric == "val_accuracy" and exp.meta["search"]["objectives"] == ["val_accuracy", "params"]
    for trial in exp.trials:  # every epoch carries its model's size, as count_parameters says
        expected = count_parameters(build_model(exp.trial_config(trial).model, 10, 1))
        assert {row["params"] for row in trial.history} == {expected}
    front = experiment_front(exp)
    stopped = sum(t.status(exp.max_epochs) == "stopped early" for t in exp.trials)
    assert len(front.compared) == len(exp.trials) - stopped and front.members
    assert "Pareto front of val_accuracy and params" in out and "retrain_best --pick smallest-within 0.01" in out
    choice = choose(exp)
    assert choice.stage == "Pareto front" and choice.run in [r["trial"] for r in front.rows()]
    assert report.main(["--experiment", str(path)]) == 0
    text = (path / "report.md").read_text()
    assert "## Pareto front: val_accuracy against params" in text and (path / "report" / "pareto_front.png").is_file()


def test_optuna_runs_a_two_direction_study(tmp_path):
    import optuna

    spec = make_spec(tmp_path, {
        "search": {"algorithm": "optuna", "num_samples": 4, "objectives": ["val_accuracy", "latency_ms"]},
        "model": {"groups": {"choice": [2, 4]}},
        "train": {"epochs": 2, "lr": {"loguniform": [1.0e-4, 3.0e-3]}},
        "scheduler": {"name": "none"}}, "optuna.yaml")
    assert search.main(["--space", str(spec), "--num-cpus", "2"]) == 0
    path = tmp_path / "results" / "quick"
    study = optuna.load_study(study_name="quick", storage=f"sqlite:///{path / 'optuna.db'}")
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 4 and all(len(t.values) == 2 for t in done)
    exp = load_experiment(path)
    latencies = sorted(row["latency_ms"] for t in exp.trials for row in t.history[-1:])
    assert all(value > 0 for value in latencies)
    # What the study was told is what the trials reported at their last epoch.
    assert sorted(t.values[1] for t in done) == pytest.approx(latencies)
    assert experiment_front(exp).members

"""The searchers and schedulers beyond grid, TPE and ASHA, each in a real (tiny) Ray search on
digits: PBT with random search (interrupted and resumed), Optuna's CMA-ES sampler with
HyperBand, Optuna's QMC sampler with the median stopping rule, its GP and random samplers with
no scheduler."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO, make_spec
from tests.test_faults import result_rows, run_search
from tests.test_resume import wait_for
from tune_app.checkpoint import load_checkpoint
from tune_app.experiment import load_experiment
from tune_app.lineage import lineage, values_at

pytestmark = pytest.mark.ray  # real Ray searches (implies slow)

TINY = {"model": {"stage_channels": [8, 16, 32], "stage_blocks": 1, "groups": 2},
        # 0.5 CPU a trial: 4 trials at once on the 2 CPUs a test gives Ray, so no trial waits.
        "resources": {"cpus_per_trial": 0.5}}
LR = (1.0e-5, 3.0e-2)  # 1e-5 barely learns in a few epochs: clear losers to copy over
EPOCHS = 8  # perturbation points at epochs 2, 4 and 6 (the last epoch is never one)
PBT = {**TINY, "train": {"epochs": EPOCHS, "lr": {"loguniform": list(LR)}},
       "search": {"algorithm": "random", "num_samples": 4, "seed": 1},
       "scheduler": {"name": "pbt", "perturbation_interval": 2, "quantile_fraction": 0.5}}


@pytest.fixture(scope="module")
def pbt_search(tmp_path_factory):
    """A PBT search stopped by SIGTERM once a trial was cloned, then resumed to the end."""
    tmp = tmp_path_factory.mktemp("pbt")
    spec = make_spec(tmp, PBT, "pbt.yaml")
    path = tmp / "results" / "quick"
    proc = run_search(spec)

    def cloned() -> bool:
        return any(row.get("cloned_from") for t in path.glob("trial_*") for row in result_rows(t))

    assert wait_for(cloned, timeout=600), proc.communicate()[0]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    resumed = subprocess.run([sys.executable, "-m", "tune_app.search", "--resume", str(path), "--num-cpus", "2"],
                             cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    return path


@pytest.mark.timeout(1500)
def test_pbt_changes_a_running_trial_s_lr_and_it_keeps_training_at_the_new_rate(pbt_search):
    exp = load_experiment(pbt_search)
    assert json.loads((pbt_search / "experiment.json").read_text())["status"] == "finished"
    assert len(exp.trials) == 4 and all(t.status(EPOCHS) == "completed" for t in exp.trials)
    events = lineage(exp.trials)
    assert events, "no trial was cloned"
    changed = [c for c in events if c.after["train.lr"] != c.before["train.lr"]]
    assert changed, events
    for clone in changed:
        trial = next(t for t in exp.trials if t.name == clone.trial)
        later = [c.epoch for c in events if c.trial == clone.trial and c.epoch > clone.epoch]
        rows = [h for h in trial.history if clone.epoch <= h["epoch"] < min(later, default=EPOCHS + 1)]
        # Every epoch from the clone on ran at the new rate: `lr` is read from the optimiser.
        assert [h["epoch"] for h in rows] == list(range(clone.epoch, clone.epoch + len(rows)))
        assert {h["lr"] for h in rows} == {clone.after["train.lr"]}
        assert all(math.isfinite(h["train_loss"]) for h in rows)
        assert rows[0]["cloned_from"] == clone.source and trial.history[-1]["epoch"] == EPOCHS
    for trial in exp.trials:
        # Mutations stay inside the spec's domain; params.json is the trial's current config.
        assert all(LR[0] <= h["lr"] <= LR[1] for h in trial.history)
        assert json.loads((trial.path / "params.json").read_text()) == trial.history[-1]["config"]
        last = max(trial.checkpoints(), key=lambda p: load_checkpoint(p)["epoch"])
        state = load_checkpoint(last)
        assert state["epoch"] == EPOCHS and state["trial"] == trial.name
        assert state["optimizer"]["param_groups"][0]["lr"] == trial.history[-1]["lr"]
        assert state["config"]["train"]["lr"] == values_at(trial.history[-1])["train.lr"]


def test_pbt_lineage_is_in_the_report_and_retrain_best_says_which_values_it_took(pbt_search):
    from tune_app import report, retrain_best

    assert report.main(["--experiment", str(pbt_search)]) == 0
    section = (pbt_search / "report.md").read_text().split("## Population based training", 1)[1].split("\n## ")[0]
    for clone in lineage(load_experiment(pbt_search).trials):
        assert f"| {clone.epoch} | {clone.trial} | {clone.source} | {clone.source_epoch} |" in section
    assert (pbt_search / "report" / "pbt_lr.png").stat().st_size > 10_000
    assert retrain_best.main(["--experiment", str(pbt_search)]) == 0
    summary = (pbt_search / "best" / "summary.md").read_text()
    assert "PBT" in summary and "best epoch" in summary


SPACE = {"lr": {"loguniform": list(LR)}, "weight_decay": {"loguniform": [1.0e-6, 1.0e-3]}}


def _search(tmp_path_factory, name: str, extra: dict):
    import ray

    from tune_app import search

    tmp = tmp_path_factory.mktemp(name)
    spec = make_spec(tmp, {**TINY, "train": {"epochs": 4, **SPACE}, **extra, "output": {"name": name}}, f"{name}.yaml")
    try:
        assert search.main(["--space", str(spec), "--num-cpus", "2"]) == 0
    finally:
        ray.shutdown()
    return tmp / "results" / name


@pytest.fixture(scope="module")
def cmaes_hyperband(tmp_path_factory):
    # 6 trials of 4 epochs halved by 2: brackets of 3 trials from 4 epochs and 3 from 2
    return _search(tmp_path_factory, "cmaes_hyperband", {
        "search": {"algorithm": "optuna", "sampler": "cmaes", "num_samples": 6},
        "scheduler": {"name": "hyperband", "reduction_factor": 2}})


@pytest.fixture(scope="module")
def qmc_median(tmp_path_factory):
    return _search(tmp_path_factory, "qmc_median", {
        "search": {"algorithm": "optuna", "sampler": "qmc", "num_samples": 6},
        "scheduler": {"name": "median", "grace_period": 1}})


def _system_attrs(path) -> tuple[dict, list]:
    """The study's own system attributes and each trial's (Optuna's samplers record there)."""
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{path / 'optuna.db'}")
    study = storage.get_study_id_from_name(path.name)
    return storage.get_study_system_attrs(study), [t.system_attrs for t in storage.get_all_trials(study)]


@pytest.mark.timeout(1800)
def test_cmaes_samples_and_hyperband_spends_the_epochs_its_brackets_say(cmaes_hyperband, capsys):
    from tune_app import search
    from tune_app.tuner.schedulers import hyperband_brackets

    path = cmaes_hyperband
    exp = load_experiment(path)
    assert len(exp.trials) == 6
    brackets = hyperband_brackets(6, 4, 2)
    assert [(b["trials"], b["milestones"]) for b in brackets] == [(3, [4]), (3, [2, 4])]
    # Bracket 1 halves its 3 trials at epoch 2: two go on to 4. 3 x 4 + 3 x 2 + 2 x 2 = 22.
    assert sum(t.epochs_run for t in exp.trials) == sum(b["epochs"] for b in brackets) == 22
    assert sorted(t.epochs_run for t in exp.trials) == [2, 4, 4, 4, 4, 4]
    # --dry-run said so before the search.
    assert search.main(["--space", str(path / "spec.yaml"), "--dry-run"]) == 0
    assert "HyperBand trains at most 22 epochs" in capsys.readouterr().out
    # CMA-ES itself proposed trials (it records its generation on each), not only its
    # independent start-up sampler.
    _, trials = _system_attrs(path)
    assert len(trials) == 6 and any("cma:generation" in attrs for attrs in trials)


@pytest.mark.timeout(1800)
def test_qmc_samples_and_the_median_rule_stops_trials_below_the_median(qmc_median):
    path = qmc_median
    exp = load_experiment(path)
    assert len(exp.trials) == 6
    # QMCSampler counts the points it drew from its sequence in the study.
    drawn = [v for k, v in _system_attrs(path)[0].items() if k.startswith("qmc:")]
    assert drawn  # the key appears with the first point drawn (its value counts from 0)
    stopped = [t for t in exp.trials if t.status(4) == "stopped early"]
    completed = [t for t in exp.trials if t.status(4) == "completed"]
    assert stopped and completed and len(stopped) + len(completed) == 6
    # A stopped trial's best was below the best of those that ran out.
    assert max(t.best("val_accuracy", "max") for t in stopped) <= max(t.best("val_accuracy", "max")
                                                                       for t in completed)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("sampler", ["gp", "random"])
def test_optuna_s_other_samplers_run_a_search_to_the_end(tmp_path_factory, sampler):
    path = _search(tmp_path_factory, f"{sampler}_none", {
        "train": {"epochs": 2, **SPACE},
        "search": {"algorithm": "optuna", "sampler": sampler, "num_samples": 3, "seed": 5},
        "scheduler": {"name": "none"}})
    exp = load_experiment(path)
    assert len(exp.trials) == 3 and all(t.status(2) == "completed" for t in exp.trials)
    assert len({t.hparams["train.lr"] for t in exp.trials}) == 3  # three points drawn, not one
    import optuna

    study = optuna.load_study(study_name=path.name, storage=f"sqlite:///{path / 'optuna.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    # The study was told each trial's result: what the sampler learns from.
    assert sorted(t.value for t in done) == pytest.approx(sorted(t.history[-1]["judged_val_accuracy"]
                                                                 for t in exp.trials))

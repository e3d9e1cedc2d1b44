"""What a finished search says about its trials: failures are named and exit 1, a diverged
trial (NaN or exploding loss) ranks below every healthy one, two Ctrl-C stop at once without a
traceback and a resume then records every epoch once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, make_spec
from tests.test_faults import result_rows, run_search
from tests.test_resume import SLOW, wait_for
from tune_app import search
from tune_app.experiment import load_experiment

pytestmark = pytest.mark.ray  # real Ray searches (implies slow)


@pytest.fixture
def _ray_down():
    yield
    import ray

    ray.shutdown()


def test_a_failed_trial_is_named_and_the_search_exits_1(tmp_path, monkeypatch, capsys, _ray_down):
    import tune_app.data as data_registry

    real = data_registry.load_dataset

    def labels_out_of_range(cfg):
        # What a corrupted source or cache hands the trials: a label no class has. Every trial
        # then fails inside its worker, after the driver's checks passed.
        bundle = real(cfg)
        labels = np.array(bundle.train.labels)
        labels[0] = 99
        bundle.train = type(bundle.train)(np.asarray(bundle.train.images), labels)
        return bundle

    monkeypatch.setattr(data_registry, "load_dataset", labels_out_of_range)
    spec = make_spec(tmp_path, {"model": {"groups": 2}, "train": {"epochs": 1, "lr": 1.0e-3},
                                "search": {"max_failures": 0}})
    code = search.main(["--space", str(spec), "--num-cpus", "2"])
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    assert "1 trial(s) failed: trial_00000" in captured.err
    assert "error.txt" in captured.err
    assert "next: python -m tune_app.retrain_best" not in captured.out


def test_an_exploding_loss_is_divergence_and_ranks_below_every_healthy_trial(tmp_path):
    # Adam at lr 1e3 keeps the loss finite (1e6 and more): only the explosion rule catches it.
    spec = make_spec(tmp_path, {"model": {"groups": 2}, "train": {"lr": {"grid": [3.0e-3, 1.0e3]}},
                                "scheduler": {"name": "none"}})
    proc = run_search(spec)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    # What it is doing shows up before Ray's first table of PENDING trials.
    steps = ["preparing data: digits", "data: digits", "starting Ray on this machine", "Ray dashboard:",
             "Number of trials"]
    assert [out.index(step) for step in steps] == sorted(out.index(step) for step in steps), out
    exp = load_experiment(tmp_path / "results" / "quick")
    by_lr = {t.hparams["train.lr"]: t for t in exp.trials}
    assert by_lr[1e3].status(exp.max_epochs) == "diverged"
    assert [t.name for t in exp.ranked()][-1] == by_lr[1e3].name
    assert exp.table()[-1]["status"] == "diverged"
    assert exp.best_trial() is by_lr[3e-3]
    # The end of the search rates lr's importance, and says two trials cannot be trusted for it.
    assert "parameter importance for val_accuracy" in out and "too few trials to trust it: only" in out


def test_two_ctrl_c_stop_at_once_without_a_traceback_and_resume_keeps_one_row_per_epoch(tmp_path):
    spec = make_spec(tmp_path, SLOW)
    exp_dir = tmp_path / "results" / "quick"
    proc = run_search(spec)
    assert wait_for(lambda: any(result_rows(t) for t in exp_dir.glob("trial_*")))
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: False, timeout=0.3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert json.loads((exp_dir / "experiment.json").read_text())["status"] == "interrupted"

    resumed = subprocess.run([sys.executable, "-m", "tune_app.search", "--resume", str(exp_dir), "--num-cpus", "2"],
                             cwd=REPO, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    exp = load_experiment(exp_dir)
    for trial in exp.trials:
        assert [r["epoch"] for r in result_rows(trial.path)] == list(range(1, exp.max_epochs + 1)), trial.name

"""Interrupting the search driver loses nothing; `--resume` continues where it stopped."""

from __future__ import annotations

import pytest

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO
from tests.conftest import make_spec
from tests.test_faults import result_rows, run_search
from tune_app.experiment import load_experiment

# Every test here runs (or shares a module fixture that runs) a real Ray search.
pytestmark = pytest.mark.ray

# 4 trials of 6 epochs at ~0.1-0.2 s/epoch, two at a time: long enough to interrupt while
# the first two are finished and the next two are running. No ASHA, so "finished" is visible.
SLOW = {"model": {"stage_channels": [32, 64, 128], "stem_channels": 32, "groups": {"grid": [2, 4]}},
        "train": {"epochs": 6, "lr": {"grid": [1.0e-3, 3.0e-3]}},
        "scheduler": {"name": "none"}}
EPOCHS = 6


def wait_for(predicate, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_sigkill_of_the_driver_then_resume_completes_every_trial_once(tmp_path):
    spec = make_spec(tmp_path, SLOW)
    exp_dir = tmp_path / "results" / "quick"
    # Its own process group, so SIGKILL takes the driver and the Ray processes it started,
    # as losing the machine's session would.
    proc = run_search(spec, start_new_session=True)

    def progress():
        rows = [result_rows(t) for t in exp_dir.glob("trial_*")]
        complete = [r for r in rows if r and r[-1]["epoch"] == EPOCHS]
        running = [r for r in rows if r and r[-1]["epoch"] < EPOCHS]
        return bool(complete and running)

    assert wait_for(progress), proc.communicate()[0]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {t.name: (t / "result.json").read_bytes() for t in exp_dir.glob("trial_*")
              if result_rows(t) and result_rows(t)[-1]["epoch"] == EPOCHS}
    assert before
    assert json.loads((exp_dir / "experiment.json").read_text())["status"] == "running"

    resumed = subprocess.run([sys.executable, "-m", "tune_app.search", "--resume", str(exp_dir), "--num-cpus", "2"],
                             cwd=REPO, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads((exp_dir / "experiment.json").read_text())["status"] == "finished"
    exp = load_experiment(exp_dir)
    assert len(exp.trials) == 4
    for name, content in before.items():  # finished trials were not run again
        assert (exp_dir / name / "result.json").read_bytes() == content
    for trial in exp.trials:
        epochs = [r["epoch"] for r in result_rows(trial.path)]
        # Complete history; an epoch trained before the kill but after the last checkpoint
        # Ray registered may be trained again from that checkpoint, never any earlier one.
        assert sorted(set(epochs)) == list(range(1, max(epochs) + 1)), (trial.name, epochs)
        assert trial.status(exp.max_epochs) == "completed"
        ckpt_epochs = len(epochs) - len(set(epochs))
        assert ckpt_epochs <= 1, (trial.name, epochs)


def test_sigterm_stops_cleanly_and_prints_the_resume_command(tmp_path):
    spec = make_spec(tmp_path, SLOW)
    exp_dir = tmp_path / "results" / "quick"
    proc = run_search(spec)
    assert wait_for(lambda: any(result_rows(t) for t in exp_dir.glob("trial_*")))
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert f"python -m tune_app.search --resume {exp_dir}" in out
    assert json.loads((exp_dir / "experiment.json").read_text())["status"] == "interrupted"
    assert "Traceback" not in out


def test_asha_state_survives_the_snapshot_a_resume_restores():
    import pickle

    from ray.tune.schedulers import ASHAScheduler

    from tune_app.tuner.callbacks import SchedulerStateCallback

    def asha():
        s = ASHAScheduler(time_attr="training_iteration", max_t=8, grace_period=1, reduction_factor=2)
        s.set_search_properties("val_accuracy", "max")
        return s

    running = asha()
    running._brackets[0]._rungs[0][1].update({"t1": 0.9, "t2": 0.4})  # rung at 1 epoch
    state = pickle.loads(pickle.dumps(SchedulerStateCallback(running).get_state()))
    restored = SchedulerStateCallback(asha())
    restored.set_state(state)
    assert restored.scheduler._brackets[0]._rungs[0][1] == {"t1": 0.9, "t2": 0.4}

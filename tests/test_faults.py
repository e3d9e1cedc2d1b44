"""Faults during a real search: a trial's worker process is killed; a trial diverges."""

from __future__ import annotations

import pytest

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO, make_spec
from tune_app.experiment import load_experiment

# Every test here runs (or shares a module fixture that runs) a real Ray search.
pytestmark = pytest.mark.ray


def run_search(spec: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tune_app.search", "--space", str(spec), "--num-cpus", "2"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def result_rows(trial_dir: Path) -> list[dict]:
    f = trial_dir / "result.json"
    if not f.is_file():
        return []
    rows = []
    for line in f.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def test_killed_trial_worker_is_restarted_from_its_checkpoint(tmp_path):
    # Two trials, no early stopping, a model slow enough (~0.2 s/epoch) to kill mid-run.
    spec = make_spec(tmp_path, {"model": {"stage_channels": [32, 64, 128], "stem_channels": 32, "groups": 2},
                            "train": {"epochs": 20, "lr": {"grid": [1.0e-3, 2.0e-3]}},
                            "scheduler": {"name": "none"}})
    proc = run_search(spec)
    trial = tmp_path / "results" / "quick" / "trial_00000"
    killed = None
    deadline = time.time() + 240
    while time.time() < deadline and killed is None:
        rows = result_rows(trial)
        if rows and rows[-1]["epoch"] >= 3:
            killed = rows[-1]["pid"]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    out, _ = proc.communicate(timeout=300)
    assert killed is not None, out
    assert proc.returncode == 0, out
    rows = result_rows(trial)
    epochs = [r["epoch"] for r in rows]
    assert epochs == list(range(1, 21)), epochs  # no gap, no epoch reported twice
    assert len({r["pid"] for r in rows}) == 2  # really continued in a new worker process
    exp = load_experiment(tmp_path / "results" / "quick")
    assert [t.status(exp.max_epochs) for t in exp.trials] == ["completed", "completed"]


def test_a_diverging_trial_is_marked_and_the_search_goes_on(tmp_path):
    spec = make_spec(tmp_path, {"model": {"groups": 2},
                            "train": {"optimizer": "sgd", "momentum": 0.0, "lr": {"grid": [3.0e-2, 1.0e20]}},
                            "scheduler": {"name": "none"}})
    proc = run_search(spec)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    exp = load_experiment(tmp_path / "results" / "quick")
    by_lr = {t.hparams["train.lr"]: t for t in exp.trials}
    assert by_lr[1e20].status(exp.max_epochs) == "diverged"
    assert by_lr[3e-2].status(exp.max_epochs) == "completed"
    assert exp.best_trial() is by_lr[3e-2]
    assert "diverged" in out

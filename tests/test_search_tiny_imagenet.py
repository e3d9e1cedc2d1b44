"""A small search on the Tiny ImageNet sample, end to end on CPU, then retrain-best on `valid`.

Images are resized to 16 px so that an epoch over the 16,000 training images takes seconds;
everything else is the real preset: the hub loader on the local copy, the decode-once cache,
validation held out of train and the official `valid` split as the untouched test split.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, SHARED_DATA, make_spec, needs_shared_data
from tune_app.experiment import load_experiment

pytestmark = [needs_shared_data, pytest.mark.ray]


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_tiny_imagenet_sample_search_then_retrain_evaluates_on_valid(tmp_path):
    spec = make_spec(tmp_path, {
        "dataset": {"name": "tiny-imagenet", "path": str(SHARED_DATA / "tiny-imagenet-sample"), "image_size": 16},
        "model": {"groups": 2},
        "augment": {"hflip": 0.5, "crop_padding": 2},
        "train": {"epochs": 2, "batch_size": 256, "lr": {"grid": [3.0e-3, 1.0e-2]}},
        "scheduler": {"name": "none"},
        "retrain": {"epochs": 2},
    })
    out = run("tune_app.search", "--space", str(spec), "--num-cpus", "2")
    assert "train 16000 / val 4000 / test 5000 images of (3, 16, 16), 200 classes" in out
    path = tmp_path / "results" / "quick"
    exp = load_experiment(path)
    assert len(exp.trials) == 2 and all(t.epochs_run == 2 for t in exp.trials)
    assert all(0 <= t.best("val_accuracy", "max") <= 1 for t in exp.trials)

    run("tune_app.retrain_best", "--experiment", str(path))
    metrics = json.loads((path / "best" / "metrics.json").read_text())
    confusion = np.array(metrics["test"]["confusion_matrix"])
    # The official valid split, whole and once: 25 images of each of the 200 classes (a hold-out
    # of the 100-per-class train split would not give that).
    assert confusion.shape == (200, 200) and (confusion.sum(axis=1) == 25).all()
    assert metrics["test"]["accuracy"] > 2 * metrics["baselines"]["uniform_random_accuracy"]

"""A results disk that is full, fills up during a search, or cannot be written: one line, the
folder named, the experiment left "interrupted" and resumable, nothing 0-byte or half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, make_spec
from tests.test_faults import result_rows
from tune_app.experiment import load_experiment
from tune_app.fileio import DISK_RESERVE

pytestmark = pytest.mark.ray  # real Ray searches (implies slow)

# 4 trials x 6 epochs, two at a time, no early stopping; checkpoints of ~2.4 MB.
SLOW = {"model": {"stage_channels": [32, 64, 128], "stem_channels": 32, "groups": {"grid": [2, 4]}},
        "train": {"epochs": 6, "lr": {"grid": [1.0e-3, 3.0e-3]}},
        "scheduler": {"name": "none"}}


def search(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tune_app.search", *args, "--num-cpus", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=400, **kwargs)


def zero_byte_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.stat().st_size == 0
            and p.name not in (".validate_storage_marker",)]


def test_a_too_small_disk_is_refused_before_anything_starts(tmp_path, small_fs):
    fs = small_fs("300k")
    spec = make_spec(tmp_path, {"output": {"results_dir": str(fs / "results")}})
    spec.write_text(spec.read_text().replace(str(tmp_path / "results"), str(fs / "results")))
    began = time.monotonic()
    proc = search("--space", str(spec))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {fs / 'results'}") and "MB free" in lines[0], lines
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (fs / "results" / "quick").exists()  # no experiment folder was claimed
    assert time.monotonic() - began < 30  # found before Ray or the data start


def test_a_read_only_results_disk_is_one_line(tmp_path, small_fs):
    fs = small_fs("1m", read_only=True)
    spec = make_spec(tmp_path)
    spec.write_text(spec.read_text().replace(str(tmp_path / "results"), str(fs)))
    proc = search("--space", str(spec))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(fs) in lines[0] and "cannot write here" in lines[0], lines


def test_a_disk_filling_mid_search_stops_it_cleanly_and_resume_finishes_it(tmp_path, small_fs):
    fs = small_fs("40m")
    spec = make_spec(tmp_path, SLOW)
    spec.write_text(spec.read_text().replace(str(tmp_path / "results"), str(fs / "results")))
    exp_dir = fs / "results" / "quick"
    proc = subprocess.Popen([sys.executable, "-m", "tune_app.search", "--space", str(spec), "--num-cpus", "2"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list(exp_dir.glob("trial_*/checkpoint_000001")):
        time.sleep(0.2)
    # Another program takes the disk down to below the reserve (but above a checkpoint's size).
    free = os.statvfs(fs).f_bavail * os.statvfs(fs).f_frsize
    filler = fs / "filler"
    subprocess.run(["fallocate", "-l", str(free - DISK_RESERVE * 3 // 4), str(filler)], check=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: {exp_dir}: no space left on the device"), err
    assert f"--resume {exp_dir}" in last
    assert "Traceback" not in out + err
    assert json.loads((exp_dir / "experiment.json").read_text())["status"] == "interrupted"
    assert zero_byte_files(exp_dir) == []

    filler.unlink()  # the user frees space and resumes
    resumed = search("--resume", str(exp_dir))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    exp = load_experiment(exp_dir)
    assert [t.status(exp.max_epochs) for t in exp.trials] == ["completed"] * 4
    for trial in exp.trials:  # every epoch once in the file itself, not only after de-duplication
        assert [r["epoch"] for r in result_rows(trial.path)] == list(range(1, 7)), trial.name

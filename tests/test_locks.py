"""An experiment is locked by a running search only while that very process lives: a pid the OS
has handed to another process does not lock it. search --resume and retrain_best share the check."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_bad_input import fake_experiment
from tune_app import retrain_best, search
from tune_app.errors import UsageError
from tune_app.lock import _psutil


@pytest.fixture
def other_process():
    """A live process that is not a search: what a reused pid points at."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def locked_by(tmp: Path, pid: int, **fields) -> Path:
    path = fake_experiment(tmp, "quick", status="running", pid=pid)
    meta_file = path / "experiment.json"
    meta = {**json.loads(meta_file.read_text()), **fields}
    meta_file.write_text(json.dumps(meta))
    return path


def started(pid: int) -> float:
    return _psutil().Process(pid).create_time()


def in_use(path: Path) -> bool:
    """Whether search --resume refuses this experiment as held by a running search."""
    try:
        search.spec_from_experiment(path)
    except UsageError as err:
        assert "in use by a running search" in err.message, err
        return True
    return False


def test_the_search_records_its_pid_and_start_time(tmp_path):
    from tune_app.spec import load_spec

    path = fake_experiment(tmp_path, "quick")
    search.write_meta(path, load_spec(path / "spec.yaml"), "running")
    meta = json.loads((path / "experiment.json").read_text())
    assert meta["pid"] == os.getpid() and meta["host"] == socket.gethostname()
    assert meta["pid_started"] == pytest.approx(started(os.getpid()), abs=0.05)
    assert not in_use(path)  # a resume in the same process is not blocked by itself


def test_a_reused_pid_does_not_lock_the_experiment_but_the_search_itself_does(tmp_path, other_process):
    # The search that wrote the file started an hour before the process now using its pid.
    assert not in_use(locked_by(tmp_path / "reused", other_process.pid,
                                pid_started=started(other_process.pid) - 3600))
    assert in_use(locked_by(tmp_path / "held", other_process.pid, pid_started=started(other_process.pid)))
    # Finished, dead or on another host: no lock either.
    assert not in_use(fake_experiment(tmp_path / "done", "quick", status="finished", pid=other_process.pid))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not in_use(locked_by(tmp_path / "dead", dead.pid, pid_started=0.0))
    assert not in_use(locked_by(tmp_path / "elsewhere", other_process.pid,
                                pid_started=started(other_process.pid), host="elsewhere"))


def test_an_old_lock_without_start_time_is_stale_once_the_pid_is_younger_than_the_file(tmp_path, other_process):
    path = locked_by(tmp_path, other_process.pid)
    hour_ago = time.time() - 3600
    os.utime(path / "experiment.json", (hour_ago, hour_ago))
    assert not in_use(path)
    os.utime(path / "experiment.json")  # written after the process started: it may be the writer
    assert in_use(path)


def test_retrain_of_a_running_search_proceeds_with_force_and_says_what_it_picks(tmp_path, other_process,
                                                                              capsys, monkeypatch):
    path = locked_by(tmp_path, other_process.pid, pid_started=started(other_process.pid))
    (path / "trial_00000" / "result.json").write_text('{"epoch": 1, "val_accuracy": 0.5}\n')
    picked = []

    def retrain(experiment_dir, *args):
        picked.append(experiment_dir)
        raise UsageError("stopped here by the test")

    monkeypatch.setattr(retrain_best, "retrain", retrain)
    assert retrain_best.main(["--experiment", str(path)]) == 2
    assert "still running" in capsys.readouterr().err and not picked
    assert retrain_best.main(["--experiment", str(path), "--force"]) == 2
    out = capsys.readouterr().out
    assert f"pid {other_process.pid}" in out and "trial_00000 (1 of 1 epochs run so far)" in out
    assert picked == [path]
    # A lock whose pid now belongs to another process stops nothing.
    meta = json.loads((path / "experiment.json").read_text())
    (path / "experiment.json").write_text(json.dumps({**meta, "pid_started": meta["pid_started"] - 3600}))
    assert retrain_best.main(["--experiment", str(path)]) == 2 and picked == [path, path]


def test_retrain_help_describes_the_command_in_whole_sentences():
    description = retrain_best.build_parser().description
    assert description.endswith("untouched test split.") and "from scratch and evaluate" in description

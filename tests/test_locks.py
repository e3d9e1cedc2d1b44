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
from tune_app.lock import _psutil, holder, owner_fields


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


def meta_of(path: Path) -> tuple[dict, Path]:
    return json.loads((path / "experiment.json").read_text()), path / "experiment.json"


def test_the_search_records_its_pid_and_start_time():
    fields = owner_fields()
    assert fields["pid"] == os.getpid() and fields["host"] == socket.gethostname()
    assert fields["pid_started"] == pytest.approx(started(os.getpid()), abs=0.05)


def test_a_live_process_with_the_recorded_start_time_holds_the_lock(tmp_path, other_process):
    path = locked_by(tmp_path, other_process.pid, pid_started=started(other_process.pid))
    assert holder(*meta_of(path)).pid == other_process.pid


def test_a_reused_pid_does_not_hold_the_lock(tmp_path, other_process):
    # The search that wrote the file started an hour before the process now using its pid.
    path = locked_by(tmp_path, other_process.pid, pid_started=started(other_process.pid) - 3600)
    assert holder(*meta_of(path)) is None


def test_an_old_lock_without_start_time_is_stale_once_the_pid_is_younger_than_the_file(tmp_path, other_process):
    path = locked_by(tmp_path, other_process.pid)
    hour_ago = time.time() - 3600
    os.utime(path / "experiment.json", (hour_ago, hour_ago))
    assert holder(*meta_of(path)) is None
    os.utime(path / "experiment.json")  # written after the process started: it may be the writer
    assert holder(*meta_of(path)).pid == other_process.pid


def test_no_lock_when_finished_dead_or_on_another_host(tmp_path, other_process):
    finished = fake_experiment(tmp_path / "a", "quick", status="finished", pid=other_process.pid)
    assert holder(*meta_of(finished)) is None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert holder(*meta_of(locked_by(tmp_path / "b", dead.pid, pid_started=0.0))) is None
    elsewhere = locked_by(tmp_path / "c", other_process.pid, pid_started=started(other_process.pid), host="elsewhere")
    assert holder(*meta_of(elsewhere)) is None


def test_resume_is_not_blocked_by_a_reused_pid(tmp_path, other_process):
    path = locked_by(tmp_path, other_process.pid, pid_started=started(other_process.pid) - 3600)
    assert search.spec_from_experiment(path).output.name == "quick"
    locked = locked_by(tmp_path / "held", other_process.pid, pid_started=started(other_process.pid))
    with pytest.raises(UsageError, match=f"in use by a running search \\(pid {other_process.pid}\\)"):
        search.spec_from_experiment(locked)


def test_retrain_of_a_running_search_proceeds_with_force_and_says_what_it_picks(tmp_path, other_process,
                                                                              capsys, monkeypatch):
    path = locked_by(tmp_path, other_process.pid, pid_started=started(other_process.pid))
    (path / "trial_00000" / "result.json").write_text('{"epoch": 1, "val_accuracy": 0.5}\n')
    picked = []

    def retrain(experiment_dir, epochs, train_on):
        picked.append(experiment_dir)
        raise UsageError("stopped here by the test")

    monkeypatch.setattr(retrain_best, "retrain", retrain)
    assert retrain_best.main(["--experiment", str(path)]) == 2
    assert "still running" in capsys.readouterr().err and not picked
    assert retrain_best.main(["--experiment", str(path), "--force"]) == 2
    out = capsys.readouterr().out
    assert f"pid {other_process.pid}" in out and "trial_00000 (1 of 1 epochs run so far)" in out
    assert picked == [path]


def test_a_stale_lock_does_not_stop_retrain(tmp_path, other_process, monkeypatch):
    path = locked_by(tmp_path, other_process.pid, pid_started=started(other_process.pid) - 3600)
    monkeypatch.setattr(retrain_best, "retrain", lambda *a: pytest.fail("reached retrain"))
    with pytest.raises(pytest.fail.Exception, match="reached retrain"):
        retrain_best.main(["--experiment", str(path)])


def test_retrain_help_describes_the_command_in_whole_sentences():
    description = retrain_best.build_parser().description
    assert description.endswith("untouched test split.") and "from scratch and evaluate" in description

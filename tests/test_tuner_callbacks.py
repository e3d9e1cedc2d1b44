"""ASHA's state crosses a resume as plain data: restoring it unpickles nothing. A restarted
trial keeps its result rows."""

from __future__ import annotations

import json

import pytest
from ray.tune.schedulers import ASHAScheduler

from tune_app.tuner.callbacks import ResultFileCallback, SchedulerStateCallback


def asha(max_t: int = 8) -> ASHAScheduler:
    s = ASHAScheduler(time_attr="training_iteration", max_t=max_t, grace_period=1, reduction_factor=2)
    s.set_search_properties("val_accuracy", "max")
    return s


def test_the_state_is_json_and_restores_rungs_trials_and_counters():
    running = asha()
    running._brackets[0]._rungs[-1][1].update({"t1": 0.9, "t2": 0.4})  # the rung at 1 epoch
    running._trial_info = {"t1": running._brackets[0], "t2": running._brackets[0]}
    running._counter, running._num_stopped = 2, 1
    state = json.loads(json.dumps(SchedulerStateCallback(running).get_state()))

    restored = SchedulerStateCallback(asha())
    restored.set_state(state)
    s = restored.scheduler
    assert s._brackets[0]._rungs == running._brackets[0]._rungs
    assert s._trial_info == {"t1": s._brackets[0], "t2": s._brackets[0]}
    assert (s._counter, s._num_stopped) == (2, 1)


def test_state_of_other_rungs_is_refused_rather_than_misapplied():
    state = json.loads(json.dumps(SchedulerStateCallback(asha(8)).get_state()))
    with pytest.raises(ValueError, match="rungs do not match"):
        SchedulerStateCallback(asha(16)).set_state(state)



class FakeTrial:
    """What ResultFileCallback reads of a Ray trial: the driver's staging folder and the storage."""

    def __init__(self, staging, uploaded, config):
        import pyarrow.fs

        from types import SimpleNamespace

        self.trial_id, self.config, self.local_path, self.checkpoint = "t1", config, str(staging), object()
        self.storage = SimpleNamespace(trial_fs_path=str(uploaded), storage_filesystem=pyarrow.fs.LocalFileSystem())

    def init_local_path(self):
        import os

        os.makedirs(self.local_path, exist_ok=True)


def rows(path):
    return [json.loads(line)["epoch"] for line in (path / "result.json").read_text().splitlines()]


def test_a_trial_restarted_within_the_run_keeps_rows_the_upload_has_not_caught_up_with(tmp_path):
    # PBT pauses and clones trials, a crashed trial is retried: each restart calls log_trial_start
    # again, while Ray's upload of the staging folder may still hold only the first epoch.
    staging, uploaded = tmp_path / "staging", tmp_path / "uploaded"
    for folder, epochs in ((staging, [1, 2, 3, 4]), (uploaded, [1])):
        folder.mkdir()
        (folder / "result.json").write_text("".join(json.dumps({"epoch": e}) + "\n" for e in epochs))
    callback = ResultFileCallback()
    callback.log_trial_start(FakeTrial(staging, uploaded, {"hp": {"train.lr": 2e-3}}))
    assert rows(staging) == [1, 2, 3, 4]
    # params.json follows the trial's current config (PBT's exploit changes it)
    assert json.loads((staging / "params.json").read_text()) == {"hp": {"train.lr": 2e-3}}
    callback.log_trial_result(5, FakeTrial(staging, uploaded, {}), {"epoch": 3, "cloned_from": "trial_00002"})
    assert rows(staging) == [1, 2, 3]  # a re-reported epoch replaces the rows from it on


def test_after_a_resume_the_uploaded_rows_are_fetched(tmp_path):
    staging, uploaded = tmp_path / "new-session", tmp_path / "uploaded"
    uploaded.mkdir()
    (uploaded / "result.json").write_text(json.dumps({"epoch": 1}) + "\n")
    ResultFileCallback().log_trial_start(FakeTrial(staging, uploaded, {"hp": {}}))
    assert rows(staging) == [1]


def test_progress_csv_keeps_one_header_across_appends_and_a_resume(tmp_path):
    # The header is read once per trial and then cached: a cache that outlived a rewrite, or
    # a new driver that did not read it back, would misalign the columns.
    import csv

    staging, uploaded = tmp_path / "staging", tmp_path / "uploaded"
    uploaded.mkdir()
    trial = FakeTrial(staging, uploaded, {"hp": {"train.lr": 0.1}})

    def report(callback, epoch, loss):
        callback.log_trial_result(epoch, trial, {"epoch": epoch, "val_loss": loss, "config": {"hp": {"lr": 0.1}}})

    callback = ResultFileCallback()
    callback.log_trial_start(trial)
    for epoch in (1, 2, 3):
        report(callback, epoch, float(epoch))
    callback = ResultFileCallback()  # a resume re-runs epoch 3 from epoch 2's checkpoint, in a new driver
    callback.log_trial_restore(trial)
    report(callback, 3, 30.0)
    report(callback, 4, 40.0)
    assert rows(staging) == [1, 2, 3, 4]
    with open(staging / "progress.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["epoch", "val_loss", "config/hp/lr"]
    assert [r[:2] for r in table[1:]] == [["1", "1.0"], ["2", "2.0"], ["3", "30.0"], ["4", "40.0"]]

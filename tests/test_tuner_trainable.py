from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import pytest
import torch

from tune_app.config import TrialConfig
from tune_app.tuner.trainable import TrialOutOfMemory, explain_out_of_memory, quiet_exit_hook, trial_dirname


def test_out_of_memory_names_the_trial_and_the_fix():
    cfg = TrialConfig()
    with pytest.raises(TrialOutOfMemory) as info:
        with explain_out_of_memory("trial_00003", cfg):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    msg = str(info.value)
    assert msg.startswith("trial_00003 ran out of GPU memory (batch_size 128")
    assert "lower train.batch_size" in msg and "resources.gpus_per_trial" in msg


def test_other_errors_pass_through_unchanged():
    with pytest.raises(ValueError, match="boom"):
        with explain_out_of_memory("trial_00000", TrialConfig()):
            raise ValueError("boom")


def test_trial_folder_names_are_short_and_stable():
    class Trial:
        trial_id = "a1b2c_00017"

    assert trial_dirname(Trial()) == "trial_00017"


class RaisesInFinalizer:
    def __init__(self, error: BaseException):
        self.error = error

    def __del__(self):
        raise self.error


@pytest.mark.parametrize("error, printed", [(SystemExit(1), False), (ValueError("real bug"), True)])
def test_worker_unraisable_hook_drops_only_system_exit(monkeypatch, capsys, error, printed):
    # What Ray's SIGTERM handler does when it fires inside a finalizer at worker shutdown.
    monkeypatch.setattr(sys, "unraisablehook", quiet_exit_hook)
    RaisesInFinalizer(error)
    gc.collect()
    err = capsys.readouterr().err
    assert ("Exception ignored" in err and "real bug" in err) is printed
    assert ("SystemExit" in err) is False


class FakeTrial:
    """What the driver-side callbacks read of a Tune trial."""

    def __init__(self, storage_fs, experiment: Path, staging: Path, name: str = "trial_00000"):
        from types import SimpleNamespace

        self.trial_id, self.config, self.checkpoint = "abc_00000", {"hp": {"train.lr": 0.1}}, None
        self.path = str(experiment / name)  # the trial's folder on the storage filesystem
        self._staging = staging / name
        self.local_path = None
        self.storage = SimpleNamespace(storage_filesystem=storage_fs)

    def init_local_path(self):
        self._staging.mkdir(parents=True, exist_ok=True)
        self.local_path = str(self._staging)


def signing_fs(base, root):
    from tune_app.integrity import signing_filesystem

    return signing_filesystem(base, str(root))


def test_on_a_local_disk_a_trials_files_are_written_in_its_folder_not_staged(tmp_path):
    import pyarrow.fs

    from tune_app.tuner.callbacks import trial_folder

    trial = FakeTrial(signing_fs(pyarrow.fs.LocalFileSystem(), tmp_path), tmp_path / "exp", tmp_path / "staging")
    assert trial_folder(trial) == tmp_path / "exp" / "trial_00000"
    assert (tmp_path / "exp" / "trial_00000").is_dir() and not (tmp_path / "staging").exists()


def test_for_an_object_store_a_trials_files_go_to_tunes_staging_folder(tmp_path):
    import pyarrow.fs

    from tune_app.integrity import on_local_disk
    from tune_app.tuner.callbacks import trial_folder

    # A filesystem of another type stands in for s3/gcs: its paths are not local paths.
    remote = pyarrow.fs.SubTreeFileSystem(str(tmp_path / "bucket"), pyarrow.fs.LocalFileSystem())
    assert not on_local_disk(remote) and not on_local_disk(signing_fs(remote, "exp"))
    trial = FakeTrial(signing_fs(remote, "exp"), Path("exp"), tmp_path / "staging")
    assert trial_folder(trial) == tmp_path / "staging" / "trial_00000"


def test_result_rows_are_appended_and_a_re_reported_epoch_replaces_the_rows_from_it_on(tmp_path):
    import csv

    import pyarrow.fs

    from tune_app.experiment import read_history
    from tune_app.tuner.callbacks import ResultFileCallback

    trial = FakeTrial(signing_fs(pyarrow.fs.LocalFileSystem(), tmp_path), tmp_path / "exp", tmp_path / "staging")
    folder = tmp_path / "exp" / "trial_00000"

    def report(callback, epoch, loss):
        callback.log_trial_result(epoch, trial, {"epoch": epoch, "val_loss": loss, "config": {"hp": {"lr": 0.1}}})

    callback = ResultFileCallback()
    callback.log_trial_start(trial)
    for epoch in (1, 2, 3):
        report(callback, epoch, float(epoch))
    # A resume re-runs epoch 3 from the checkpoint of epoch 2, in a new driver.
    callback = ResultFileCallback()
    callback.log_trial_restore(trial)
    report(callback, 3, 30.0)
    report(callback, 4, 40.0)
    assert [(r["epoch"], r["val_loss"]) for r in read_history(folder / "result.json")] == \
        [(1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]
    with open(folder / "progress.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "val_loss", "config/hp/lr"]
    assert [r[:2] for r in rows[1:]] == [["1", "1.0"], ["2", "2.0"], ["3", "30.0"], ["4", "40.0"]]
    assert json.loads((folder / "params.json").read_text()) == trial.config


def test_a_staged_checkpoint_loads_like_a_kept_one(tmp_path):
    from tune_app.checkpoint import load_checkpoint, save_checkpoint

    state = {"model": {"w": torch.ones(3)}, "config": {}, "epoch": 2}
    for staging in (True, False):
        path = save_checkpoint(tmp_path / str(staging), state, staging=staging)
        assert torch.equal(load_checkpoint(path.parent)["model"]["w"], torch.ones(3))
        assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temporary left

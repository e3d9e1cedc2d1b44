from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest
import torch

from tune_app.config import TrialConfig
from tune_app.tuner.trainable import (TrialOutOfMemory, cloned_from, explain_out_of_memory, quiet_exit_hook,
                                      trial_dirname)


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


def test_only_a_checkpoint_of_another_trial_marks_a_clone():
    assert cloned_from(None, "trial_00001") == {}  # a fresh start
    assert cloned_from({"epoch": 4, "trial": "trial_00001"}, "trial_00001") == {}  # its own (a plain resume)
    assert cloned_from({"epoch": 4}, "trial_00001") == {}  # written before checkpoints named their trial
    assert cloned_from({"epoch": 4, "trial": "trial_00003"}, "trial_00001") == {
        "cloned_from": "trial_00003", "cloned_from_epoch": 4}


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


def test_a_staged_checkpoint_loads_like_a_kept_one(tmp_path):
    import torch

    from tune_app.checkpoint import load_checkpoint, save_checkpoint

    state = {"model": {"w": torch.ones(3)}, "config": {}, "epoch": 2}
    for staging in (True, False):
        path = save_checkpoint(tmp_path / str(staging), state, staging=staging)
        assert torch.equal(load_checkpoint(path.parent)["model"]["w"], torch.ones(3))
        assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temporary file left


def test_a_checkpoint_is_staged_in_ram_when_there_is_room_else_in_the_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    import torch

    from tune_app.checkpoint import load_checkpoint
    from tune_app.tuner import trainable

    shm, disk = tmp_path / "shm", tmp_path / "disk"
    shm.mkdir(), disk.mkdir()
    monkeypatch.setattr(trainable, "SHM", str(shm))
    monkeypatch.setattr(tempfile, "tempdir", str(disk))
    state = {"model": {"w": torch.ones(3)}, "config": {}, "epoch": 1}

    def staged_in(expected):
        with trainable.staged_checkpoint(state, expected) as (directory, size):
            assert size > 0 and torch.equal(load_checkpoint(directory)["model"]["w"], torch.ones(3))
            return Path(directory).parent

    monkeypatch.setattr(trainable, "free_bytes", lambda folder: 10 * 2**30)
    assert staged_in(2**20) == shm
    # No room for two checkpoints of the last size beside the margin (Docker's 64 MB /dev/shm)
    monkeypatch.setattr(trainable, "free_bytes", lambda folder: trainable.SHM_MARGIN + 2**20)
    assert staged_in(2**20) == disk
    monkeypatch.setattr(trainable, "SHM", str(tmp_path / "none"))
    assert staged_in(0) == disk
    assert not any(shm.iterdir()) and not any(disk.iterdir())  # nothing left behind


def test_ram_that_fills_up_mid_write_falls_back_to_the_temporary_folder(tmp_path, monkeypatch):
    import errno
    import tempfile

    from tune_app.checkpoint import save_checkpoint
    from tune_app.tuner import trainable

    shm, disk = tmp_path / "shm", tmp_path / "disk"
    shm.mkdir(), disk.mkdir()
    monkeypatch.setattr(trainable, "SHM", str(shm))
    monkeypatch.setattr(tempfile, "tempdir", str(disk))
    monkeypatch.setattr(trainable, "free_bytes", lambda folder: 10 * 2**30)

    def save(directory, state, staging):
        if Path(directory).parent == shm:
            from tune_app.fileio import write_error

            raise write_error(OSError(errno.ENOSPC, "No space left on device"), Path(directory) / "checkpoint.pt")
        return save_checkpoint(directory, state, staging=staging)

    monkeypatch.setattr(trainable, "save_checkpoint", save)
    with trainable.staged_checkpoint({"model": {}, "config": {}, "epoch": 1}, 0) as (directory, _):
        assert Path(directory).parent == disk

"""retrain_best's pieces that need no search: progress output and the thread limit."""

from __future__ import annotations

import io

import torch

from tune_app.config import TrainConfig
from tune_app.retrain_best import EpochProgress
from tune_app.training import limit_threads


def metrics(epoch: int) -> dict:
    return {"epoch": epoch, "train_loss": 0.5 / epoch, "train_accuracy": 0.9, "val_accuracy": 0.8,
            "epoch_time_s": 1.25}


def test_progress_is_one_plain_line_per_epoch_when_not_a_terminal():
    stream = io.StringIO()  # a log file or a pipe: isatty() is False
    progress = EpochProgress(3, "retrain trial_00002", stream)
    for epoch in (1, 2, 3):
        progress.update(metrics(epoch))
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 3
    assert lines[1] == "retrain trial_00002: epoch 2/3  loss 0.2500  acc 0.9000  val_acc 0.8000  (1.2 s)"


def test_progress_is_a_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = EpochProgress(2, "retrain", stream)
    progress.update(metrics(1))
    progress.close()
    assert "\r" in stream.getvalue() and "1/2" in stream.getvalue()


def test_threads_follow_train_threads_else_the_cpu_share():
    before = torch.get_num_threads()
    try:
        assert limit_threads(TrainConfig(threads=0), 1.0) == 1 and torch.get_num_threads() == 1
        assert limit_threads(TrainConfig(threads=0), 2.5) == 2 and torch.get_num_threads() == 2
        assert limit_threads(TrainConfig(threads=3), 1.0) == 3 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


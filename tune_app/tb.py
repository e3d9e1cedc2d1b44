"""TensorBoard logging that fills the HParams tab.

The usual empty-metric-columns problem comes from writing hparams once, at the end, into a
separate timestamped sub-run, with metrics the plugin cannot match to the session. Here each
trial's folder is one HParams session: its session-start record (hyperparameters) is written
when the trial starts, and its metric columns are plain scalars in the same run, updated
every epoch, so running, early-stopped and finished trials all show numbers. No experiment
summary is written: the plugin then derives it from all sessions, so several experiments
under one `--logdir results` do not fight over it.
"""

from __future__ import annotations

import math
from typing import Any

from tensorboardX import SummaryWriter
from tensorboardX.summary import hparams as hparams_summary

# result key -> scalar tag shown in TensorBoard
SCALARS = {
    "train_loss": "train/loss",
    "train_accuracy": "train/accuracy",
    "val_loss": "val/loss",
    "val_accuracy": "val/accuracy",
    "val_top5_accuracy": "val/top5_accuracy",
    # Not plain "lr": every scalar of a session is also an HParams metric column, and one
    # named "lr" would sit next to the searched hyperparameter "lr" with the same header.
    "lr": "train/lr",
}
FLUSH_SECS = 2
HPARAM_METRICS = ("hparams/best_val_accuracy", "hparams/last_val_accuracy", "hparams/val_loss",
                  "hparams/epochs_run")


def _tb_value(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str)) else str(value)


class TrialWriter:
    """Scalars and HParams record of one training run, in its own folder."""

    def __init__(self, logdir: str, hparams: dict[str, Any], best: float = -math.inf):
        """best: the best val accuracy of epochs logged before (a resumed trial)."""
        # tensorboardX writes events from a background thread and flushes the file only every
        # flush_secs (default 120 s): `flush()` can run before an epoch's events are written, and
        # a running trial's latest epoch would reach TensorBoard up to two minutes late.
        self.writer = SummaryWriter(logdir=logdir, flush_secs=FLUSH_SECS)
        self.best = best
        _, session_start, _ = hparams_summary({k: _tb_value(v) for k, v in hparams.items()},
                                              {name: 0.0 for name in HPARAM_METRICS})
        self.writer.file_writer.add_summary(session_start)
        self.writer.flush()

    def epoch(self, metrics: dict[str, Any]) -> None:
        step = int(metrics["epoch"])
        for key, tag in SCALARS.items():
            value = metrics.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(tag, value, step)
        val_acc = metrics.get("val_accuracy", float("nan"))
        if val_acc == val_acc:
            self.best = max(self.best, val_acc)
            self.writer.add_scalar("hparams/best_val_accuracy", self.best, step)
            self.writer.add_scalar("hparams/last_val_accuracy", val_acc, step)
        if isinstance(metrics.get("val_loss"), float) and math.isfinite(metrics["val_loss"]):
            self.writer.add_scalar("hparams/val_loss", metrics["val_loss"], step)
        self.writer.add_scalar("hparams/epochs_run", step, step)
        self.writer.flush()

    def close(self) -> None:
        _, _, session_end = hparams_summary({}, {})
        self.writer.file_writer.add_summary(session_end)
        self.writer.close()

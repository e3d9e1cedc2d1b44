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
from typing import Any, Optional

from tensorboardX import SummaryWriter
from tensorboardX.proto.summary_pb2 import Summary
from tensorboardX.summary import hparams as hparams_summary
from tensorboardX.summary import scalar

# result key -> scalar tag shown in TensorBoard
SCALARS = {
    "train_loss": "train/loss",
    "train_accuracy": "train/accuracy",
    "val_loss": "val/loss",
    "val_accuracy": "val/accuracy",
    "val_top5_accuracy": "val/top5_accuracy",
    "val_macro_f1": "val/macro_f1",
    # Not plain "lr": every scalar of a session is also an HParams metric column, and one
    # named "lr" would sit next to the searched hyperparameter "lr" with the same header.
    "lr": "train/lr",
}
FLUSH_SECS = 2


def hparam_metrics(metric: str = "val_accuracy") -> tuple[str, ...]:
    """The HParams table's metric columns: best and last of the search metric, then the loss."""
    extra = () if metric == "val_loss" else ("hparams/val_loss",)
    return (f"hparams/best_{metric}", f"hparams/last_{metric}", *extra, "hparams/epochs_run")


HPARAM_METRICS = hparam_metrics()


def _tb_value(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str)) else str(value)


class TrialWriter:
    """Scalars and HParams record of one training run, in its own folder."""

    def __init__(self, logdir: str, hparams: dict[str, Any], best: Optional[float] = None,
                 metric: str = "val_accuracy", mode: str = "max"):
        """best: the best `metric` of epochs logged before (a resumed trial); mode: max or min."""
        # tensorboardX writes events from a background thread and flushes the file only every
        # flush_secs (default 120 s): `flush()` can run before an epoch's events are written, and
        # a running trial's latest epoch would reach TensorBoard up to two minutes late.
        self.writer = SummaryWriter(logdir=logdir, flush_secs=FLUSH_SECS)
        self.best, self.metric, self.mode = best, metric, mode
        _, session_start, _ = hparams_summary({k: _tb_value(v) for k, v in hparams.items()},
                                              {name: 0.0 for name in hparam_metrics(metric)})
        self.writer.file_writer.add_summary(session_start)
        self.writer.flush()

    def epoch(self, metrics: dict[str, Any]) -> None:
        step = int(metrics["epoch"])
        values: dict[str, float] = {}
        for key, tag in SCALARS.items():
            value = metrics.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                values[tag] = value
        value = metrics.get(self.metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            better = max if self.mode == "max" else min
            self.best = value if self.best is None else better(self.best, value)
            values[f"hparams/best_{self.metric}"] = self.best
            values[f"hparams/last_{self.metric}"] = value
        if self.metric != "val_loss" and isinstance(metrics.get("val_loss"), float) \
                and math.isfinite(metrics["val_loss"]):
            values["hparams/val_loss"] = metrics["val_loss"]
        values["hparams/epochs_run"] = step
        # One event holding all the epoch's scalars, not one per scalar: this runs in the
        # driver, and each event wakes the writer thread, which then competes for the GIL.
        summary = Summary(value=[v for tag, number in values.items() for v in scalar(tag, number).value])
        self.writer.file_writer.add_summary(summary, step)
        # Writes what the writer thread has taken so far (the session start, earlier epochs):
        # without it a trial whose first epochs take under FLUSH_SECS is missing from the
        # HParams tab while it runs (tests/test_dashboard.py). Cheap: no disk sync.
        self.writer.flush()

    def close(self) -> None:
        _, _, session_end = hparams_summary({}, {})
        self.writer.file_writer.add_summary(session_end)
        self.writer.close()

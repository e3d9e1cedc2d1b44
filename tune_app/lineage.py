"""PBT's lineage, read back from a trial's result.json: which trial it was cloned from, when,
and the searched values it trained with before and after.

Each epoch's row carries the trial's searched values in force (`config`, as Ray reports it),
and the first epoch after PBT restarted the trial from another trial's checkpoint carries
`cloned_from` and `cloned_from_epoch` (tuner/trainable.py). Nothing else is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from tune_app.experiment import TrialRecord
from tune_app.hparams import field_name, unwrap


@dataclass
class Clone:
    trial: str  # the trial that was cloned into
    epoch: int  # its first epoch trained from the copied weights
    source: str  # the trial whose checkpoint it copied
    source_epoch: int  # the epoch that checkpoint was written after
    before: dict[str, Any]  # searched values the trial trained with until then
    after: dict[str, Any]  # values it trained with from `epoch` on

    def changes(self) -> str:
        """"lr 0.001 -> 0.0012, batch_size 64 -> 128": the values that differ."""
        return ", ".join(f"{field_name(k)} {_short(self.before.get(k))} -> {_short(v)}"
                         for k, v in self.after.items() if self.before.get(k) != v) or "none"


def values_at(row: dict[str, Any]) -> dict[str, Any]:
    """The searched values an epoch trained with (empty for a row without them)."""
    return dict(unwrap(row.get("config")) or {})


def clones(trial: TrialRecord) -> list[Clone]:
    """Every clone event of `trial`, in epoch order."""
    out, previous = [], None
    for row in trial.history:
        if row.get("cloned_from"):
            out.append(Clone(trial.name, int(row["epoch"]), str(row["cloned_from"]),
                             int(row.get("cloned_from_epoch", 0)),
                             values_at(previous) if previous else {}, values_at(row)))
        previous = row
    return out


def lineage(trials: list[TrialRecord]) -> list[Clone]:
    """The clone events of every trial, by epoch then trial."""
    return sorted((c for t in trials for c in clones(t)), key=lambda c: (c.epoch, c.trial))


def schedule_sentence(trial: TrialRecord, epoch: Optional[int] = None) -> str:
    """How PBT changed `trial`'s values up to `epoch` (all epochs if None), for a summary."""
    events = [c for c in clones(trial) if epoch is None or c.epoch <= epoch]
    return "; ".join(f"epoch {c.epoch}: {c.changes()} (cloned from {c.source})" for c in events)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

"""An experiment folder on disk: what the search wrote, read back without Ray.

results/<name>/
  experiment.json      spec as parsed (base TrialConfig, search space, search settings)
  spec.yaml            the YAML the user ran, verbatim
  trial_00000/         one folder per trial (Ray): result.json (one line per epoch),
                       params.json, checkpoint_*/checkpoint.pt, tb/ (TensorBoard)
  trials.json          the ranked table, written when the search ends
  best/                retrain-best output

A warm-started search (tune_app.warm) also ranks trials of earlier experiments: experiment.json
"warm_start" lists them, and they are read in place from their own folders, read-only.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tune_app.config import TrialConfig
from tune_app.errors import UsageError
from tune_app.fileio import read_json
from tune_app.hparams import HP_KEY, decode, shown, unwrap
from tune_app.spec import SEED_KEY


ENDED_FILE = "ended.json"  # written into a trial's folder when it really ends (see trainable)
RESULT_FILE = "result.json"  # one JSON object per line, one line per epoch


def best_row(history: list[dict[str, Any]], metric: str, mode: str) -> Optional[dict[str, Any]]:
    """The epoch with the best finite value of `metric`, or None if no epoch has one."""
    rows = [h for h in history if isinstance(h.get(metric), (int, float)) and math.isfinite(h[metric])]
    if not rows:
        return None
    return (max if mode == "max" else min)(rows, key=lambda h: h[metric])


def best_value(history: list[dict[str, Any]], metric: str, mode: str) -> Optional[float]:
    """Best finite value of `metric` over a trial's epochs, or None if it has none."""
    row = best_row(history, metric, mode)
    return None if row is None else row[metric]


def read_ended(trial_dir: Path) -> Optional[str]:
    """"TERMINATED" / "ERROR" once the trial really ended, None while it has not."""
    data = read_json(trial_dir / ENDED_FILE, what="the trial's end marker", missing_ok=True,
                     fix="resume the search (--resume) so the trial's end is recorded again")
    if data is None:
        return None
    if not isinstance(data, dict) or data.get("status") not in ("TERMINATED", "ERROR"):
        raise UsageError("the trial's end marker holds no valid status", file=str(trial_dir / ENDED_FILE),
                         fix="resume the search (--resume) so the trial's end is recorded again")
    return data["status"]

EXPERIMENT_FILE = "experiment.json"


@dataclass
class TrialRecord:
    name: str
    path: Path
    hparams: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    ended: Optional[str] = None  # "TERMINATED" / "ERROR" once the trial really ended, else None
    origin: Optional[str] = None  # warm start: the earlier experiment (folder name) it ran in; None = this one

    @property
    def epochs_run(self) -> int:
        return max((int(h["epoch"]) for h in self.history), default=0)

    @property
    def diverged(self) -> bool:
        return any(h.get("diverged") for h in self.history)

    def best(self, metric: str, mode: str) -> Optional[float]:
        return best_value(self.history, metric, mode)

    def last(self, metric: str) -> Optional[float]:
        return self.history[-1].get(metric) if self.history else None

    def checkpoints(self) -> list[Path]:
        return sorted(self.path.glob("checkpoint_*/checkpoint.pt"))

    def status(self, max_epochs: int) -> str:
        if self.ended == "ERROR":
            return "error"
        if self.diverged:
            return "diverged"
        if self.epochs_run >= max_epochs:
            return "completed"
        if self.ended == "TERMINATED":
            return "stopped early"
        return "interrupted" if self.epochs_run else "not started"


@dataclass
class Experiment:
    path: Path
    meta: dict[str, Any]
    trials: list[TrialRecord]

    @property
    def metric(self) -> str:
        return self.meta["search"]["metric"]

    @property
    def mode(self) -> str:
        return self.meta["search"]["mode"]

    @property
    def max_epochs(self) -> int:
        return int(self.meta["base"]["train"]["epochs"])

    def base_config(self) -> TrialConfig:
        return TrialConfig.from_dict(self.meta["base"])

    def trial_config(self, trial: TrialRecord) -> TrialConfig:
        return self.base_config().with_overrides(decode(trial.hparams))

    def ranked(self) -> list[TrialRecord]:
        """Trials with at least one epoch, best first by the search metric.

        A diverged trial ranks below every healthy one whatever its earlier epochs scored: its
        weights at the end are garbage, and the setting that blew up is not one to retrain.
        """
        scored = [t for t in self.trials if t.best(self.metric, self.mode) is not None]
        sign = -1 if self.mode == "max" else 1
        return sorted(scored, key=lambda t: (t.diverged, sign * t.best(self.metric, self.mode)))

    @property
    def seeded(self) -> bool:
        """Whether each grid configuration ran with several seeds (search.num_samples > 1)."""
        search = self.meta["search"]
        return search.get("algorithm", "grid") == "grid" and int(search.get("num_samples", 1)) > 1

    def configurations(self) -> list["Configuration"]:
        """Trials grouped by hyperparameters other than train.seed, best mean first.

        A configuration with a diverged seed ranks after every stable one: a setting that
        blows up one run in N is not one to retrain.
        """
        groups: dict[str, Configuration] = {}
        for trial in self.trials:
            hparams = {k: v for k, v in trial.hparams.items() if k != SEED_KEY}
            key = json.dumps(hparams, sort_keys=True)
            groups.setdefault(key, Configuration(hparams, [])).trials.append(trial)
        scored = [c for c in groups.values() if c.bests(self.metric, self.mode)]
        sign = -1 if self.mode == "max" else 1
        scored.sort(key=lambda c: (c.diverged, sign * c.mean(self.metric, self.mode)))
        return scored + [c for c in groups.values() if c not in scored]

    def best_trial(self) -> TrialRecord:
        """The trial to retrain: the best one, or with seeds, the best run of the best-mean configuration."""
        if self.seeded:
            stable = [c for c in self.configurations() if c.bests(self.metric, self.mode) and not c.diverged]
            ranked = [t for t in self.ranked() if stable and t in stable[0].trials]
        else:
            ranked = [t for t in self.ranked() if not t.diverged]
        if not ranked:
            if any(t.diverged for t in self.trials):
                raise UsageError("every trial of this experiment diverged", file=str(self.path),
                                 fix="search lower learning rates (train.lr) and run the search again")
            raise UsageError("no trial of this experiment finished an epoch", file=str(self.path),
                             fix="run the search (or --resume it) until trials report results")
        return ranked[0]

    def configuration_table(self) -> list[dict[str, Any]]:
        """One row per configuration, ranked by the mean over its seeds (seeded grids)."""
        rows = []
        for rank, config in enumerate(self.configurations(), 1):
            bests = config.bests(self.metric, self.mode)
            mean = config.mean(self.metric, self.mode) if bests else None
            rows.append({
                "rank": rank if bests else None,
                **shown(config.hparams),
                "seeds": len(config.trials),
                f"mean_best_{self.metric}": mean,
                "std": config.std(self.metric, self.mode),
                "worst": (min if self.mode == "max" else max)(bests) if bests else None,
                "epochs": sum(t.epochs_run for t in config.trials),
                "trials": " ".join(t.name for t in config.trials),
                **self._origin(config.trials),
            })
        return rows

    @property
    def warm_started(self) -> bool:
        return any(t.origin for t in self.trials)

    def _origin(self, trials: list[TrialRecord]) -> dict[str, Any]:
        """The `from` column (warm-started experiments only): which earlier experiment ran them."""
        if not self.warm_started:
            return {}
        return {"from": ", ".join(sorted({t.origin for t in trials if t.origin})) or None}

    def table(self) -> list[dict[str, Any]]:
        """One row per trial, ranked: what search prints and report renders."""
        ranked = self.ranked()
        rows = []
        for rank, trial in enumerate(ranked + [t for t in self.trials if t not in ranked], 1):
            rows.append({
                "rank": rank if trial.best(self.metric, self.mode) is not None else None,
                "trial": trial.name,
                **self._origin([trial]),
                **shown(trial.hparams),
                "epochs": trial.epochs_run,
                f"best_{self.metric}": trial.best(self.metric, self.mode),
                "val_loss": trial.last("val_loss"),
                "status": trial.status(self.max_epochs),
            })
        return rows


@dataclass
class Configuration:
    """One point of a seeded grid and its runs (one trial per seed)."""

    hparams: dict[str, Any]  # dotted key -> value, without train.seed
    trials: list[TrialRecord]

    def bests(self, metric: str, mode: str) -> list[float]:
        return [b for b in (t.best(metric, mode) for t in self.trials) if b is not None]

    def mean(self, metric: str, mode: str) -> float:
        return statistics.fmean(self.bests(metric, mode))

    def std(self, metric: str, mode: str) -> Optional[float]:
        bests = self.bests(metric, mode)
        return statistics.stdev(bests) if len(bests) > 1 else None

    @property
    def diverged(self) -> bool:
        return any(t.diverged for t in self.trials)


def read_history(result_file: Path) -> list[dict[str, Any]]:
    history: dict[int, dict[str, Any]] = {}
    if not result_file.is_file():
        return []
    # errors="replace": a stray byte spoils its own line (skipped below), not the whole history.
    for line in result_file.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a killed run may be half written
        if isinstance(row, dict) and isinstance(row.get("epoch"), int):
            # After a resume, an epoch re-reported from the same checkpoint replaces the old row.
            history[int(row["epoch"])] = row
    return [history[e] for e in sorted(history)]


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    meta_file = path / EXPERIMENT_FILE
    if not meta_file.is_file():
        raise UsageError("not a tune_app experiment folder (no experiment.json)", file=str(path),
                         fix="pass a folder created by `python -m tune_app.search`, e.g. results/NAME")
    meta = read_meta(path)
    trials = []
    for trial_dir in sorted(p for p in path.glob("trial_*") if p.is_dir()):
        history = read_history(trial_dir / RESULT_FILE)
        trials.append(TrialRecord(
            name=trial_dir.name,
            path=trial_dir,
            hparams=read_trial_params(trial_dir, required=bool(history)),
            history=history,
            ended=read_ended(trial_dir),
        ))
    return Experiment(path=path, meta=meta, trials=trials + earlier_trials(path, meta))


WARM_KEY = "warm_start"  # experiment.json: the earlier experiments and trials a search took over


def _earlier_entries(path: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    record = meta.get(WARM_KEY)
    if record is None:
        return []
    entries = record.get("trials") if isinstance(record, dict) else None
    keys = ("name", "from", "path", "hp")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and all(k in e for k in keys) for e in entries):
        raise UsageError(f"the experiment's record has a malformed '{WARM_KEY}' entry",
                         file=str(path / EXPERIMENT_FILE),
                         fix="restore experiment.json from a backup, or run the search again")
    return entries


def earlier_trials(path: Path, meta: dict[str, Any]) -> list[TrialRecord]:
    """The earlier experiments' trials a warm-started search took over, read where they ran."""
    trials = []
    for entry in _earlier_entries(path, meta):
        folder = Path(os.path.normpath(path / entry["path"]))
        if not folder.is_dir():
            raise UsageError(f"the trial {entry['name']} this search took over (warm start) is missing",
                             file=str(folder), fix=f"restore the experiment {entry['from']} where it was: the "
                             "warm-started search reads its trials in place")
        trials.append(TrialRecord(name=entry["name"], path=folder, hparams=entry["hp"],
                                  history=read_history(folder / RESULT_FILE), ended=read_ended(folder),
                                  origin=entry["from"]))
    return trials


def trial_dir(path: Path, name: str) -> Path:
    """The folder of the experiment's trial `name`: its own, or an earlier experiment's."""
    for entry in _earlier_entries(path, read_meta(path)):
        if entry["name"] == name:
            return Path(os.path.normpath(path / entry["path"]))
    return path / name


def read_meta(path: Path) -> dict[str, Any]:
    """experiment.json, checked enough that every reader can index it."""
    meta = read_json(path / EXPERIMENT_FILE, what="the experiment's record",
                     fix="restore experiment.json from a backup; tune_app rewrites it atomically, so "
                         "an empty or cut one was written by something else")
    missing = [k for k in ("base", "search") if not isinstance(meta, dict) or not isinstance(meta.get(k), dict)]
    if missing:
        raise UsageError(f"the experiment's record lacks {', '.join(missing)}", file=str(path / EXPERIMENT_FILE),
                         fix="restore experiment.json from a backup, or run the search again")
    return meta


def read_trial_params(trial_dir: Path, required: bool) -> dict[str, Any]:
    """The trial's searched values (tune_app.hparams: "hp" in Ray's params.json).

    Without them a trial's results cannot be tied to a configuration: guessing (the base
    config) would retrain something the search never ran under that trial's name. A trial
    with no results yet (not started) may lack the file.
    """
    params_file = trial_dir / "params.json"
    if not required and not params_file.is_file():
        return {}
    params = read_json(params_file, what="the trial's configuration",
                       fix="resume the search (--resume) so Ray writes it again, or leave this trial out "
                           "by moving its folder elsewhere")
    hparams = unwrap(params)
    if hparams is None:
        raise UsageError(f"the trial's configuration has no '{HP_KEY}' mapping", file=str(params_file),
                         fix="resume the search (--resume) so Ray writes it again")
    return hparams


def newest_experiment(results_dir: str | Path) -> Path:
    results_dir = Path(results_dir)
    found = sorted((p.parent for p in results_dir.glob(f"*/{EXPERIMENT_FILE}")),
                   key=lambda p: (p / EXPERIMENT_FILE).stat().st_mtime)
    if not found:
        raise UsageError("no experiment found", file=str(results_dir),
                         fix="run `python -m tune_app.search --space FILE` first, or pass --experiment")
    return found[-1]


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table with aligned columns (numbers to 4 significant digits)."""
    if not rows:
        return "(no trials)"
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)

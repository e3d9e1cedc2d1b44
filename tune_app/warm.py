"""Warm start (`--warm-start results/A [results/B ...]`): the trials of earlier experiments,
taken over by a new search. Everything here is decided before Ray starts.

An earlier trial is a result of this search only if everything this search does not vary was
the same there, so an earlier experiment on other data, another model family or other fixed
settings is refused, naming the field. A field that one of the two searches varies and the
other fixes is no mismatch: the earlier trials whose value equals this search's are its
points, the others are left out with a note.

What a searcher makes of the trials is its own (tuner/searchers.py `warm_start`): a grid skips
the points they already ran; Optuna's study receives them as evaluated points. Either way they
join the new experiment's ranking, read in place from their own folders: experiment.json
"warm_start" lists them, `experiment.load_experiment` reads them, and nothing is ever written
into an earlier experiment.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from tune_app.config import TrialConfig
from tune_app.errors import UsageError
from tune_app.experiment import Experiment, TrialRecord, load_experiment, read_meta
from tune_app.hparams import split_key
from tune_app.spec import SEED_KEY
from tune_app.storage import is_uri

if TYPE_CHECKING:
    from tune_app.spec import ExperimentSpec

FLAG = "--warm-start"
# Compared in this order, so the error names the most telling difference first.
SECTIONS = ("dataset", "model", "train", "augment")
# Where and how fast a run goes, not what it computes: they may differ between the searches.
NOT_SETTINGS = frozenset({"dataset.cache_dir", "train.threads", "train.eval_batch_size"})
# A trial counts as run when it has a result a search of this spec could also have produced: it
# reached its last epoch, diverged (it would again), or a scheduler stopped it (a judgement on
# its results, as this search's own scheduler makes). Interrupted, failed and unstarted trials
# have none: their points run again.
RESULT_STATUSES = ("completed", "diverged", "stopped early")


@dataclass
class Earlier:
    """One trial of an earlier experiment, as a point of this search."""

    name: str  # how the new experiment calls it: "<source folder>/<trial folder>", e.g. "A/trial_00003"
    origin: str  # the earlier experiment's folder name (the `from` column)
    record: TrialRecord  # read in place from its own folder
    hparams: dict[str, Any]  # its values of this search's searched keys (and train.seed when seeded)
    status: str
    value: Optional[float] = None  # what Optuna's study is told (set by the Optuna searcher)


@dataclass
class WarmStart:
    sources: list[Path]
    trials: list[Earlier]  # candidates first, then what the searcher took over
    notes: list[str] = field(default_factory=list)
    skipped: frozenset = frozenset()  # point keys (hparams.point_key) a grid does not launch again

    def record(self, experiment_dir: Path) -> dict[str, Any]:
        """experiment.json's "warm_start": paths relative to the new experiment, so that moving
        the results folder as a whole keeps them readable."""
        def rel(path: Path) -> str:
            return os.path.relpath(path, experiment_dir)

        return {"sources": [rel(s) for s in self.sources],
                "trials": [{"name": t.name, "from": t.origin, "path": rel(t.record.path), "hp": t.hparams}
                           for t in self.trials]}


def varied_keys(space: dict[str, Any], seeded: bool) -> set[str]:
    """The trial fields a search varies: its searched keys, and train.seed over a seeded grid."""
    return set(space) | ({SEED_KEY} if seeded else set())


def settings(cfg: TrialConfig) -> dict[str, Any]:
    """Dotted key -> value of every field that decides what a trial computes."""
    out = {}
    for section in SECTIONS:
        for name, value in dataclasses.asdict(getattr(cfg, section)).items():
            if f"{section}.{name}" not in NOT_SETTINGS:
                out[f"{section}.{name}"] = value
    return out


def value_of(cfg: TrialConfig, key: str) -> Any:
    section, name = split_key(key)
    return getattr(getattr(cfg, section), name)


def load_warm_start(spec: "ExperimentSpec", folders: list[str]) -> WarmStart:
    """The earlier experiments' trials that are points of this search, checked; the searcher
    then takes what it can use (tuner.searchers.warm_start)."""
    if spec.scheduler.name == "pbt":
        raise UsageError("pbt trains a population that starts together; earlier trials cannot join it",
                         file=spec.path, key=FLAG, fix="set scheduler.name: asha (or none), or leave out --warm-start")
    sources: list[tuple[Path, Experiment]] = []
    for folder in folders:
        path = _source_folder(folder)
        if any(path == p for p, _ in sources):
            raise UsageError("is given twice", file=folder, key=FLAG, fix="pass each earlier experiment once")
        clash = next((p for p, _ in sources if p.name == path.name), None)
        if clash is not None:
            raise UsageError(f"has the same folder name as {clash}; the ranking names earlier trials by it "
                             "(A/trial_00003)", file=folder, key=FLAG, fix="rename one of the two folders")
        experiment = load_experiment(path)
        _check_source(spec, path, experiment)
        sources.append((path, experiment))
    ours = settings(spec.base)
    fixed = [k for k in ours if k not in varied_keys(spec.space, len(spec.seeds) > 1)]
    trials: list[Earlier] = []
    notes: list[str] = []
    seen: set[Path] = set()
    names: set[str] = set()
    keys = list(spec.space) + ([SEED_KEY] if len(spec.seeds) > 1 else [])
    for path, experiment in sources:
        why: Counter = Counter()
        kept = 0
        for trial in experiment.trials:
            folder = trial.path.resolve()
            if folder in seen:  # one run reached through two experiments (one warm-started from the other)
                why["the same run as one listed already"] += 1
                continue
            seen.add(folder)
            status = trial.status(experiment.max_epochs)
            if status not in RESULT_STATUSES:
                why[f"{status} (its point runs again)"] += 1
                continue
            if status == "stopped early" and spec.scheduler.name == "none":
                why["stopped early there, and this search runs every trial out"] += 1
                continue
            cfg = experiment.trial_config(trial)
            theirs = settings(cfg)
            other = next((k for k in fixed if theirs[k] != ours[k]), None)
            if other is not None:
                why[f"ran with another {other} (this search fixes it at {ours[other]!r})"] += 1
                continue
            # A trial B took over from A keeps its name and origin: it is A's run.
            name = trial.name if trial.origin else f"{path.name}/{trial.name}"
            if name in names:
                raise UsageError(f"two earlier trials would both be called {name}", file=str(path), key=FLAG,
                                 fix="rename one of the experiment folders named " + name.split("/")[0])
            names.add(name)
            trials.append(Earlier(name=name, origin=trial.origin or path.name, record=trial,
                                  hparams={k: value_of(cfg, k) for k in keys}, status=status))
            kept += 1
        notes.append(f"warm start: {path.name}: {kept} of {len(experiment.trials)} trial(s) are points of this "
                     "search" + "".join(f"; {n} {reason}" for reason, n in why.items()))
    # A grid takes one earlier run per point: a completed one before a diverged or stopped one.
    trials.sort(key=lambda t: RESULT_STATUSES.index(t.status))
    return WarmStart([p for p, _ in sources], trials, notes)


def _source_folder(folder: str) -> Path:
    if is_uri(folder):
        raise UsageError("warm start reads earlier experiments from a local folder", file=folder, key=FLAG,
                         fix="copy the experiment folder (without checkpoints) to this machine and pass that")
    path = Path(folder)
    if not (path / "experiment.json").is_file() or not (path / "spec.yaml").is_file():
        raise UsageError("not a tune_app experiment folder (no experiment.json/spec.yaml)", file=folder, key=FLAG,
                         fix="pass folders a search created, e.g. --warm-start results/NAME")
    return path.resolve()


def _check_source(spec: "ExperimentSpec", path: Path, experiment: Experiment) -> None:
    """Same metric, a scheduler that leaves a trial's values alone, not running, same fixed settings."""
    from tune_app.lock import holder

    where = str(path)
    running = holder(read_meta(path), path / "experiment.json")
    if running:
        raise UsageError(f"is in use by a running search (pid {running.pid}); its unfinished trials have no "
                         "result yet", file=where, key=FLAG, fix="wait for it to finish, then warm-start from it")
    search = experiment.meta["search"]
    for key, ours in (("metric", spec.search.metric), ("mode", spec.search.mode)):
        theirs = search.get(key)
        if theirs != ours:
            raise UsageError(f"search.{key} is {theirs!r} there but {ours!r} in {spec.path}: its results rank "
                             "trials by another measure", file=where, key=FLAG,
                             fix=f"warm-start from an experiment with search.{key}: {ours}")
    if experiment.meta.get("scheduler", {}).get("name") == "pbt":
        raise UsageError("ran with scheduler pbt, which changes a trial's values mid-run: its results belong "
                         "to no single configuration", file=where, key=FLAG,
                         fix="warm-start from an experiment run with asha, hyperband, median or none")
    try:
        base = experiment.base_config()
    except TypeError as err:
        raise UsageError(f"the experiment's record holds settings this version does not know ({err})",
                         file=where, key=FLAG,
                         fix="warm-start from an experiment this version of tune_app ran") from None
    theirs, ours = settings(base), settings(spec.base)
    either = varied_keys(spec.space, len(spec.seeds) > 1) | varied_keys(experiment.meta.get("space", {}),
                                                                         experiment.seeded)
    for key, value in ours.items():
        if key not in either and theirs[key] != value:
            fix = ("warm-start from an experiment on the same dataset" if key.startswith("dataset.") else
                   f"warm-start from an experiment with {key}: {value!r}, or search {key} in this spec")
            raise UsageError(f"{key} is {theirs[key]!r} there but {value!r} in {spec.path}", file=where, key=FLAG,
                             fix=fix)

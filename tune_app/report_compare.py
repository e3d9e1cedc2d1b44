"""`python -m tune_app.report --compare A B ...`: one report of several experiments of one spec
family (same dataset and splits, same search metric and mode).

Written into a new folder, never into an experiment and never over an existing folder:
  --out DIR, which must not exist yet, or else
  compare/<A>-vs-<B>-<YYYYmmdd-HHMMSS>/ beside the first experiment (-2, -3... if taken)
holding
  report.md            per experiment: search, best trial and configuration, race pick, retrained
                       test accuracy; and the budget: epochs of search, race and retraining, wall time
  learning_curves.png  the best trial of each experiment, metric per epoch, one colour each
  budget.png           best metric so far against epochs the search had spent (an anytime curve)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from tune_app.config import DatasetConfig, SearchConfig
from tune_app.errors import UsageError
from tune_app.experiment import Experiment, TrialRecord, best_row, load_experiment
from tune_app.fileio import read_json, save_figure_atomic, write_text_atomic
from tune_app.metric_names import METRICS, test_key
from tune_app.race import RaceResult, load_race
from tune_app.hparams import field_name
from tune_app.report import _new_figure, fmt, focus_limits, md_table, newest_retrain
from tune_app.retrain_best import procedure_epochs

COMPARE_DIR = "compare"
REPORT_FILE = "report.md"
CURVES_FIGURE = "learning_curves.png"
BUDGET_FIGURE = "budget.png"
# What makes two experiments comparable: the same images in train, val and test, judged alike.
DATASET_FIELDS = ("name", "path", "image_column", "label_column", "image_size", "val_fraction", "test_fraction",
                  "split_seed", "subset_per_class")
SEARCH_FIELDS = ("metric", "mode")
FAMILY_FIX = ("compare experiments of one spec family: the same dataset (name, path, image size, splits, "
              "subset) and the same search.metric and search.mode")
MAX_JOINED_NAMES = 120  # bytes of "A-vs-B-..." in the folder name; beyond it: "N-experiments"


# --------------------------------------------------------------------------- one experiment


@dataclass
class Entry:
    """One compared experiment and what the report says about it."""

    label: str  # the folder name, or parent/name when two compared folders share a name
    exp: Experiment
    best: Optional[TrialRecord]  # None when every trial (or every configuration) diverged
    race: Optional[RaceResult]
    retrain: Optional[dict[str, Any]]  # the newest best*/metrics.json
    retrain_dir: Optional[Path]

    @property
    def metric(self) -> str:
        return self.exp.metric

    @property
    def mode(self) -> str:
        return self.exp.mode

    def epochs(self) -> dict[str, int]:
        """The budget spent: epochs of the search, of the race runs it trained, and of retraining."""
        retrained = 0
        if self.retrain is not None:
            seeds = self.retrain.get("test_seeds") or {}
            runs = len(seeds.get("accuracy", {}).get("values", [])) or 1
            retrained = (self.retrain.get("procedure_epochs") or {}).get("retrain", self.retrain["epochs"] * runs)
        return procedure_epochs(self.exp, retrained)


def best_of(exp: Experiment) -> Optional[TrialRecord]:
    try:
        return exp.best_trial()
    except UsageError:
        return None  # every trial diverged: a row without a best, not a refusal of the whole comparison


def load_entry(exp: Experiment, label: str) -> Entry:
    if not exp.ranked():
        raise UsageError("no trial of this experiment has finished an epoch yet", file=str(exp.path), key="--compare",
                         fix="wait until the search has reported results, or --resume it")
    retrain_dir = newest_retrain(exp.path)
    retrain = None if retrain_dir is None else read_json(
        retrain_dir / "metrics.json", what="retrain-best's metrics",
        fix="run python -m tune_app.retrain_best again (it writes a new best-N folder)")
    return Entry(label, exp, best_of(exp), load_race(exp.path), retrain, retrain_dir)


def family(exp: Experiment) -> dict[str, Any]:
    """The fields that must agree, by dotted key; what the spec left out reads as its default."""
    dataset = {**dataclasses.asdict(DatasetConfig()), **exp.meta["base"].get("dataset", {})}
    search = {**dataclasses.asdict(SearchConfig()), **exp.meta["search"]}
    return {**{f"dataset.{k}": dataset.get(k) for k in DATASET_FIELDS},
            **{f"search.{k}": search.get(k) for k in SEARCH_FIELDS}}


def check_family(experiments: list[Experiment], labels: list[str]) -> None:
    first = family(experiments[0])
    for exp, label in zip(experiments[1:], labels[1:]):
        for key, value in family(exp).items():
            if value != first[key]:
                raise UsageError(f"not the same spec family: {labels[0]} has {first[key]!r}, {label} has {value!r}",
                                 file=str(exp.path / "experiment.json"), key=key, fix=FAMILY_FIX)


# --------------------------------------------------------------------------- budget


@dataclass
class Anytime:
    """The search's best value so far after each epoch it trained, in the order they finished."""

    spent: list[int]  # epochs trained so far, 1, 2, ...
    best: list[Optional[float]]  # best value of a healthy trial so far (None before the first)

    def epochs_to(self, target: float, mode: str) -> Optional[int]:
        """Epochs spent when the best so far first reached `target` (at least as good)."""
        for spent, best in zip(self.spent, self.best):
            if best is not None and (best >= target if mode == "max" else best <= target):
                return spent
        return None


def anytime(exp: Experiment) -> Anytime:
    """Every epoch of every search trial, ordered by when it finished (Ray's per-epoch timestamp,
    to the second; epoch number then trial name break ties, and order rows without one, as
    trials running side by side would). A diverged trial's epochs count as spent but its values
    do not: the ranking sets it last whatever it scored, so the curve ends on the table's best."""
    metric, mode = exp.metric, exp.mode
    rows = [(_number(row.get("timestamp")) or 0.0, int(row["epoch"]), trial.name, row.get(metric), trial.diverged)
            for trial in exp.trials for row in trial.history]
    rows.sort(key=lambda r: r[:3])
    spent, best, current = [], [], None
    for n, (_, _, _, value, diverged) in enumerate(rows, 1):
        if not diverged and _number(value) is not None and math.isfinite(value):
            current = value if current is None else (max if mode == "max" else min)(current, value)
        spent.append(n)
        best.append(current)
    return Anytime(spent, best)


def wall_seconds(entry: Entry) -> Optional[float]:
    """From the first epoch's start to the last epoch's end, search and race, by Ray's timestamps;
    None if the rows carry none. It spans any pause between an interruption and its --resume."""
    histories = [t.history for t in entry.exp.trials]
    if entry.race is not None:
        histories += list(entry.race.histories.values())
    ends, starts = [], []
    for history in histories:
        for row in history:
            stamp = _number(row.get("timestamp"))
            if stamp is not None:
                ends.append(stamp)
                starts.append(stamp - (_number(row.get("time_this_iter_s")) or 0.0))
    return max(ends) - min(starts) if ends else None


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def duration(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def common_target(entries: list[Entry], curves: list[Anytime]) -> Optional[float]:
    """The best value every experiment's search reached: the worst of their final bests."""
    finals = [c.best[-1] for c in curves if c.best and c.best[-1] is not None]
    if len(finals) < len(entries):
        return None
    return (min if entries[0].mode == "max" else max)(finals)


# --------------------------------------------------------------------------- tables


def search_text(exp: Experiment) -> str:
    search = exp.meta["search"]
    algorithm = search.get("algorithm", "grid")
    samples = int(search.get("num_samples", 1))
    if algorithm == "grid":
        return "grid" + (f" x {samples} seeds" if samples > 1 else "")
    return f"{algorithm}, {samples} samples"


def scheduler_text(exp: Experiment) -> str:
    scheduler = exp.meta.get("scheduler", {})
    if scheduler.get("name") != "asha":
        return "none"
    return (f"ASHA (grace {scheduler.get('grace_period')}, factor {scheduler.get('reduction_factor'):g}, "
            f"judge {scheduler.get('judge', 'last')})")


def race_text(entry: Entry) -> str:
    if entry.race is None:
        return "no race"
    missing = entry.race.missing()
    decision = entry.race.decision() if missing == 0 else None
    if decision is None:
        return f"unfinished ({missing} run(s) left)"
    return f"{decision.pick.label} (mean final {fmt(decision.pick.mean)})"


def retrain_text(entry: Entry, key: str) -> Optional[str]:
    if entry.retrain is None:
        return None
    value = entry.retrain["test"].get(key)
    seeds = (entry.retrain.get("test_seeds") or {}).get(key)
    spread = f", mean {fmt(seeds['mean'])} over {len(seeds['values'])} seeds" if seeds else ""
    return f"{fmt(value)} ({entry.retrain['trial']}, `{entry.retrain_dir.name}/`{spread})"


def configuration_text(hparams: dict[str, Any]) -> str:
    # 4 significant digits: an Optuna lr of 0.002223992933390404 reads 0.002224.
    return ", ".join(f"{field_name(k)}={v:.4g}" if isinstance(v, float) else f"{field_name(k)}={v}"
                     for k, v in hparams.items()) or "base configuration"


def best_rows(entries: list[Entry]) -> tuple[list[str], list[list[Any]]]:
    metric = entries[0].metric
    header = ["experiment", "search", "scheduler", "trials", "best trial", "best configuration",
              f"best {metric}", "at epoch", "race pick", "test accuracy (retrained)"]
    extra = test_key(metric) if metric != "val_accuracy" else None
    if extra:
        header.append(f"test {extra} (retrained)")
    rows = []
    for e in entries:
        best = e.best
        row = [f"`{e.label}`", search_text(e.exp), scheduler_text(e.exp), len(e.exp.trials),
               best.name if best else "every trial diverged",
               configuration_text(best.hparams) if best else None,
               best.best(metric, e.mode) if best else None,
               (best_row(best.history, metric, e.mode) or {}).get("epoch") if best else None,
               race_text(e), retrain_text(e, "accuracy")]
        if extra:
            row.append(retrain_text(e, extra))
        rows.append(row)
    return header, rows


def budget_rows(entries: list[Entry], curves: list[Anytime],
                target: Optional[float]) -> tuple[list[str], list[list[Any]]]:
    header = ["experiment", "status", "epochs: search", "race", "retrain", "total", "wall time (search + race)"]
    if target is not None:
        header.append(f"search epochs to reach {entries[0].metric} {fmt(target)}")
    rows = []
    for e, curve in zip(entries, curves):
        spent = e.epochs()
        row = [f"`{e.label}`", e.exp.meta.get("status", "unknown"), spent["search"], spent["race"], spent["retrain"],
               spent["total"], duration(wall_seconds(e))]
        if target is not None:
            row.append(curve.epochs_to(target, e.mode))
        rows.append(row)
    return header, rows


# --------------------------------------------------------------------------- figures


def _palette(n: int) -> list:
    from matplotlib import colormaps

    return [colormaps["tab10"](i % 10) for i in range(n)]


def _is_fraction(metric: str) -> bool:
    return METRICS.get(metric, ("max", False))[1]


def plot_curves(entries: list[Entry], path: Path) -> None:
    """Left: the search metric (val accuracy when that is the loss); right: val loss, log axis."""
    metric = entries[0].metric
    first = metric if metric != "val_loss" else "val_accuracy"
    fig = _new_figure(13, 4.8)
    axes = fig.subplots(1, 2)
    colours = _palette(len(entries))
    for ax, key in ((axes[0], first), (axes[1], "val_loss")):
        for entry, colour in zip(entries, colours):
            if entry.best is None:
                continue
            history = entry.best.history
            ax.plot([h["epoch"] for h in history], [_finite_or_nan(h.get(key)) for h in history], color=colour,
                    lw=1.8, marker="o", ms=3, label=f"{entry.label} ({entry.best.name})")
            top = best_row(history, key, "min" if key == "val_loss" else "max")
            if top is not None:
                ax.plot(top["epoch"], top[key], ls="none", marker="*", ms=13, color=colour, mec="black", mew=0.6)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
    axes[1].set_yscale("log")
    axes[0].set_title(f"{first.replace('_', ' ')} (star: best epoch)")
    axes[1].set_title("val loss")
    if _is_fraction(first):
        limits = focus_limits([e.best.best(first, "max") for e in entries if e.best is not None])
        if limits is not None:
            axes[0].set_ylim(*limits)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8,
               title="experiment (best trial)", title_fontsize=8)
    fig.suptitle(f"best trial of each experiment, by {metric}")
    save_figure_atomic(fig, path, dpi=110)


def plot_budget(entries: list[Entry], curves: list[Anytime], target: Optional[float], path: Path) -> None:
    metric, mode = entries[0].metric, entries[0].mode
    fig = _new_figure(9, 5)
    ax = fig.subplots()
    for entry, curve, colour in zip(entries, curves, _palette(len(entries))):
        ax.step(curve.spent, [_finite_or_nan(b) for b in curve.best], where="post", color=colour, lw=1.8,
                label=f"{entry.label} ({curve.spent[-1] if curve.spent else 0} epochs)")
        reached = curve.epochs_to(target, mode) if target is not None else None
        if reached is not None:
            ax.plot(reached, curve.best[reached - 1], ls="none", marker="o", ms=8, color=colour, mec="black", mew=0.8)
    if target is not None:
        ax.axhline(target, color="0.5", ls=":", lw=1, label=f"reached by every search: {fmt(target)}")
    if _is_fraction(metric):
        limits = focus_limits([c.best[-1] for c in curves if c.best and c.best[-1] is not None])
        if limits is not None:
            ax.set_ylim(*limits)
    ax.set_xlabel("epochs trained by the search so far (all trials)")
    ax.set_ylabel(f"best {metric} so far ({'higher' if mode == 'max' else 'lower'} is better)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right" if mode == "max" else "upper right")
    ax.set_title("anytime: the best value each search had found after N epochs (dot: first reached the line)",
                 fontsize=10)
    save_figure_atomic(fig, path, dpi=110)


def _finite_or_nan(value: Any) -> float:
    number = _number(value)
    return number if number is not None and math.isfinite(number) else float("nan")


# --------------------------------------------------------------------------- output folder


def claim_output(entries: list[Entry], out: Optional[str], default_parent: Path) -> Path:
    """A folder of its own: --out only if it does not exist, else compare/<names>-<time>[-N]/."""
    if out is not None:
        path = Path(out).resolve()
        inside = next((e for e in entries if path == e.exp.path.resolve() or e.exp.path.resolve() in path.parents),
                      None)
        if inside is not None:
            raise UsageError(f"{out} is inside the experiment {inside.label}", key="--out",
                             fix="pass a new folder outside every experiment, or leave --out out")
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            raise UsageError(f"{out} already exists; a comparison never writes into an existing folder",
                             key="--out", fix="pass a new folder, or leave --out out") from None
        except OSError as err:
            raise UsageError(f"cannot create {out} ({err.strerror})", key="--out",
                             fix="pass a folder you can write to") from None
        return path
    names = "-vs-".join(e.exp.path.name for e in entries)
    if len(names.encode("utf-8")) > MAX_JOINED_NAMES:
        names = f"{len(entries)}-experiments"
    stem = f"{names}-{time.strftime('%Y%m%d-%H%M%S')}"
    root = default_parent / COMPARE_DIR
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {root} ({err.strerror})", key="--out",
                         fix="pass --out DIR on a disk you can write to") from None
    for candidate in [stem] + [f"{stem}-{n}" for n in range(2, 100)]:
        try:
            (root / candidate).mkdir()  # atomic: of two comparisons in the same second, one gets -2
            return root / candidate
        except FileExistsError:
            continue
    raise UsageError(f"no free folder name {stem}-N under {root}", key="--out", fix="pass --out DIR")


# --------------------------------------------------------------------------- report


def labels_for(folders: list[Path]) -> list[str]:
    """Folder names; parent/name for those whose name another compared folder shares."""
    names = [f.name for f in folders]
    return [f"{f.parent.name}/{f.name}" if names.count(f.name) > 1 else f.name for f in folders]


def dataset_text(exp: Experiment) -> str:
    data = {**dataclasses.asdict(DatasetConfig()), **exp.meta["base"].get("dataset", {})}
    parts = [f"dataset `{data['name']}`" + (f" from `{data['path']}`" if data.get("path") else "")]
    if data.get("image_size"):
        parts.append(f"images {data['image_size']} px")
    parts.append(f"val {data['val_fraction']:g}, test {data['test_fraction']:g}, split seed {data['split_seed']}")
    if data.get("subset_per_class"):
        parts.append(f"a sample of {data['subset_per_class']} images a class")
    return ", ".join(parts)


def write_comparison(entries: list[Entry], out_dir: Path, command: str) -> Path:
    metric, mode = entries[0].metric, entries[0].mode
    curves = [anytime(e.exp) for e in entries]
    target = common_target(entries, curves)
    plot_curves(entries, out_dir / CURVES_FIGURE)
    plot_budget(entries, curves, target, out_dir / BUDGET_FIGURE)
    lines = [f"# Comparison of {len(entries)} experiments", "",
             f"{dataset_text(entries[0].exp)}; judged by `{metric}` ({mode}). Written by `{command}` on "
             f"{time.strftime('%Y-%m-%d %H:%M:%S')}.", "",
             "## Best per experiment", "",
             "The best trial is the one `retrain_best` takes without a race (with seeds: the best run of the "
             "configuration with the best mean); the race pick is what it takes after a race.", "",
             *md_table(*best_rows(entries)), "",
             "## Budget", "",
             "Epochs actually trained: by every trial of the search (one ASHA stopped counts the epochs it ran), "
             "by the race runs "
             "it trained itself (a reused search trial costs nothing), and by the newest retraining. Wall time "
             "runs from the first epoch's start to the last epoch's end (Ray's timestamps), so it leaves out Ray's "
             "start-up and spans any pause before a `--resume`.", "",
             *md_table(*budget_rows(entries, curves, target)), "",
             "## Learning curves", "",
             f"The best trial of each experiment: {metric} and val loss per epoch.", "",
             f"![learning curves]({CURVES_FIGURE})", "",
             "## Best so far against epochs spent", "",
             f"After each epoch any trial of the search finished (in the order they finished), the best {metric} "
             "a healthy trial had reached: the search that climbs first found a good configuration with fewer "
             "epochs. The dotted line is the value every search reached; the dot where each first got there.", "",
             f"![best so far against epochs spent]({BUDGET_FIGURE})", "",
             "## Experiments", "",
             *[f"- `{e.label}`: `{e.exp.path}` (spec `{e.exp.meta.get('spec_path')}`)" for e in entries], ""]
    report = out_dir / REPORT_FILE
    write_text_atomic(report, "\n".join(lines))
    return report


def main_compare(args: argparse.Namespace) -> int:
    """The --compare branch of `python -m tune_app.report`."""
    from tune_app.storage import Location

    if args.compare is None:
        raise UsageError("only used with --compare (it names the comparison's folder)", key="--out",
                         fix="add --compare DIR DIR ..., or leave --out out")
    if args.experiment:
        raise UsageError("give either --experiment (one report) or --compare (a comparison), not both",
                         key="--compare", fix="drop one of them")
    if len(args.compare) < 2:
        raise UsageError(f"needs at least 2 experiment folders, got {len(args.compare)}", key="--compare",
                         fix="e.g. --compare results/A results/B")
    locations = [Location(folder) for folder in args.compare]
    for folder, location in zip(args.compare, locations):
        if not location.remote and not location.local.is_dir():
            raise UsageError("no such experiment folder", file=folder, key="--compare",
                             fix="pass folders created by `python -m tune_app.search`, e.g. results/NAME")
    seen: dict[Path, str] = {}
    for folder, location in zip(args.compare, locations):
        if location.local in seen:
            raise UsageError(f"the same experiment is given twice ({seen[location.local]} and {folder})",
                             key="--compare", fix="compare different experiments")
        seen[location.local] = folder
    folders = [location.pull() for location in locations]
    experiments, labels = [load_experiment(folder) for folder in folders], labels_for(folders)
    check_family(experiments, labels)
    entries = [load_entry(exp, label) for exp, label in zip(experiments, labels)]
    # Beside the first experiment, as checks/ is; a URI's local copy is a cache, so --results then.
    parent = folders[0].parent if not locations[0].remote else Path(args.results)
    out_dir = claim_output(entries, args.out, parent)
    command = "python -m tune_app.report --compare " + " ".join(args.compare) + (
        f" --out {args.out}" if args.out else "")
    try:
        report = write_comparison(entries, out_dir, command)
    except BaseException:
        # The folder was made a moment ago by this run: a failed comparison leaves nothing behind.
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    print(f"written: {report} and {', '.join(sorted(p.name for p in out_dir.glob('*.png')))}")
    return 0

"""`python -m tune_app.report [--experiment results/NAME]`: a Markdown report with figures.

Written inside the experiment folder, and nothing else there is touched:
  report.md                      ranked trials, figures, retrain-best test metrics, pre-search checks
  report/learning_curves.png     val accuracy and val loss per epoch of every trial; X = stopped by ASHA
  report/hparam_effects.png      best val metric against each searched hyperparameter
  report/importance.png          PED-ANOVA and fANOVA importance of each searched hyperparameter
  report/confusion_matrix.png    after retrain_best: the test confusion matrix, rows normalised
  report/per_class_accuracy.png  after retrain_best: test accuracy of every class, sorted
  report/pareto_front.png        with search.objectives: each configuration's cost and metric, the front, the pick
  report/lr_range.png            a copy of the `tune_app.check` lr range test, if it was run
  report/pbt_lr.png              under PBT: each trial's learning rate per epoch, clones marked
Running it again overwrites only these files; it also works on a search still in progress.
`--compare A B ...` writes one report of several experiments instead (see tune_app.report_compare).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Optional

from tune_app.config import SchedulerConfig
from tune_app.errors import UsageError, cli_entry
from tune_app.experiment import Experiment, TrialRecord, best_row, load_experiment
from tune_app.fileio import read_json, save_figure_atomic, write_atomic, write_text_atomic
from tune_app.hparams import field_name

REPORT_FILE = "report.md"
FIGURES_DIR = "report"
STOPPED = "stopped early"
STATUS_STYLE = {"completed": ("o", "tab:blue", "ran all epochs"), STOPPED: ("x", "tab:orange", "stopped by ASHA")}
# Hyperparameters whose effect is multiplicative: plotted on a log axis when continuous.
LOG_SCALE_FIELDS = ("lr", "weight_decay")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tune_app.report", description=__doc__.splitlines()[0])
    p.add_argument("--experiment", metavar="DIR", help="experiment folder (default: the newest under --results)")
    p.add_argument("--results", default="results", help="where to look for the newest experiment")
    p.add_argument("--compare", nargs="*", metavar="DIR",
                   help="compare these experiments (at least 2, same dataset and metric) in a new folder; "
                        "not with --experiment")
    p.add_argument("--out", metavar="DIR", help="with --compare: the new folder to write (default: "
                                                "compare/<names>-<time>/ beside the first experiment)")
    return p




def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.3g}"
    return str(value)


def md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return lines


def finite(values: list[Any]) -> list[Optional[float]]:
    return [v if isinstance(v, (int, float)) and math.isfinite(v) else None for v in values]


# --------------------------------------------------------------------------- search figures


def _new_figure(width: float, height: float):
    # Figure without pyplot: no global backend or state, always rendered by Agg.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def focus_limits(bests: list[float]) -> Optional[tuple[float, float]]:
    """y-limits for accuracy curves that spread the leaders instead of squeezing them under 1.0.

    `bests`: the best accuracy of each trial shown in colour. The frame reaches as far below
    the lowest of them as they are spread (at least 2 points), so the top trials' endings are
    told apart and their climbs enter from below; early epochs and laggards fall off the axis.
    """
    finite_bests = [b for b in bests if b is not None and math.isfinite(b)]
    if not finite_bests:
        return None
    lo, hi = min(finite_bests), max(finite_bests)
    span = max(hi - lo, 0.02)
    return max(0.0, lo - span), min(1.0, hi + 0.25 * span) if hi < 1.0 else 1.0 + 0.05 * span


def plot_learning_curves(exp: Experiment, path: Path) -> None:
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    ranked = exp.ranked()
    trials = ranked + [t for t in exp.trials if t not in ranked and t.history]
    # The best few get their own colour and legend entry; a legend of 36 entries helps nobody.
    palette = colormaps["tab10"]
    labelled = {t.name: palette(i) for i, t in enumerate(trials[:8])}
    fig = _new_figure(13, 4.8)
    axes = fig.subplots(1, 2)
    # The left panel shows the search metric (accuracy when that is the loss, drawn on the right).
    first = exp.metric if exp.metric != "val_loss" else "val_accuracy"
    for ax, key, title in ((axes[0], first, first.replace("val_", "validation ").replace("_", " ")),
                           (axes[1], "val_loss", "validation loss")):
        for rung in SchedulerConfig(**exp.meta.get("scheduler", {"name": "none"})).rungs(exp.max_epochs):
            ax.axvline(rung, color="0.6", ls=":", lw=1)
        for index, trial in reversed(list(enumerate(trials))):  # the best drawn last, on top
            epochs = [h["epoch"] for h in trial.history]
            values = finite([h.get(key) for h in trial.history])
            color = labelled.get(trial.name, "0.72")
            label = f"#{index + 1} {trial.name}" if trial.name in labelled and key == first else None
            ax.plot(epochs, [v if v is not None else float("nan") for v in values], color=color,
                    lw=1.6 if trial.name in labelled else 1.0, marker="o", ms=2.5, label=label)
            status = trial.status(exp.max_epochs)
            last = next((v for v in reversed(values) if v is not None), None)
            if status in (STOPPED, "diverged") and last is not None:
                ax.plot(epochs[len(values) - 1 - values[::-1].index(last)], last, ls="none",
                        marker="X" if status == STOPPED else "*", ms=9, color=color, mec="black", mew=0.8)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0.5, exp.max_epochs + 0.5)
    axes[1].set_yscale("log")
    # Framed on the labelled (best) trials: the curves a reader compares.
    limits = focus_limits([t.best(first, "max") for t in trials if t.name in labelled])
    if limits is not None:
        axes[0].set_ylim(*limits)
        axes[0].set_title(f"{axes[0].get_title()} (axis framed on the best trials)")
    handles, labels = axes[0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: int(labels[i].split()[0][1:]))
    handles = [handles[i] for i in order]
    if len(trials) > len(labelled):
        handles.append(Line2D([], [], color="0.72", lw=1.0, label=f"{len(trials) - len(labelled)} more trials"))
    handles += [Line2D([], [], ls="none", marker="X", ms=9, color="0.85", mec="black", label="stopped by ASHA"),
                Line2D([], [], color="0.6", ls=":", label="ASHA rung")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, title="rank by best val", title_fontsize=8)
    fig.suptitle(f"{exp.path.name}: learning curves of {len(trials)} trials")
    save_figure_atomic(fig, path, dpi=110)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plot_hparam_effects(exp: Experiment, path: Path) -> bool:
    """One panel per searched hyperparameter: the best val metric of every trial against its
    value. Returns False when nothing was searched."""
    import numpy as np

    space = exp.meta.get("space", {})
    trials = exp.ranked()
    if not space or not trials:
        return False
    metric, mode = exp.metric, exp.mode
    best_name = trials[0].name
    cols = min(len(space), 3)
    rows = math.ceil(len(space) / cols)
    fig = _new_figure(4.3 * cols, 3.6 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes[len(space):]:
        ax.set_visible(False)
    rng = np.random.default_rng(0)
    for ax, (key, domain) in zip(axes, space.items()):
        values = [t.hparams.get(key) for t in trials]
        scores = [t.best(metric, mode) for t in trials]
        statuses = [t.status(exp.max_epochs) for t in trials]
        numeric = all(map(_is_number, values))
        log = numeric and all(v > 0 for v in values) and (
            domain["kind"] == "loguniform" or field_name(key) in LOG_SCALE_FIELDS)
        if domain["kind"] in ("uniform", "loguniform", "randint") and numeric:
            x = np.array(values, dtype=float)
            if log:
                ax.set_xscale("log")
        else:
            # One box per value; lr / weight decay values sit at their log10 so a grid's spacing shows.
            categories = sorted(set(map(str, values)), key=lambda c: (float(c) if _is_number(_num(c)) else math.inf, c))
            where = {c: math.log10(float(c)) if log else i for i, c in enumerate(categories)}
            gap = min((b - a for a, b in zip(sorted(where.values()), sorted(where.values())[1:])), default=1.0)
            groups = [[s for v, s in zip(values, scores) if str(v) == c] for c in categories]
            ax.boxplot(groups, positions=[where[c] for c in categories], widths=0.5 * gap, showfliers=False,
                       medianprops={"color": "0.3"}, boxprops={"color": "0.6"}, whiskerprops={"color": "0.6"},
                       capprops={"color": "0.6"})
            ax.set_xticks([where[c] for c in categories], [_tick(c) for c in categories])
            x = np.array([where[str(v)] for v in values], dtype=float) + rng.uniform(-0.12, 0.12, len(values)) * gap
        for status in dict.fromkeys(statuses):
            marker, color, label = STATUS_STYLE.get(status, ("^", "0.5", status))
            pick = [i for i, s in enumerate(statuses) if s == status]
            ax.scatter(x[pick], [scores[i] for i in pick], marker=marker, s=28, color=color, label=label, zorder=3)
        best = [i for i, t in enumerate(trials) if t.name == best_name]
        ax.scatter(x[best], [scores[i] for i in best], marker="*", s=180, color="tab:red", zorder=4,
                   label=f"best ({best_name})")
        ax.set_xlabel(field_name(key) + (" (log scale)" if log else ""))
        ax.set_ylabel(f"best {metric}")
        ax.grid(True, alpha=0.3)
    # Every panel shows the same trials, so one legend (without duplicates) serves them all.
    entries = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncols=len(entries), fontsize=8)
    fig.suptitle(f"{exp.path.name}: effect of each searched hyperparameter on best {metric}")
    save_figure_atomic(fig, path, dpi=110)
    return True


def _num(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _tick(category: str) -> str:
    value = _num(category)
    return f"{value:g}" if isinstance(value, float) else category


# --------------------------------------------------------------------------- retrain-best


def newest_retrain(experiment: Path) -> Optional[Path]:
    """The newest best*/ folder (best, best-2, ...) that holds retrain_best's metrics.json."""
    found = [p for p in experiment.glob("best*/metrics.json") if p.parent.is_dir()]
    return max(found, key=lambda p: p.stat().st_mtime).parent if found else None


def plot_confusion(metrics: dict[str, Any], path: Path) -> None:
    import numpy as np

    cm = np.array(metrics["test"]["confusion_matrix"], dtype=float)
    names = metrics["class_names"]
    n = len(names)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    side = 5.5 if n <= 20 else 9
    fig = _new_figure(side + 1, side)
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    if n <= 30:
        ax.set_xticks(range(n), names, rotation=90, fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Test confusion matrix ({int(cm.sum())} images, {n} classes)")
    save_figure_atomic(fig, path, dpi=110)


def per_class(metrics: dict[str, Any]) -> list[tuple[str, float]]:
    """(class, test accuracy) for the classes present in test, worst first."""
    items = [(name, acc) for name, acc in metrics["test"]["per_class_accuracy"].items() if acc is not None]
    return sorted(items, key=lambda item: (item[1], item[0]))


def plot_per_class(metrics: dict[str, Any], path: Path) -> None:
    items = per_class(metrics)
    n = len(items)
    fig = _new_figure(max(6.0, min(16.0, 0.3 * n + 2)), 4.2)
    ax = fig.add_subplot()
    accuracies = [acc for _, acc in items]
    ax.bar(range(n), accuracies, width=0.85 if n <= 40 else 1.0, color="tab:blue")
    ax.axhline(metrics["test"]["accuracy"], color="tab:red", ls="--", lw=1,
               label=f"overall test accuracy {metrics['test']['accuracy']:.3f}")
    ax.axhline(metrics["baselines"]["majority_class_accuracy"], color="0.4", ls=":", lw=1,
               label="majority-class baseline")
    if n <= 40:
        ax.set_xticks(range(n), [name for name, _ in items], rotation=90, fontsize=8)
        ax.set_xlabel("class (sorted by test accuracy)")
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{n} classes, sorted by test accuracy (worst and best listed in report.md)")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("test accuracy")
    ax.set_title("Per-class test accuracy")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    save_figure_atomic(fig, path, dpi=110)


def _best_epoch(trial: TrialRecord, metric: str, mode: str) -> dict[str, Any]:
    return best_row(trial.history, metric, mode) or {}


def retrain_section(exp: Experiment, best_dir: Path, figures: Path) -> list[str]:
    metrics = read_json(best_dir / "metrics.json", what="retrain-best's metrics",
                        fix="run python -m tune_app.retrain_best again (it writes a new best-N folder)")
    test, base = metrics["test"], metrics["baselines"]
    from tune_app.report_race import race_run

    # A race's pick is named by its race run: its validation numbers are that run's.
    trial = next((t for t in exp.trials if t.name == metrics["trial"]), None) or race_run(exp, metrics["trial"])
    searched = _best_epoch(trial, exp.metric, exp.mode) if trial else {}
    final = metrics["history"][-1] if metrics.get("history") else {}
    val_note = "" if metrics["val_held_out"] else " (val was trained on)"
    lines = [
        f"## Best configuration, retrained and tested once (`{best_dir.name}/`)", "",
        f"Trial `{metrics['trial']}` retrained from scratch on **{metrics['train_on']}** for {metrics['epochs']} "
        f"epochs, then evaluated once on the test split the search never saw.", "",
        *([f"Chosen by the {metrics['chosen_by']['stage']}: {metrics['chosen_by']['sentence']}.", ""]
          if metrics.get("chosen_by") else []),
        *md_table(
            ["metric", f"val: search ({metrics['trial']}, epoch {searched.get('epoch', '-')})",
             f"val: after retraining{val_note}", "**test**"],
            [["accuracy", searched.get("val_accuracy"), final.get("val_accuracy"), test["accuracy"]],
             ["top-5 accuracy", searched.get("val_top5_accuracy"), final.get("val_top5_accuracy"),
              test["top5_accuracy"]],
             ["macro-F1", searched.get("val_macro_f1"), final.get("val_macro_f1"), test["macro_f1"]],
             ["loss", searched.get("val_loss"), final.get("val_loss"), test["loss"]],
             ["baseline: majority class", None, None, base["majority_class_accuracy"]],
             ["baseline: uniform random", None, None, base["uniform_random_accuracy"]]]),
        "",
    ]
    plot_confusion(metrics, figures / "confusion_matrix.png")
    plot_per_class(metrics, figures / "per_class_accuracy.png")
    items = per_class(metrics)
    k = min(10, max(1, len(items) // 2))
    lines += [f"![confusion matrix]({FIGURES_DIR}/confusion_matrix.png)", "",
              f"![per-class accuracy]({FIGURES_DIR}/per_class_accuracy.png)", "",
              f"Worst {k} classes (test accuracy): " + ", ".join(f"{n} {a:.2f}" for n, a in items[:k]), "",
              f"Best {k} classes: " + ", ".join(f"{n} {a:.2f}" for n, a in reversed(items[-k:])), ""]
    return lines


# --------------------------------------------------------------------------- pre-search checks


def find_checks(exp: Experiment) -> Optional[Path]:
    """checks/<output.name>/ next to the experiment; failing that (a search renamed with --name),
    the newest checks run on the same spec file."""
    from tune_app.check import CHECKS_DIR, CHECKS_FILE, checks_dir

    name = exp.meta.get("output", {}).get("name") or exp.path.name
    path = checks_dir(exp.path.parent, name) / CHECKS_FILE
    if path.is_file():
        return path
    same_spec = [p for p in (exp.path.parent / CHECKS_DIR).glob(f"*/{CHECKS_FILE}")
                 if (read_json(p, what="the pre-search checks", fix="run python -m tune_app.check again")
                     or {}).get("spec") == exp.meta.get("spec_path")]
    return max(same_spec, key=lambda p: p.stat().st_mtime) if same_spec else None


def checks_section(exp: Experiment, checks_file: Path, figures: Path) -> list[str]:
    from tune_app.check import LR_FIGURE, summary_lines

    checks = read_json(checks_file, what="the pre-search checks",
                       fix="run python -m tune_app.check again")
    lines = ["## Checks before the search", "",
             f"`python -m tune_app.check` ran on {checks['created']} ({checks['device']}), "
             f"results in `{checks_file.parent}`:", ""]
    if checks.get("base") != exp.meta.get("base"):
        lines += ["> The spec's base configuration changed between these checks and this search; "
                  "run the checks again to be sure they apply.", ""]
    lines += [f"- {line}" for line in summary_lines(checks)] + [""]
    if (checks_file.parent / LR_FIGURE).is_file():
        # A copy, so that the report stays complete when the experiment folder is moved alone.
        source = (checks_file.parent / LR_FIGURE).read_bytes()
        write_atomic(figures / LR_FIGURE, lambda f: f.write(source), binary=True)
        lines += [f"![lr range test]({FIGURES_DIR}/{LR_FIGURE})", ""]
    return lines


# --------------------------------------------------------------------------- report


def header_lines(exp: Experiment) -> list[str]:
    meta, rows = exp.meta, exp.table()
    own = [t for t in exp.trials if not t.origin]
    stopped = sum(1 for t in own if t.status(exp.max_epochs) == STOPPED)
    search, scheduler = meta.get("search", {}), meta.get("scheduler", {})
    from tune_app.tuner.schedulers import summary

    asha = summary(scheduler, stopped)
    subset = meta["base"]["dataset"].get("subset_per_class")
    # A quick run's numbers are not the full dataset's: say so where they are read.
    sample = f" (a sample of {subset} images a class, `dataset.subset_per_class`)" if subset else ""
    earlier = sorted({t.origin for t in exp.trials if t.origin})
    # A warm start's earlier trials were trained (and paid for) in their own experiments.
    warm = (f" {len(exp.trials) - len(own)} of the trials ran in the earlier experiment(s) "
            f"{', '.join(f'`{e}`' for e in earlier)} (warm start, column `from`) and were not trained again."
            if earlier else "")
    lines = [f"# Search report: `{exp.path.name}`", "",
             f"Spec `{meta.get('spec_path')}`, dataset `{meta['base']['dataset']['name']}`{sample}, "
             f"{search.get('algorithm', 'grid')} search: {len(rows)} trials, "
             f"{sum(t.epochs_run for t in own)} epochs trained{' here' if earlier else ''} "
             f"(at most {exp.max_epochs} each); {asha}."
             f"{warm} Search status: **{meta.get('status', 'unknown')}**.", ""]
    if any(not t.diverged for t in exp.ranked()):
        best = exp.best_trial()
        hp = ", ".join(f"{field_name(k)}={v}" for k, v in best.hparams.items()) or "no searched fields"
        epoch = _best_epoch(best, exp.metric, exp.mode).get("epoch")
        picked = (f" It is the best run of the configuration with the best mean over "
                  f"{search.get('num_samples')} seeds (see Configurations)." if exp.seeded else "")
        lines += [f"Best trial: **`{best.name}`** ({hp}): best {exp.metric} "
                  f"**{fmt(best.best(exp.metric, exp.mode))}** at epoch {epoch} of {best.epochs_run}.{picked}", ""]
    return lines


def _md(rows: list[dict], names: dict[str, str]) -> list[str]:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return md_table([names.get(c, c) for c in columns], [[row.get(c) for c in columns] for row in rows])


def table_lines(exp: Experiment) -> list[str]:
    lines = []
    if exp.seeded:
        lines += ["## Configurations, best mean first", "",
                  f"Each configuration ran once per seed; `mean_best_{exp.metric}` averages each run's best, "
                  "`std` and `worst` show how much a single run can mislead. A configuration with a diverged "
                  "run ranks last.", "",
                  *_md(exp.configuration_table(), {"epochs": "epochs run (all seeds)"}), ""]
    return lines + ["## Trials, best first", "",
                    *_md(exp.table(), {"epochs": "epochs run", "val_loss": "val_loss (last)"}), ""]


def write_report(experiment_dir: Path) -> Path:
    exp = load_experiment(experiment_dir)
    if not exp.ranked():
        raise UsageError("no trial of this experiment has finished an epoch yet", file=str(experiment_dir),
                         fix="wait until the search has reported results, or --resume it")
    figures = exp.path / FIGURES_DIR
    figures.mkdir(exist_ok=True)
    lines = header_lines(exp) + table_lines(exp)
    plot_learning_curves(exp, figures / "learning_curves.png")
    lines += ["## Learning curves", "",
              "Every trial's validation accuracy and loss per epoch; an X marks where ASHA stopped a trial, "
              "dotted lines are the epochs at which ASHA compared trials.", "",
              f"![learning curves]({FIGURES_DIR}/learning_curves.png)", ""]
    from tune_app.report_pbt import pbt_section

    lines += pbt_section(exp, figures)
    if plot_hparam_effects(exp, figures / "hparam_effects.png"):
        lines += ["## Effect of each searched hyperparameter", "",
                  f"Best {exp.metric} of every trial against its value (x = stopped early by ASHA, "
                  f"star = best trial). A trial stopped early had fewer epochs to reach its best.", "",
                  f"![hyperparameter effects]({FIGURES_DIR}/hparam_effects.png)", ""]
    from tune_app.report_importance import importance_section
    from tune_app.report_race import race_section

    lines += importance_section(exp, figures)
    lines += race_section(exp, figures)
    from tune_app.report_pareto import pareto_section

    lines += pareto_section(exp, figures)
    best_dir = newest_retrain(exp.path)
    if best_dir is not None:
        lines += retrain_section(exp, best_dir, figures)
    else:
        lines += ["## Best configuration", "",
                  f"Not retrained yet: `python -m tune_app.retrain_best --experiment {exp.path}` trains it "
                  "from scratch and evaluates it once on the test split.", ""]
    checks_file = find_checks(exp)
    if checks_file is not None:
        lines += checks_section(exp, checks_file, figures)
    lines += ["## Live views", "",
              f"- TensorBoard (scalars per trial, HParams tab): `tensorboard --logdir {exp.path.parent}`",
              ""]
    report = exp.path / REPORT_FILE
    write_text_atomic(report, "\n".join(lines))
    return report


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.compare is not None or args.out is not None:
        from tune_app.report_compare import main_compare

        return main_compare(args)
    from tune_app.experiment import newest_experiment
    from tune_app.storage import Location

    location = Location(args.experiment if args.experiment else newest_experiment(args.results))
    report = write_report(location.pull())
    location.push(report.name, FIGURES_DIR)
    pngs = sorted(p.name for p in (report.parent / FIGURES_DIR).glob("*.png"))
    print(f"written: {report} and {report.parent / FIGURES_DIR}/ ({', '.join(pngs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The report's PBT section: the lineage table (who was cloned into whom, with which values) and
each trial's learning rate over the epochs, clone events marked."""

from __future__ import annotations

import math
from pathlib import Path

from tune_app.experiment import Experiment
from tune_app.fileio import save_figure_atomic
from tune_app.lineage import Clone, lineage

PBT_FIGURE = "pbt_lr.png"


def plot_lr(exp: Experiment, events: list[Clone], path: Path) -> None:
    """Each trial's lr per epoch (log scale), its line broken at each clone; a dotted line joins
    the clone's source epoch to the first epoch the clone trained, where a diamond marks it."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    trials = [t for t in exp.trials if t.history]
    palette = colormaps["tab10" if len(trials) <= 10 else "tab20"]
    colors = {t.name: palette(i % palette.N) for i, t in enumerate(trials)}
    lr = {t.name: {int(h["epoch"]): h.get("lr") for h in t.history} for t in trials}
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.subplots()
    starts = {(c.trial, c.epoch) for c in events}
    for trial in trials:
        epochs = sorted(lr[trial.name])
        # Broken at each clone: the epochs after it continue another trial's weights.
        cuts = [0] + [i for i, e in enumerate(epochs) if (trial.name, e) in starts and i] + [len(epochs)]
        for n, (a, b) in enumerate(zip(cuts, cuts[1:])):
            ax.plot(epochs[a:b], [_positive(lr[trial.name][e]) for e in epochs[a:b]], color=colors[trial.name],
                    lw=1.4, marker="o", ms=2.5, label=None if n else trial.name)
    for clone in events:
        to = _positive(lr.get(clone.trial, {}).get(clone.epoch))
        start = _positive(lr.get(clone.source, {}).get(clone.source_epoch))
        if not math.isnan(start) and not math.isnan(to):
            ax.plot([clone.source_epoch, clone.epoch], [start, to], color="0.45", ls=":", lw=1)
        ax.plot(clone.epoch, to, ls="none", marker="D", ms=7, color=colors.get(clone.trial, "0.5"), mec="black",
                mew=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate (log scale)")
    ax.set_xlim(0.5, exp.max_epochs + 0.5)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, which="both", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], ls="none", marker="D", ms=7, color="0.85", mec="black",
                       label="cloned: first epoch on copied weights"),
                Line2D([], [], color="0.45", ls=":", label="from the source's checkpoint")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    fig.suptitle(f"{exp.path.name}: learning rate of each PBT trial ({len(events)} clone(s))")
    save_figure_atomic(fig, path, dpi=110)


def _positive(value) -> float:
    return float(value) if isinstance(value, (int, float)) and value > 0 else float("nan")


def pbt_section(exp: Experiment, figures: Path) -> list[str]:
    """The section's lines; none unless the search ran under scheduler.name: pbt."""
    scheduler = exp.meta.get("scheduler", {})
    if scheduler.get("name") != "pbt":
        return []
    from tune_app.report import md_table

    events = lineage(exp.trials)
    plot_lr(exp, events, figures / PBT_FIGURE)
    lines = ["## Population based training", "",
             f"Every {scheduler.get('perturbation_interval')} epoch(s) the worst "
             f"{scheduler.get('quantile_fraction', 0):.0%} of the trials copied the weights of one of the best and "
             "continued with mutated values. Each row is one clone: from `epoch` on, `trial` trained from the "
             "checkpoint `cloned from` wrote after `its epoch`, with the values after the arrow. The tables above "
             "show each trial's final values; retrain_best takes the best trial's values at its best epoch.", ""]
    if events:
        lines += md_table(["epoch", "trial", "cloned from", "its epoch", "values before -> after"],
                          [[c.epoch, c.trial, c.source, c.source_epoch, c.changes()] for c in events])
    else:
        lines += ["No trial was cloned (the population never had a worst and a best quantile that differed at "
                  "a perturbation)."]
    return lines + ["", f"![learning rate per trial]({figures.name}/{PBT_FIGURE})", ""]

"""The report's race section: the figure, the table, the decision, and how the ranking moved."""

from __future__ import annotations

from pathlib import Path

from typing import Optional

from tune_app.experiment import RESULT_FILE, Experiment, TrialRecord, read_history
from tune_app.fileio import save_figure_atomic
from tune_app.race import RACE_DIR, RUN_PREFIX, load_race, race_rows
from tune_app.selection import Decision, mean_interval

RACE_FIGURE = "race.png"


def plot_race(decision: Decision, seeds: list[int], epochs: int, path: Path) -> None:
    """Per finalist: each seed's final value (a dot), the mean (a bar) and its 95% interval."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(5.0, 1.6 * len(decision.ranked) + 2), 4.2), layout="constrained")
    ax = fig.subplots()
    for x, finalist in enumerate(decision.ranked):
        values = [v for v in finalist.finals if v is not None]
        color = "tab:red" if finalist is decision.pick else "tab:blue"
        offsets = [x + 0.06 * (i - (len(finalist.finals) - 1) / 2) for i in range(len(finalist.finals))]
        ax.plot([o for o, v in zip(offsets, finalist.finals) if v is not None], values, "o", color=color,
                alpha=0.6, ms=5, label="one seed" if x == 0 else None)
        if values:
            mean = sum(values) / len(values)
            ax.hlines(mean, x - 0.25, x + 0.25, color=color, lw=2.5, label="mean" if x == 0 else None)
            interval = mean_interval(values)
            if interval is not None:
                ax.vlines(x + 0.3, *interval, color=color, lw=1.5, label="95% interval" if x == 0 else None)
    ax.set_xticks(range(len(decision.ranked)))
    ax.set_xticklabels([f"{f.label}\n{f.parameters:,} params\n(search #{f.search_rank})" for f in decision.ranked],
                       fontsize=8)
    ax.set_ylabel(f"{decision.metric} at epoch {epochs}")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"race over seeds {', '.join(map(str, seeds))} (red: the pick)", fontsize=10)
    save_figure_atomic(fig, path, dpi=110)


def race_run(exp: Experiment, name: str) -> Optional[TrialRecord]:
    """The race run `name` (race_00003) as a trial record, or None."""
    path = exp.path / RACE_DIR / name
    if not name.startswith(RUN_PREFIX) or not path.is_dir():
        return None
    return TrialRecord(name=name, path=path, hparams={}, history=read_history(path / RESULT_FILE))


def race_section(exp: Experiment, figures: Path) -> list[str]:
    race = load_race(exp.path)
    if race is None:
        return []
    from tune_app.report import _md

    decision = race.decision()
    plan = race.plan
    lines = ["## Race of the finalists", "",
             f"The best {len(plan['finalists'])} configurations of the search trained again for {plan['epochs']} "
             f"epochs with seeds {', '.join(map(str, plan['seeds']))} (a search trial that already was such a run "
             f"counts as one), ranked by the mean {plan['metric']} at the final epoch. `vs leader`: how far the "
             "leader is ahead, paired by seed, with its 95% interval; `tied` = the interval includes 0.", ""]
    if race.missing():
        lines += [f"> {race.missing()} race run(s) have not finished: resume the search to complete the race.", ""]
    lines += [*_md(race_rows(race), {}), ""]
    if decision is None:
        return lines + ["No finalist has finished every run yet.", ""]
    plot_race(decision, plan["seeds"], plan["epochs"], figures / RACE_FIGURE)
    moved = [f"{f.label} #{f.search_rank} -> #{rank}" for rank, f in enumerate(decision.ranked, 1)
             if f.complete and f.search_rank != rank]
    lines += [f"**Decision:** {decision.sentence}.", "",
              "Ranking moved between search and race: " + ("; ".join(moved) if moved else "no (same order)") + ".",
              "", f"![race]({figures.name}/{RACE_FIGURE})", ""]
    return lines

"""The report's parameter-importance section: a bar chart of both evaluators and a table."""

from __future__ import annotations

from pathlib import Path

from tune_app.experiment import Experiment
from tune_app.fileio import save_figure_atomic
from tune_app.importance import EVALUATORS, Importance, compute_importance

IMPORTANCE_FIGURE = "importance.png"
COLORS = {"PED-ANOVA": "tab:blue", "fANOVA": "tab:orange"}


def plot_importance(imp: Importance, title: str, path: Path) -> None:
    """One row per parameter (most important on top), one bar per evaluator that gave scores."""
    from matplotlib.figure import Figure

    rows = imp.rows()
    shown = [e for e in EVALUATORS if e in imp.scores]
    fig = Figure(figsize=(7.5, 1.2 + 0.55 * len(rows) * len(shown)), layout="constrained")
    ax = fig.subplots()
    height = 0.8 / len(shown)
    for i, name in enumerate(shown):
        # Row 0 is the most important: drawn at the top.
        y = [len(rows) - 1 - r + 0.4 - height * (i + 0.5) for r in range(len(rows))]
        shares = [row[name] for row in rows]
        ax.barh(y, shares, height=height * 0.92, color=COLORS[name], label=name)
        for yy, share in zip(y, shares):
            ax.text(share + 0.01, yy, f"{share:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [row["parameter"] for row in reversed(rows)])
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("importance (share of the parameters' total, per method)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title, fontsize=10)
    save_figure_atomic(fig, path, dpi=110)


def importance_section(exp: Experiment, figures: Path) -> list[str]:
    imp = compute_importance(exp)
    notes = [f"> Note: {note}." for note in imp.notes] + ([""] if imp.notes else [])
    if not imp.params:
        return ["## Parameter importance", "", *notes] if notes else []
    from tune_app.report import md_table

    on = imp.computed_on()
    lines = ["## Parameter importance", "",
             f"How much of {exp.metric}'s variation each searched hyperparameter accounts for, by two of Optuna's "
             f"evaluators, computed from the trial folders: **PED-ANOVA** (which values the best trials share, "
             f"against all trials) and **fANOVA** (the share of variance a random forest fitted to the trials "
             f"attributes to each parameter). Each method's shares sum to 1. {on[0].upper()}{on[1:]}.", ""]
    if imp.too_few:
        lines += [f"> **Too few trials to trust this ranking:** {imp.reason}.", ""]
    lines += notes
    lines += [f"> {name} was skipped: {why}." for name, why in imp.skipped.items()] + ([""] if imp.skipped else [])
    if not imp.scores:
        return lines
    rows = imp.rows()
    lines += [*md_table(["parameter", *EVALUATORS], [[r["parameter"], *(r[e] for e in EVALUATORS)] for r in rows]), ""]
    plot_importance(imp, f"{exp.path.name}: importance for {exp.metric} ({imp.trials} trials, epoch {imp.epoch})",
                    figures / IMPORTANCE_FIGURE)
    return lines + [f"![parameter importance]({figures.name}/{IMPORTANCE_FIGURE})", ""]

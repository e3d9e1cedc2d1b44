"""The report's Pareto-front section (search.objectives): the figure, the front's table, the pick."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from tune_app.experiment import Experiment
from tune_app.fileio import read_json, save_figure_atomic
from tune_app.metric_names import label
from tune_app.pareto import Candidate, Front, cost_text, experiment_front, objectives
from tune_app.pick import PickRule, choose, default_rule

FRONT_FIGURE = "pareto_front.png"
# Front members are named on the figure up to this many; beyond, the table names them.
MAX_LABELS = 12


def plot_front(front: Front, pick: Optional[Candidate], rule: str, path: Path) -> None:
    """Every configuration at (cost, metric): the front in red joined by its staircase, the others
    grey, the ones left out (stopped by ASHA, ...) hollow, the pick a star."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.subplots()
    others = [c for c in front.compared if not c.on_front]
    left = [c for c in front.candidates if c.left_out and c.metric is not None and c.cost is not None]
    members = front.members
    if left:
        ax.scatter([c.cost for c in left], [c.metric for c in left], facecolors="none", edgecolors="tab:orange",
                   s=30, label="left out (" + ", ".join(sorted({c.left_out for c in left})) + ")")
    if others:
        ax.scatter([c.cost for c in others], [c.metric for c in others], color="0.55", s=25,
                   label="dominated configuration")
    ax.plot([c.cost for c in members], [c.metric for c in members], "o-", color="tab:red", ms=6,
            # The staircase bounds what the search found: at any cost, the best metric reached for it.
            drawstyle="steps-post", label="Pareto front")
    if pick is not None:
        ax.scatter([pick.cost], [pick.metric], marker="*", s=260, color="gold", edgecolors="black", zorder=5,
                   label=f"pick ({rule})")
    if len(members) <= MAX_LABELS:
        for c in members:
            ax.annotate(c.label, (c.cost, c.metric), textcoords="offset points", xytext=(5, -10), fontsize=7)
    costs = [c.cost for c in front.candidates if c.cost]
    # Parameter counts and FLOPs of a grid over depths and widths span decades.
    if costs and min(costs) > 0 and max(costs) / min(costs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel(f"{front.cost}: {label(front.cost)} (lower is better)")
    better = "higher" if front.mode == "max" else "lower"
    seeds = ", mean over seeds" if any(len(c.trials) > 1 for c in front.candidates) else ""
    ax.set_ylabel(f"{front.metric}: best of each run{seeds} ({better} is better)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{len(members)} of {len(front.compared)} configurations on the front", fontsize=10)
    save_figure_atomic(fig, path, dpi=110)


def _recorded_rule(exp: Experiment) -> Optional[PickRule]:
    """The rule the newest retraining picked by, so that the star is what it trained."""
    from tune_app.report import newest_retrain

    best_dir = newest_retrain(exp.path)
    if best_dir is None:
        return None
    metrics = read_json(best_dir / "metrics.json", what="retrain-best's metrics",
                        fix="run python -m tune_app.retrain_best again (it writes a new best-N folder)")
    pick: dict[str, Any] = (metrics.get("chosen_by") or {}).get("pick_rule") or {}
    return PickRule(pick["rule"], pick.get("tolerance")) if pick.get("rule") else None


def pareto_section(exp: Experiment, figures: Path) -> list[str]:
    if not objectives(exp):
        return []
    from tune_app.report import _md

    front = experiment_front(exp)
    lines = [f"## Pareto front: {front.metric} against {front.cost}", ""]
    left_out = front.left_out_text()
    note = (f" {left_out}: only configurations whose runs all trained every epoch are compared."
            if left_out else "")
    if not front.members:
        return lines + [f"No configuration has run every epoch yet.{note}", ""]
    rule = _recorded_rule(exp) or default_rule(exp)
    choice = choose(exp, rule)
    pick = next((c for c in front.candidates if any(t.name == choice.run for t in c.trials)), None)
    plot_front(front, pick, rule.text(), figures / FRONT_FIGURE)
    seeds = " (mean over its seeds)" if any(len(c.trials) > 1 for c in front.candidates) else ""
    rows = [{**row, front.cost: cost_text(front.cost, row[front.cost])} for row in front.rows()]
    lines += [f"Each configuration at its {front.cost} and its best {front.metric}{seeds}; the front holds those no "
              f"other configuration beats on both.{note}", "",
              *_md(rows, {}), "",
              f"**Pick** (`--pick {rule.text()}`): {choice.sentence}.", "",
              f"![Pareto front]({figures.name}/{FRONT_FIGURE})", ""]
    return lines

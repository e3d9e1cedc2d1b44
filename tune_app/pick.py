"""The configuration retrain_best trains: the race's pick, the search's best without a race, or
with two objectives (search.objectives) the smallest model on the Pareto front within a given
distance of the best metric (`--pick smallest-within 0.01`, the default there)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from tune_app.config import TrialConfig
from tune_app.errors import UsageError
from tune_app.experiment import Experiment
from tune_app.hparams import decode
from tune_app.metric_names import difference_text
from tune_app.spec import SEED_KEY

if TYPE_CHECKING:
    from tune_app.pareto import Candidate, Front

BEST, SMALLEST_WITHIN = "best", "smallest-within"
# 0.01 = 1 point of accuracy (the example): the standard error of an accuracy near 0.5
# measured on 2,500 validation images, so a model that much behind is not measurably worse there.
DEFAULT_TOLERANCE = 0.01
# The distance is compared after a subtraction of two floats: 0.80 - 0.79 is 0.010000000000000009,
# and a model exactly 1 point behind must count as within 0.01.
TOLERANCE_SLACK = 1e-9


@dataclass(frozen=True)
class PickRule:
    name: str  # BEST or SMALLEST_WITHIN
    tolerance: Optional[float] = None  # SMALLEST_WITHIN: in the metric's own units (0.01 = 1 point)

    def text(self) -> str:
        return self.name if self.tolerance is None else f"{self.name} {self.tolerance:g}"


def parse_pick(words: Optional[list[str]]) -> Optional[PickRule]:
    """--pick's words: `best` or `smallest-within POINTS`; None when the flag was not given."""
    if words is None:
        return None
    fix = f"pass --pick {BEST}, or --pick {SMALLEST_WITHIN} 0.01 (within 1 point of the best accuracy)"
    if words == [BEST]:
        return PickRule(BEST)
    if len(words) != 2 or words[0] != SMALLEST_WITHIN:
        raise UsageError(f"unknown rule '{' '.join(words)}'", key="--pick", fix=fix)
    try:
        tolerance = float(words[1])
    except ValueError:
        raise UsageError(f"'{words[1]}' is not a number", key="--pick", fix=fix) from None
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise UsageError(f"the distance must be >= 0, got {words[1]}", key="--pick", fix=fix)
    return PickRule(SMALLEST_WITHIN, tolerance)


def default_rule(experiment: Experiment) -> PickRule:
    """smallest-within 0.01 for a search with two objectives; otherwise the best (or the race's pick)."""
    from tune_app.pareto import objectives

    return PickRule(SMALLEST_WITHIN, DEFAULT_TOLERANCE) if objectives(experiment) else PickRule(BEST)


@dataclass
class Choice:
    stage: str  # "race", "search" or "Pareto front": where the decision was made
    run: str  # the run it is named by (trial_00003, race_00001)
    hparams: dict[str, Any]  # searched values, without train.seed
    epochs: int  # epochs it was judged at
    value: Optional[float]  # the metric it was judged on (race: mean final over seeds; search: best)
    rule: str
    sentence: str
    details: dict[str, Any] = field(default_factory=dict)  # interval, runner-up, per-seed values

    def config(self, experiment: Experiment, seed: int) -> TrialConfig:
        return experiment.base_config().with_overrides({**decode(self.hparams), SEED_KEY: seed,
                                                        "train.epochs": self.epochs})


def choose(experiment: Experiment, rule: Optional[PickRule] = None) -> Choice:
    """rule: how to pick; None = `default_rule`."""
    from tune_app.pareto import experiment_front, objectives

    rule = rule or default_rule(experiment)
    if rule.name == SMALLEST_WITHIN:
        if not objectives(experiment):
            raise UsageError(f"--pick {rule.text()} needs a search with two objectives; this one judged only "
                             f"{experiment.metric}", file=str(experiment.path),
                             fix="leave --pick out (the search's best), or search with search.objectives, "
                             "e.g. [val_accuracy, params]")
        return _front_choice(experiment, experiment_front(experiment), rule)
    choice = _best_choice(experiment)
    if objectives(experiment):  # the front is recorded whichever rule picked
        front = experiment_front(experiment)
        choice.details.update({"pick_rule": {"rule": rule.name}, "objectives": [front.metric, front.cost],
                               "front": front.rows(),
                               "left_out": front.left_out_text()})
    return choice


def _best_choice(experiment: Experiment) -> Choice:
    from tune_app.race import load_race

    race = load_race(experiment.path)
    decision = race.decision() if race is not None and race.missing() == 0 else None
    if decision is None:
        choice = _search_choice(experiment)
        if race is not None:
            choice.sentence += (f"; the race has {race.missing()} unfinished run(s): resume the search "
                                "(--resume) to finish it and retrain its pick")
        return choice
    entry = next(e for e in race.plan["finalists"] if e["label"] == decision.pick.label)
    runner = decision.runner_up
    return Choice(
        stage="race", run=race.run_of(entry, 0), hparams=entry["hparams"], epochs=race.plan["epochs"],
        value=decision.pick.mean,
        rule=f"race of {len(decision.ranked)} finalists over seeds {race.plan['seeds']}: ranked by the mean "
             f"{decision.metric} at epoch {race.plan['epochs']}; a finalist whose paired 95% interval against "
             "the leader includes 0 is tied, and the smallest tied one is picked",
        sentence=decision.sentence,
        details={"leader": decision.leader.label, "pick": decision.pick.label,
                 "per_seed": decision.pick.finals, "parameters": decision.pick.parameters,
                 "runner_up": None if runner is None else runner.other.label,
                 "difference": None if runner is None else runner.difference,
                 "interval": None if runner is None else runner.interval,
                 "seeds": race.plan["seeds"]})


def _search_choice(experiment: Experiment) -> Choice:
    best = experiment.best_trial()
    metric, mode = experiment.metric, experiment.mode
    values = best.hparams
    sentence = f"picked {best.name}: the search's best by {metric} (no race)"
    details: dict[str, Any] = {}
    if experiment.meta.get("scheduler", {}).get("name") == "pbt":
        # A PBT trial trained with values that changed mid-run; a retraining from scratch can
        # hold only one set: the values it had when it reached its best epoch.
        from tune_app.experiment import best_row
        from tune_app.lineage import schedule_sentence, values_at

        row = best_row(best.history, metric, mode) or {}
        values = values_at(row) or best.hparams
        changes = schedule_sentence(best, row.get("epoch"))
        details["pbt"] = {"best_epoch": row.get("epoch"), "changes": changes}
        sentence += (f"; PBT changed its values during the search ({changes}), so it is retrained from scratch "
                     f"with the values it had at its best epoch ({row.get('epoch')}), held constant" if changes else
                     f"; PBT did not change its values before its best epoch ({row.get('epoch')}): it is retrained "
                     "with them")
    hparams = {k: v for k, v in values.items() if k != SEED_KEY}
    cfg = experiment.base_config().with_overrides(decode(values))
    rule = (f"best mean over seeds of each run's best {metric}, then that configuration's best run"
            if experiment.seeded else f"best {metric} of any epoch of any trial")
    return Choice(stage="search", run=best.name, hparams=hparams, epochs=cfg.train.epochs,
                  value=best.best(metric, mode), rule=rule, sentence=sentence,
                  details={"seed": cfg.train.seed, **details})


def smallest_within(front: "Front", tolerance: float) -> "Candidate":
    """The front's cheapest member whose metric is at most `tolerance` from the front's best;
    among equally cheap ones, the better metric."""
    best = front.best()
    sign = 1 if front.mode == "max" else -1
    close = [c for c in front.members if sign * (best.metric - c.metric) <= tolerance + TOLERANCE_SLACK]
    return min(close, key=lambda c: (c.cost, -sign * c.metric))


def _front_choice(experiment: Experiment, front: "Front", rule: PickRule) -> Choice:
    from tune_app.pareto import cost_text

    if not front.members:
        raise UsageError("no configuration of this experiment ran every epoch, so the Pareto front is empty"
                         + (f" ({front.left_out_text()})" if front.left_out_text() else ""),
                         file=str(experiment.path), fix="resume the search (--resume) until trials finish, "
                         "or pass --pick best to retrain the search's best")
    metric, cost, tolerance = front.metric, front.cost, rule.tolerance
    best, pick = front.best(), smallest_within(front, tolerance)
    run = pick.run(metric, front.mode)
    if pick is best:
        sentence = (f"picked {pick.label}: the front's best {metric} ({pick.metric:.4f}); no model within "
                    f"{tolerance:g} of it costs less ({cost} {cost_text(cost, pick.cost)})")
    else:
        share = f"{100 * pick.cost / best.cost:.0f}% of " if best.cost > 0 else ""
        sentence = (f"picked {pick.label}: {cost} {cost_text(cost, pick.cost)}, {share}"
                    f"the best model's {cost_text(cost, best.cost)} ({best.label}), at "
                    f"{difference_text(metric, pick.metric - best.metric)} of {metric} "
                    f"({pick.metric:.4f} against {best.metric:.4f}; allowed: {tolerance:g})")
    seeds = f"mean over each configuration's {len(pick.trials)} seeds of " if len(pick.trials) > 1 else ""
    left_out = front.left_out_text()
    return Choice(
        stage="Pareto front", run=run.name, hparams=pick.hparams,
        epochs=experiment.trial_config(run).train.epochs, value=pick.metric,
        rule=(f"{rule.text()}: on the Pareto front of {metric} ({front.mode}; {seeds}each run's best) and {cost} "
              f"(min), the smallest {cost} whose {metric} is within {tolerance:g} of the front's best"
              + (f"; {left_out} (only configurations whose runs all trained every epoch are compared)"
                 if left_out else "")),
        sentence=sentence,
        details={"seed": experiment.trial_config(run).train.seed,
                 "pick_rule": {"rule": rule.name, "tolerance": tolerance},
                 "objectives": [metric, cost], "front": front.rows(), "left_out": left_out,
                 "best": {"configuration": best.label, metric: best.metric, cost: best.cost}})


def front_summary(experiment: Experiment) -> list[str]:
    """What the search prints after its ranked tables when it had two objectives: the front and
    what retrain_best will pick from it by default."""
    from tune_app.experiment import format_table
    from tune_app.pareto import cost_text, experiment_front, objectives

    if not objectives(experiment):
        return []
    front = experiment_front(experiment)
    left_out = front.left_out_text()
    rows = [{**row, front.cost: cost_text(front.cost, row[front.cost])} for row in front.rows()]
    lines = [f"\nPareto front of {front.metric} and {front.cost}: {len(rows)} of {len(front.compared)} "
             "configurations, cheapest first" + (f" ({left_out})" if left_out else "") + ":",
             format_table(rows)]
    if rows:
        rule = default_rule(experiment)
        choice = _front_choice(experiment, front, rule)
        lines.append(f"retrain_best --pick {rule.text()} (the default): {choice.sentence}")
    return lines

"""How much each searched hyperparameter mattered for the search metric, from tune_app's own
trial folders (any algorithm, with or without ASHA), by Optuna's PED-ANOVA and fANOVA.

The trials are rebuilt as Optuna trials in an in-memory study, so grid and Ray-only searches
get the same analysis as an Optuna search, and optuna.db is not needed.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional

from tune_app.experiment import EXPERIMENT_FILE, Experiment, TrialRecord, best_value
from tune_app.hparams import encode_choice, field_name

PED_ANOVA = "PED-ANOVA"
FANOVA = "fANOVA"
EVALUATORS = (PED_ANOVA, FANOVA)

# Below this many trials an importance ranking is not to be trusted: fANOVA's forest is fitted
# on the trials themselves, and with a handful of them one lucky or unlucky run decides which
# parameter "explains" the spread. Ten is a floor, not a guarantee (Optuna's PED-ANOVA wants 5
# trials in its top group; with the 10% default that is 50 trials).
MIN_TRIALS = 10
# PED-ANOVA compares the parameter values of the best trials with those of all trials. Optuna
# recommends at least 5 trials in that top group, so the group is the best 10% (Optuna's
# default) or, in smaller searches, the best 5 trials; never more than half, past which "the
# best" stops meaning anything.
PED_MIN_TOP = 5
PED_MAX_FRACTION = 0.5


@dataclass
class Importance:
    """Importances of the searched parameters for `metric`, and what they were computed on."""

    metric: str
    mode: str
    params: list[str]  # searched dotted keys with more than one value, in the spec's order
    trials: int = 0  # trials the importances were computed on
    epoch: Optional[int] = None  # each trial scores its best metric over epochs 1..epoch
    max_epochs: int = 0
    asha: bool = False
    left_out: dict[str, int] = field(default_factory=dict)  # why -> how many trials
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # evaluator -> key -> share, sum 1
    skipped: dict[str, str] = field(default_factory=dict)  # evaluator -> why it gave no scores
    top_fraction: Optional[float] = None  # PED-ANOVA's top group, as a fraction of the trials
    top_trials: Optional[int] = None  # trials in that group: more than the fraction's share on ties
    doubts: list[str] = field(default_factory=list)  # why the numbers are not to be trusted (too few)
    notes: list[str] = field(default_factory=list)  # searched parameters that could not be assessed

    @property
    def too_few(self) -> bool:
        return bool(self.doubts)

    @property
    def reason(self) -> str:
        return "; ".join(self.doubts)

    def computed_on(self) -> str:
        """One sentence: which trials, at which epoch, and PED-ANOVA's top group."""
        if not self.trials:
            return "no trial has a finite value of the metric yet"
        if self.epoch == self.max_epochs:
            when = f"epoch {self.epoch} (the last)"
        else:
            stop = "ASHA stopped some trials there" if self.asha else "the others had not gone further"
            when = (f"epoch {self.epoch} of {self.max_epochs}: the deepest epoch every trial reached ({stop}; "
                    "comparing later epochs would compare only the trials that went on)")
        text = f"computed on {self.trials} trials at {when}, each scored by its best {self.metric} up to then"
        if self.left_out:
            text += "; left out: " + ", ".join(f"{n} {why}" for why, n in self.left_out.items())
        if len(self.params) == 1 and self.scores:
            text += ". With one searched parameter, its share is 1 by construction"
        if PED_ANOVA in self.scores and self.top_trials is not None:
            ties = ", ties included" if self.top_trials > math.ceil(self.top_fraction * self.trials) else ""
            text += (f". {PED_ANOVA} rates what sets the best {self.top_fraction:.0%} "
                     f"({self.top_trials} trials{ties}) apart")
        return text

    def rows(self) -> list[dict[str, Any]]:
        """parameter, one column per evaluator; the most important first (fANOVA, else PED-ANOVA)."""
        order = self.scores.get(FANOVA) or self.scores.get(PED_ANOVA) or {}
        keys = sorted(self.params, key=lambda k: -order.get(k, 0.0))
        return [{"parameter": field_name(k),
                 **{e: self.scores[e].get(k) if e in self.scores else None for e in EVALUATORS}}
                for k in keys]


# --------------------------------------------------------------------------- the trials' values


def comparison_epoch(trials: list[TrialRecord]) -> int:
    """The deepest epoch every trial reached.

    Under ASHA that is its first rung: every trial is compared after the same training, as
    ASHA itself compared them. The deeper epochs hold only the trials ASHA kept, chosen on this
    very metric; an importance computed on them would miss the settings that did badly (a too
    large lr), which is where a parameter's effect shows most. A diverged trial does not bound
    the epoch: it would never have gone further, and its best before diverging stands.
    """
    healthy = [t for t in trials if not t.diverged] or trials
    return min(t.epochs_run for t in healthy)


def value_at(trial: TrialRecord, epoch: int, metric: str, mode: str) -> Optional[float]:
    """The trial's best `metric` over epochs 1..epoch (the ranking's rule, cut at `epoch`)."""
    return best_value([h for h in trial.history if h["epoch"] <= epoch], metric, mode)


def distribution(key: str, domain: Any):
    """Optuna's distribution for the recorded domain of `key`, None if it holds one value;
    ValueError for a domain tune_app does not write (an edited experiment.json)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    kind, values = (domain.get("kind"), domain.get("values")) if isinstance(domain, dict) else (None, None)
    if not isinstance(values, list) or not values or (kind not in ("grid", "choice") and len(values) != 2):
        kind = None  # refused below, with the file to fix
    if kind in ("grid", "choice"):
        # Categorical also for numbers: a grid has a few points, not a range to interpolate.
        dist = CategoricalDistribution([encode_choice(v) for v in values])
    elif kind in ("uniform", "loguniform"):
        dist = FloatDistribution(float(values[0]), float(values[1]), log=kind == "loguniform")
    elif kind == "randint":
        dist = IntDistribution(int(values[0]), int(values[1]) - 1)  # tune.randint excludes hi
    else:
        raise ValueError(f"{key}'s search domain in {EXPERIMENT_FILE} is not one tune_app writes ({domain}): "
                         "left out")
    return None if dist.single() else dist


def _contains(dist, value: Any) -> bool:
    """Whether a trial's recorded value lies in the recorded domain (bool is never a number here)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in dist.choices)
    number = (int,) if isinstance(dist, IntDistribution) else (int, float)
    return (isinstance(value, number) and not isinstance(value, bool) and math.isfinite(value)
            and dist.low <= value <= dist.high)


# --------------------------------------------------------------------------- evaluation


def compute_importance(exp: Experiment) -> Importance:
    dists, notes = {}, []
    for key, domain in (exp.meta.get("space") or {}).items():
        # An unreadable domain costs its parameter, not the summary printed after a finished search.
        try:
            dist = distribution(key, domain)
        except ValueError as err:
            notes.append(str(err))
            continue
        if dist is not None:
            dists[key] = dist
    scheduler = exp.meta.get("scheduler") or {}
    result = Importance(metric=exp.metric, mode=exp.mode, params=list(dists), max_epochs=exp.max_epochs,
                        asha=scheduler.get("name") == "asha", notes=notes)
    if not dists:
        return result
    left_out: dict[str, int] = {}

    def leave_out(why: str) -> None:
        left_out[why] = left_out.get(why, 0) + 1

    candidates = []
    for trial in exp.trials:
        if trial.ended == "ERROR":
            leave_out("failed")
        elif trial.best(exp.metric, exp.mode) is None:
            leave_out(f"without a finite {exp.metric}")
        elif not all(k in trial.hparams and _contains(d, encode_choice(trial.hparams[k])) for k, d in dists.items()):
            leave_out("outside the recorded search space")
        else:
            candidates.append(trial)
    result.left_out = left_out
    if not candidates:
        result.doubts.append("no trial has a finite value of the metric")
        return result
    result.epoch = comparison_epoch(candidates)
    points = []
    for trial in candidates:
        value = value_at(trial, result.epoch, exp.metric, exp.mode)
        if value is None:
            leave_out(f"without a finite {exp.metric} by epoch {result.epoch}")
        else:
            points.append(({k: encode_choice(trial.hparams[k]) for k in dists}, value))
    result.trials = len(points)
    if len(points) < MIN_TRIALS:
        result.doubts.append(f"only {len(points)} trials (fewer than {MIN_TRIALS}): one lucky or unlucky "
                               "run can decide the ranking")
    for key in dists:
        if len({repr(p[key]) for p, _ in points}) < 2:
            result.doubts.append(f"{key.split('.', 1)[-1]} took a single value in these trials: "
                                   "its importance cannot be told")
    values = [v for _, v in points]
    if len(points) < 2 or max(values) == min(values):
        why = ("fewer than 2 trials to compare" if len(points) < 2 else
               f"every trial has the same {exp.metric} ({values[0]:g}): there is no spread to attribute")
        result.skipped = {e: why for e in EVALUATORS}
        return result
    result.top_fraction = min(PED_MAX_FRACTION, max(0.1, PED_MIN_TOP / len(points)))
    # As Optuna draws the group: every trial at least as good as the ceil(q * n)-th best.
    ordered = sorted(values, reverse=exp.mode == "max")
    cutoff = ordered[math.ceil(result.top_fraction * len(values)) - 1]
    result.top_trials = sum(1 for v in values if (v >= cutoff if exp.mode == "max" else v <= cutoff))
    study = _study(points, dists, exp.mode)
    for name in EVALUATORS:
        scores, why = _evaluate(study, name, result.top_fraction)
        if scores is None:
            result.skipped[name] = why
        else:
            result.scores[name] = scores
    return result


def _study(points: list[tuple[dict[str, Any], float]], dists: dict[str, Any], mode: str):
    import optuna

    # create_study announces itself on Optuna's logger; this study is a private scratch pad.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    study.add_trials([optuna.trial.create_trial(params=params, distributions=dists, value=value)
                      for params, value in points])
    return study


def _evaluate(study, name: str, top_fraction: float) -> tuple[Optional[dict[str, float]], str]:
    """(parameter -> share, "") or (None, why it was skipped). Never raises for the data's sake:
    importance is a summary printed after the search has finished and saved its results."""
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator, get_param_importances

    evaluator = (PedAnovaImportanceEvaluator(target_quantile=top_fraction) if name == PED_ANOVA
                 else FanovaImportanceEvaluator(seed=0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            scores = get_param_importances(study, evaluator=evaluator)
        except (ValueError, RuntimeError, ArithmeticError) as err:
            return None, f"{type(err).__name__}: {err}"
    # Optuna warns, then returns equal shares, when the top group cannot be told from the rest.
    equal = [str(w.message) for w in caught if "will be equal" in str(w.message)]
    if equal:
        return None, f"the best {top_fraction:.0%} of trials tie with all of them (Optuna: {equal[0]})"
    if not all(math.isfinite(v) for v in scores.values()):
        return None, "it returned a non-finite importance"
    return {k: float(v) for k, v in scores.items()}, ""


# --------------------------------------------------------------------------- console


def summary_lines(imp: Importance) -> list[str]:
    """What the end of a search prints; nothing when no parameter was searched."""
    if not imp.params:
        return [f"\nparameter importance: {note}" for note in imp.notes]
    from tune_app.experiment import format_table

    lines = [f"\nparameter importance for {imp.metric} (each method's shares sum to 1):"]
    if imp.scores:
        lines.append(format_table(imp.rows()))
    lines += [f"{name} skipped: {why}" for name, why in imp.skipped.items()]
    lines.append(imp.computed_on())
    if imp.too_few:
        lines.append(f"too few trials to trust it: {imp.reason}")
    lines += [f"note: {note}" for note in imp.notes]
    return lines


def print_importance(exp: Experiment) -> None:
    for line in summary_lines(compute_importance(exp)):
        print(line)

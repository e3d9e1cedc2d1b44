"""The Pareto front of a two-objective search (search.objectives): the configurations no other
one beats on both the validation metric and the cost.

`non_dominated` is the plain rule on numbers; `experiment_front` applies it to an experiment
folder. Decisions, and why:
- One point per configuration: with several seeds (a seeded grid) its metric is the mean over
  the runs of each run's best, as the configurations table ranks it, and its cost the mean of
  the runs' (latency is timed by each run; params and mflops are the same in every run).
- Only configurations whose every run trained all train.epochs count. A trial ASHA stopped at
  epoch 2 has had less training than one that ran 10, so its accuracy would sit on the front
  for a model the retraining (train.epochs) would make better; a seeded configuration with one
  stopped run would have a mean over its luckier seeds. Diverged, failed and unfinished runs are
  left out too. Every configuration left out is kept with its reason, so the report and
  retrain_best can say how many and why.
- Ties: equal on both objectives, neither dominates, so both stay on the front.
- Optuna's own study holds a front too, but over the judged column (scheduler.judge) of each
  trial's last epoch; this one is computed from result.json like every other ranking here, so
  grid and optuna searches get the same front.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from tune_app.errors import UsageError
from tune_app.experiment import Experiment, TrialRecord
from tune_app.spec import SEED_KEY


def dominates(a: Sequence[float], b: Sequence[float], modes: Sequence[str]) -> bool:
    """Whether `a` is at least as good as `b` in every objective and better in one."""
    signs = [1 if mode == "max" else -1 for mode in modes]
    better_or_equal = all(s * x >= s * y for s, x, y in zip(signs, a, b))
    return better_or_equal and any(s * x > s * y for s, x, y in zip(signs, a, b))


def non_dominated(points: Sequence[Sequence[float]], modes: Sequence[str]) -> list[int]:
    """Indices (in input order) of the points that no other point dominates."""
    return [i for i, p in enumerate(points)
            if not any(dominates(q, p, modes) for j, q in enumerate(points) if j != i)]


@dataclass
class Candidate:
    """One configuration of the search: its runs (one per seed) and where it sits."""

    hparams: dict[str, Any]  # searched values, without train.seed
    trials: list[TrialRecord]
    metric: Optional[float]  # mean over the runs of each run's best value; None if no run has one
    cost: Optional[float]  # mean over the runs of the cost they reported; None if none did
    left_out: Optional[str] = None  # why it is not compared, or None
    on_front: bool = False

    @property
    def label(self) -> str:
        text = ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in self.hparams.items())
        return text or self.trials[0].name

    def run(self, metric: str, mode: str) -> TrialRecord:
        """The run to retrain: the configuration's best run (its seed is the one retrained)."""
        scored = [t for t in self.trials if t.best(metric, mode) is not None]
        sign = -1 if mode == "max" else 1
        return min(scored, key=lambda t: sign * t.best(metric, mode))


@dataclass
class Front:
    metric: str
    mode: str
    cost: str
    candidates: list[Candidate] = field(default_factory=list)  # every configuration, left out or not

    @property
    def compared(self) -> list[Candidate]:
        return [c for c in self.candidates if c.left_out is None]

    @property
    def members(self) -> list[Candidate]:
        """The front, cheapest first."""
        sign = -1 if self.mode == "max" else 1
        return sorted((c for c in self.candidates if c.on_front), key=lambda c: (c.cost, sign * c.metric))

    def best(self) -> Candidate:
        """The front's member with the best metric (the cheapest of those tied on it)."""
        sign = -1 if self.mode == "max" else 1
        return min(self.members, key=lambda c: (sign * c.metric, c.cost))

    def left_out_text(self) -> str:
        """'2 configurations left out: 1 stopped early by ASHA, 1 diverged', or ''."""
        reasons = Counter(c.left_out for c in self.candidates if c.left_out)
        if not reasons:
            return ""
        total = sum(reasons.values())
        return (f"{total} configuration{'s' if total > 1 else ''} left out: "
                + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common()))

    def rows(self) -> list[dict[str, Any]]:
        """The front as a table: cheapest first, with the run that would be retrained."""
        return [{"configuration": c.label, self.metric: c.metric, self.cost: c.cost, "runs": len(c.trials),
                 "trial": c.run(self.metric, self.mode).name} for c in self.members]


def cost_text(cost: str, value: float) -> str:
    """A cost as people read it: 1,234,567 parameters, 12.3 MFLOPs, 0.42 ms."""
    if cost == "params":
        return f"{round(value):,}"
    return f"{value:.3g} ms" if cost == "latency_ms" else f"{value:.3g} MFLOPs"


def objectives(experiment: Experiment) -> list[str]:
    """search.objectives of the experiment ([] for one objective, and for experiments from before)."""
    return list(experiment.meta["search"].get("objectives") or [])


def experiment_front(experiment: Experiment) -> Front:
    found = objectives(experiment)
    if not found:
        raise UsageError("this experiment has one objective, so it has no Pareto front", file=str(experiment.path),
                         fix="search with search.objectives, e.g. [val_accuracy, params]")
    metric, cost = found
    mode = experiment.mode
    front = Front(metric, mode, cost)
    for configuration in experiment.configurations():
        trials = configuration.trials
        bests = configuration.bests(metric, mode)
        costs = [c for c in (_cost(t, cost) for t in trials) if c is not None]
        front.candidates.append(Candidate(
            hparams={k: v for k, v in configuration.hparams.items() if k != SEED_KEY},
            trials=trials,
            metric=statistics.fmean(bests) if bests else None,
            cost=statistics.fmean(costs) if costs else None,
            left_out=_why_left_out(trials, experiment.max_epochs, len(costs), len(bests))))
    compared = front.compared
    for index in non_dominated([(c.metric, c.cost) for c in compared], (mode, "min")):
        compared[index].on_front = True
    return front


def _cost(trial: TrialRecord, cost: str) -> Optional[float]:
    """The cost the trial reported (every epoch carries the same value; the last is taken)."""
    values = [h[cost] for h in trial.history if isinstance(h.get(cost), (int, float)) and math.isfinite(h[cost])]
    return float(values[-1]) if values else None


# status -> why a configuration with a run in that state is not compared (first match wins)
_REASONS = {"error": "failed", "diverged": "diverged", "stopped early": "stopped early by ASHA",
            "interrupted": "not finished", "not started": "not finished"}


def _why_left_out(trials: list[TrialRecord], max_epochs: int, costs: int, bests: int) -> Optional[str]:
    statuses = {t.status(max_epochs) for t in trials}
    for status, reason in _REASONS.items():
        if status in statuses:
            return reason
    if costs < len(trials) or bests < len(trials):
        return "no cost or metric reported"
    return None


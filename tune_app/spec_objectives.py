"""Spec checks of `search.objectives`: a validation metric, then a cost of the model.

Run by `spec.load_spec` before `spec_select.check_selection`, which then checks the metric the
objectives made the search metric (and its mode) like one written as search.metric.

Decisions, and why:
- Exactly two, metric first and cost second. The front trades quality for cost, and the pick
  rule ("the smallest model within N of the best metric") needs one of each; two validation
  metrics mostly move together, and a third objective would need a rule nobody has asked for.
- Each objective is judged in its natural direction (costs: lower), so there is no mode to
  write: a cost maximised, like a metric in the wrong mode (see spec_select), would only pick
  the worst models.
- ASHA stays allowed: it judges the first objective, as it judges search.metric. The costs are
  fixed before the first epoch, so what ASHA cannot see is only that a slow-learning small model
  might end up on the front; the front is drawn from the trials that ran every epoch and says
  how many ASHA stopped (scheduler.name: none gives a full front).
- No race: it ranks configurations by one metric over seeds, and its pick would override the
  front's. The race is off unless asked for, and asking for one is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tune_app.metric_names import COSTS, MEASURES, METRICS

if TYPE_CHECKING:
    from tune_app.spec import ExperimentSpec, _Parser

KEY = "search.objectives"
EXAMPLE = "e.g. [val_accuracy, params]"


def check_objectives(spec: "ExperimentSpec", parser: "_Parser", data: dict[str, Any]) -> None:
    """data: the raw YAML, to tell a search.metric or select.finalists the user wrote from the default."""
    from tune_app.errors import did_you_mean

    objectives = spec.search.objectives
    if not objectives:
        return
    for name in objectives:
        if name not in MEASURES:
            raise parser.error(KEY, f"unknown objective '{name}'", did_you_mean(name, MEASURES))
    if len(set(objectives)) != len(objectives):
        twice = next(n for n in objectives if objectives.count(n) > 1)
        raise parser.error(KEY, f"lists {twice} twice", f"list a validation metric and a cost, {EXAMPLE}")
    if len(objectives) != 2:
        raise parser.error(KEY, f"takes two objectives (a validation metric, then a cost), got {len(objectives)}",
                           f"{EXAMPLE}; for one objective leave objectives out and set search.metric")
    metric, cost = objectives
    if metric in COSTS and cost in METRICS:
        raise parser.error(KEY, f"the first objective is the search metric, so it must be the validation "
                           f"metric, not the cost {metric}", f"write [{cost}, {metric}]")
    if metric in COSTS:
        raise parser.error(KEY, f"the first objective must be a validation metric ({', '.join(METRICS)}), "
                           f"got the cost {metric}", EXAMPLE)
    if cost in METRICS:
        raise parser.error(KEY, f"the second objective must be a cost of the model ({', '.join(COSTS)}), got "
                           f"{cost}", f"e.g. [{metric}, params]")
    written = (data.get("search") or {}).get("metric")
    if written is not None and written != metric:
        raise parser.error("search.metric", f"{written} contradicts search.objectives, whose first objective "
                           f"({metric}) is the search metric", "leave search.metric out, or make the two agree")
    spec.search.metric = metric
    if "finalists" not in (data.get("select") or {}):
        spec.select.finalists = 0
    elif spec.select.finalists >= 2:
        raise parser.error("select.finalists", "the race ranks configurations by one metric, but with "
                           "search.objectives retrain_best picks from the Pareto front",
                           "set select.finalists: 0 (or leave it out), or drop search.objectives")

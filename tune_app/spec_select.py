"""Spec checks of what decides the pick: the metric and its mode, ASHA's judge, the race.

Run by `spec.load_spec` after the search space is known (the race cannot have more finalists
than the space has configurations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tune_app.metric_names import METRICS, natural_mode

if TYPE_CHECKING:
    from tune_app.spec import ExperimentSpec, _Parser

# (dotted key, predicate, message, fix), as spec._VALUE_RULES
_RULES = [
    ("scheduler.ema", lambda v: 0 <= v < 1, "must be in [0, 1)", "e.g. 0.5 (0 judges the last value)"),
    ("select.finalists", lambda v: v >= 0, "must be >= 0", "use 0 for no race, e.g. 3"),
    ("select.seeds", lambda v: v >= 1, "must be >= 1", "e.g. 3"),
    ("select.epochs", lambda v: v >= 0, "must be >= 0", "use 0 for train.epochs"),
]


def check_selection(spec: "ExperimentSpec", parser: "_Parser", data: dict[str, Any]) -> None:
    """data: the raw YAML, to tell a mode the user wrote from the default."""
    from tune_app.errors import did_you_mean

    metric = spec.search.metric
    if metric not in METRICS:
        raise parser.error("search.metric", f"unknown metric '{metric}'", did_you_mean(metric, METRICS))
    natural = natural_mode(metric)
    if "mode" not in (data.get("search") or {}):
        spec.search.mode = natural  # the direction in which the metric is better
    elif spec.search.mode != natural:
        better = "higher" if natural == "max" else "lower"
        raise parser.error("search.mode", f"{metric} is better {better}, so mode {spec.search.mode} "
                           "would pick the worst trials", f"write mode: {natural}, or leave mode out")
    sections = {"scheduler": spec.scheduler, "select": spec.select}
    for key, ok, message, fix in _RULES:
        section, name = key.split(".")
        value = getattr(sections[section], name)
        if not ok(value):
            raise parser.error(key, f"{value!r} {message}", fix)
    finalists = spec.select.finalists
    if spec.scheduler.name == "pbt":
        # A PBT trial's values change mid-run: no fixed configuration of it was ever trained for a
        # race to run again; retrain_best takes the best trial's values at its best epoch.
        if "finalists" in (data.get("select") or {}) and finalists >= 2:
            raise parser.error("select.finalists", f"{finalists} finalists, but pbt trials change their values "
                               "mid-run, so there is no fixed configuration to race",
                               "set select.finalists: 0 (retrain_best takes the best trial's values at its best epoch)")
        spec.select.finalists = finalists = 0
    configurations = spec.grid.size() if spec.search.algorithm == "grid" else spec.search.num_samples
    if "finalists" in (data.get("select") or {}) and finalists > configurations:
        raise parser.error("select.finalists", f"{finalists} finalists, but the search has only "
                           f"{configurations} configuration(s)",
                           f"use at most {configurations}, or 0 for no race")

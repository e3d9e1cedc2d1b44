"""Ray's OptunaSearch over two objectives (search.objectives) while Tune keeps one metric.

Tune hands every searcher the TuneConfig's metric and mode, and OptunaSearch takes them over
its own. Here TuneConfig's metric stays the single judged column that ASHA, the checkpoints and
the live table use, so the searcher must keep the list it was built with: [judged metric, cost].
A module of its own (not a class inside searchers.Optuna.build) so that Tune's pickled searcher
state names an importable class when a search is resumed.
"""

from __future__ import annotations

from ray.tune.search.optuna import OptunaSearch


class TwoObjectiveOptunaSearch(OptunaSearch):
    """An OptunaSearch whose study has two directions (a multi-objective TPE sampler)."""

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        # None keeps the metric and mode lists given to __init__ (OptunaSearch sets only those
        # passed); the search space from the config is still taken.
        return super().set_search_properties(None, None, config, **spec)

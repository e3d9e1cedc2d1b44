"""Which finalist of the race to pick, and how sure the pick is. Pure: numbers in, decision out.

Finalists are ranked by the mean over seeds of the metric at the final epoch. Each other
finalist is compared with the leader seed by seed (the same seed index: same initial weights
and batch order for both configurations), so the seed-to-seed noise they share cancels. The
mean paired difference gets a 95% t-interval; a finalist whose interval includes 0 is tied with
the leader, and among the leader and the tied ones the cheapest (fewest parameters) is picked:
an accuracy difference nobody can tell from noise does not pay for a larger model.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Optional

from tune_app.metric_names import difference_text, interval_text

CONFIDENCE = 0.95


@dataclass
class Finalist:
    label: str  # what the tables and the sentence call it, e.g. "groups=4, lr=0.001"
    parameters: int
    search_rank: int  # rank of the configuration in the search
    finals: list[Optional[float]]  # metric at the final epoch, per seed index (None: no value)
    bests: list[Optional[float]] = field(default_factory=list)  # best epoch's metric, per seed index

    @property
    def complete(self) -> bool:
        return bool(self.finals) and all(_finite(v) for v in self.finals)

    @property
    def mean(self) -> Optional[float]:
        values = [v for v in self.finals if _finite(v)]
        return statistics.fmean(values) if values else None


@dataclass
class Comparison:
    """Leader against one other finalist. difference: mean over seeds of how far the leader is
    ahead (positive = leader better, in the metric's units); interval None under two seeds."""

    other: Finalist
    seeds: int
    difference: Optional[float]
    interval: Optional[tuple[float, float]]

    @property
    def tied(self) -> bool:
        return self.interval is not None and self.interval[0] <= 0 <= self.interval[1]


@dataclass
class Decision:
    metric: str
    mode: str
    ranked: list[Finalist]  # race order; finalists with a missing or diverged run come last
    comparisons: list[Comparison]  # against the leader, in race order
    pick: Finalist
    sentence: str

    @property
    def leader(self) -> Finalist:
        return self.ranked[0]

    @property
    def runner_up(self) -> Optional[Comparison]:
        """The comparison that decided the pick: with the leader when another was picked,
        else with the next finalist."""
        if self.pick is not self.leader:
            return next(c for c in self.comparisons if c.other is self.pick)
        return self.comparisons[0] if self.comparisons else None


def _finite(value: Optional[float]) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student-t critical value (scipy comes with scikit-learn)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, df))


def mean_interval(values: list[float]) -> Optional[tuple[float, float]]:
    """95% t-interval of the mean of `values`; None with fewer than two."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


def compare(leader: Finalist, other: Finalist, mode: str) -> Comparison:
    sign = 1 if mode == "max" else -1
    pairs = [(a, b) for a, b in zip(leader.finals, other.finals) if _finite(a) and _finite(b)]
    diffs = [sign * (a - b) for a, b in pairs]
    return Comparison(other, len(diffs), statistics.fmean(diffs) if diffs else None, mean_interval(diffs))


def decide(finalists: list[Finalist], metric: str, mode: str) -> Decision:
    """Rank, compare with the leader, pick; finalists must hold at least one complete one."""
    complete = [f for f in finalists if f.complete]
    if not complete:
        raise ValueError("no finalist has a final value for every seed")
    sign = -1 if mode == "max" else 1
    ranked = sorted(complete, key=lambda f: sign * f.mean)
    ranked += [f for f in finalists if not f.complete]
    leader = ranked[0]
    comparisons = [compare(leader, f, mode) for f in ranked[1:] if f.complete]
    candidates = [leader] + [c.other for c in comparisons if c.tied]
    pick = min(candidates, key=lambda f: (f.parameters, ranked.index(f)))
    decision = Decision(metric, mode, ranked, comparisons, pick, "")
    decision.sentence = sentence(decision)
    return decision


def sentence(d: Decision) -> str:
    """One sentence: what was picked, and how sure the pick is."""
    leader, pick, m = d.leader, d.pick, d.metric
    seeds = len(leader.finals)
    if pick is not leader:
        c = d.runner_up
        smaller = 100 * (1 - pick.parameters / leader.parameters) if leader.parameters else 0.0
        return (f"picked {pick.label}: tied with the leader {leader.label} (leader ahead by "
                f"{difference_text(m, c.difference)}, 95% interval {interval_text(m, c.interval)} over "
                f"{c.seeds} seeds) and {smaller:.0f}% smaller ({pick.parameters:,} vs {leader.parameters:,} "
                "parameters)")
    c = d.runner_up
    if c is None:
        return f"picked {leader.label}: the only finalist whose {seeds} run(s) all finished"
    ahead = f"ahead of the runner-up {c.other.label} by {difference_text(m, c.difference)}"
    if c.interval is None:
        return (f"picked {leader.label}: {ahead}, from a single paired seed, so there is no interval "
                "and the lead may be noise (raise select.seeds to know)")
    tied = [x.other for x in d.comparisons if x.tied]
    if tied:
        return (f"picked {leader.label}: the leader, {ahead} (95% interval {interval_text(m, c.interval)} "
                f"over {c.seeds} seeds); {len(tied)} finalist(s) tied with it, none smaller")
    return (f"picked {leader.label}: {ahead} (95% interval {interval_text(m, c.interval)} over {c.seeds} "
            "seeds, which excludes 0): a clear winner")

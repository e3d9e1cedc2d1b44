"""What a search may optimise, and the direction each is better in.

One table, read by the spec check, the scheduler column, the ranking, TensorBoard, the race,
the Pareto front and the report: adding a validation metric here (and reporting it from
`training.evaluate`), or a cost (and measuring it in `tune_app.costs`), is all it takes.
"""

from __future__ import annotations

from typing import NamedTuple


class Measure(NamedTuple):
    mode: str  # the natural direction: "max" or "min"
    points: bool  # a fraction: a difference of two values reads as percentage points
    cost: bool  # a cost of the model (search.objectives' second), not a validation metric
    label: str  # what it is, with its unit, as an axis label


MEASURES: dict[str, Measure] = {
    "val_accuracy": Measure("max", True, False, "val accuracy"),
    "val_top5_accuracy": Measure("max", True, False, "val top-5 accuracy"),
    "val_macro_f1": Measure("max", True, False, "val macro-F1"),
    "val_loss": Measure("min", False, False, "val loss"),
    # A model's costs do not change while it trains: measured once per architecture, before the
    # first epoch, on the device the trial trains on (latency), and reported with every epoch.
    "params": Measure("min", False, True, "trainable parameters"),
    "mflops": Measure("min", False, True, "forward MFLOPs per image"),
    "latency_ms": Measure("min", False, True, "inference latency per image (ms, batch of 1)"),
}

# Validation metrics, what search.metric may be: metric -> (natural mode, shown as points).
METRICS: dict[str, tuple[str, bool]] = {n: (m.mode, m.points) for n, m in MEASURES.items() if not m.cost}
COSTS: tuple[str, ...] = tuple(n for n, m in MEASURES.items() if m.cost)


def natural_mode(name: str) -> str:
    return MEASURES[name].mode


def label(name: str) -> str:
    return MEASURES[name].label


def judged_column(metric: str) -> str:
    """The column ASHA compares trials on (see tune_app.judge)."""
    return f"judged_{metric}"


def difference_text(metric: str, value: float) -> str:
    """A difference of two values of `metric` as people read it: points for fractions."""
    return f"{100 * value:+.1f} points" if MEASURES[metric].points else f"{value:+.4f}"


def interval_text(metric: str, interval: tuple[float, float]) -> str:
    if MEASURES[metric].points:
        return f"[{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}] points"
    return f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"


def test_key(metric: str) -> str:
    """The key of the same measure in retrain_best's test numbers (val_macro_f1 -> macro_f1)."""
    return metric.removeprefix("val_")

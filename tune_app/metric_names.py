"""The validation metrics a search may optimise, and the direction each is better in.

One table, read by the spec check, the scheduler column, the ranking, TensorBoard, the race
and the report: adding a metric here (and reporting it from `training.evaluate`) is all it takes.
"""

from __future__ import annotations

# metric -> (natural mode, shown as percentage points when comparing two values)
METRICS: dict[str, tuple[str, bool]] = {
    "val_accuracy": ("max", True),
    "val_top5_accuracy": ("max", True),
    "val_macro_f1": ("max", True),
    "val_loss": ("min", False),
}


def natural_mode(metric: str) -> str:
    return METRICS[metric][0]


def judged_column(metric: str) -> str:
    """The column ASHA compares trials on (see tune_app.judge)."""
    return f"judged_{metric}"


def difference_text(metric: str, value: float) -> str:
    """A difference of two values of `metric` as people read it: points for fractions."""
    return f"{100 * value:+.1f} points" if METRICS[metric][1] else f"{value:+.4f}"


def interval_text(metric: str, interval: tuple[float, float]) -> str:
    if METRICS[metric][1]:
        return f"[{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}] points"
    return f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"


def test_key(metric: str) -> str:
    """The key of the same measure in retrain_best's test numbers (val_macro_f1 -> macro_f1)."""
    return metric.removeprefix("val_")

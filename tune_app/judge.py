"""What ASHA compares at a rung: the metric's last value, its best so far, or a moving average.

A single epoch's validation score is noisy (batch order, augmentation, a lucky last step), and
ASHA stops a trial on one comparison; `best` and `ema` judge on a steadier signal. The value is
reported each epoch as its own column (judged_<metric>), so ASHA, the live table and
result.json all show the number the decision was made on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class Judge:
    kind: str  # "last" | "best" | "ema"
    mode: str  # "max" | "min"
    ema: float = 0.5  # weight kept by the previous average each epoch
    value: Optional[float] = None  # judged value after the last finite epoch

    def update(self, metric: Any) -> Any:
        """The judged value after an epoch whose metric is `metric`."""
        if not isinstance(metric, (int, float)) or not math.isfinite(metric):
            return metric  # a diverged epoch stays visible as such, and leaves the history alone
        if self.value is None or self.kind == "last":
            self.value = float(metric)
        elif self.kind == "best":
            self.value = (max if self.mode == "max" else min)(self.value, float(metric))
        else:
            self.value = self.ema * self.value + (1 - self.ema) * float(metric)
        return self.value

    def state(self) -> dict[str, Any]:
        """Saved in the trial's checkpoint, so a resumed trial judges on its whole history."""
        return {"value": self.value}

    def restore(self, state: Optional[dict[str, Any]]) -> None:
        if state:
            self.value = state.get("value")


def judge_settings(spec) -> dict[str, Any]:
    """What the trainable needs to report the judged column (spec: an ExperimentSpec)."""
    from tune_app.metric_names import judged_column

    return {"metric": spec.search.metric, "mode": spec.search.mode, "kind": spec.scheduler.judge,
            "ema": spec.scheduler.ema, "column": judged_column(spec.search.metric)}

"""The discrete part of a search space, checked and counted per architecture, not per point.

Only model fields can make a configuration unbuildable, so a grid of A architectures and R
combinations of the other fields needs A checks, not A x R: a 10^6-point grid whose model part
has 4 variants loads in milliseconds. Points are produced lazily, in the order of Tune's own
grid expansion (itertools.product over the keys in spec order).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from tune_app.config import ModelConfig

MODEL_PREFIX = "model."


@dataclass(frozen=True)
class Grid:
    values: dict[str, tuple]  # dotted key -> its discrete values, in spec order
    # repr of the model keys' values (lists are unhashable) -> (those values, why that model cannot be built)
    invalid: dict[str, tuple[tuple, str]]

    @property
    def model_keys(self) -> list[str]:
        return [k for k in self.values if k.startswith(MODEL_PREFIX)]

    def _model_combos(self) -> Iterator[tuple]:
        return itertools.product(*(self.values[k] for k in self.model_keys))

    @functools.cached_property
    def architectures(self) -> list[dict[str, Any]]:
        """The buildable combinations of the searched model fields (one empty dict if none is searched)."""
        keys = self.model_keys
        return [dict(zip(keys, c)) for c in self._model_combos() if repr(c) not in self.invalid]

    def dropped_architectures(self) -> list[tuple[dict[str, Any], str]]:
        keys = self.model_keys
        return [(dict(zip(keys, combo)), reason) for combo, reason in self.invalid.values()]

    def points_per_architecture(self) -> int:
        return math.prod(len(v) for k, v in self.values.items() if not k.startswith(MODEL_PREFIX))

    def size(self) -> int:
        """Number of valid points, counted without producing them."""
        return len(self.architectures) * self.points_per_architecture()

    def _all_points(self) -> Iterator[tuple[dict[str, Any], str | None]]:
        keys, model_index = list(self.values), [i for i, k in enumerate(self.values) if k.startswith(MODEL_PREFIX)]
        for combo in itertools.product(*self.values.values()):
            bad = self.invalid.get(repr(tuple(combo[i] for i in model_index)))
            yield dict(zip(keys, combo)), bad[1] if bad else None

    def points(self) -> Iterator[dict[str, Any]]:
        return (point for point, problem in self._all_points() if problem is None)

    def dropped_points(self) -> Iterator[tuple[dict[str, Any], str]]:
        return ((point, problem) for point, problem in self._all_points() if problem is not None)


def build_grid(base: ModelConfig, values: dict[str, tuple],
               problem: Callable[[ModelConfig], str | None]) -> Grid:
    """Check every combination of the searched model fields once with `problem`."""
    model_keys = [k for k in values if k.startswith(MODEL_PREFIX)]
    invalid: dict[str, tuple[tuple, str]] = {}
    for combo in itertools.product(*(values[k] for k in model_keys)):
        fields = {k[len(MODEL_PREFIX):]: v for k, v in zip(model_keys, combo)}
        reason = problem(dataclasses.replace(base, **fields))
        if reason:
            invalid[repr(combo)] = (combo, reason)
    return Grid(dict(values), invalid)

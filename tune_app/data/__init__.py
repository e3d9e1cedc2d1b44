"""Dataset registry: name -> loader. A loader turns a DatasetConfig into a DataBundle."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from tune_app.config import DatasetConfig
from tune_app.data import digits, hub, presets
from tune_app.data.bundle import DataBundle, Split
from tune_app.registry import Registry


@dataclass(frozen=True)
class DatasetEntry:
    load: Callable[[DatasetConfig], DataBundle]
    # (num_classes, channels) cheaply, for --dry-run parameter counts.
    describe: Callable[[DatasetConfig], tuple[int, int]]


DATASETS: Registry[DatasetEntry] = Registry("dataset", "dataset.name")
DATASETS.add("digits", DatasetEntry(digits.load, digits.describe))
for _name, _preset in presets.PRESETS.items():
    DATASETS.add(_name, DatasetEntry(partial(hub.load, preset=_preset), partial(hub.describe, preset=_preset)))


def load_dataset(cfg: DatasetConfig) -> DataBundle:
    return DATASETS[cfg.name].load(cfg)


def describe_dataset(cfg: DatasetConfig) -> tuple[int, int]:
    return DATASETS[cfg.name].describe(cfg)


__all__ = ["DATASETS", "DataBundle", "DatasetEntry", "Split", "describe_dataset", "load_dataset"]

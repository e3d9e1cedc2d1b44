"""Dataset registry: name -> loader. A loader turns a DatasetConfig into a DataBundle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tune_app.config import DatasetConfig
from tune_app.data import digits, presets
from tune_app.data.bundle import DataBundle, Split


@dataclass(frozen=True)
class DatasetEntry:
    load: Callable[[DatasetConfig], DataBundle]
    # (num_classes, channels) cheaply, for --dry-run parameter counts.
    describe: Callable[[DatasetConfig], tuple[int, int]]


DATASETS: dict[str, DatasetEntry] = {
    "digits": DatasetEntry(digits.load, digits.describe),
    **{name: DatasetEntry(presets.loader(name), presets.describer(name)) for name in presets.PRESETS},
}


def load_dataset(cfg: DatasetConfig) -> DataBundle:
    return DATASETS[cfg.name].load(cfg)


def describe_dataset(cfg: DatasetConfig) -> tuple[int, int]:
    return DATASETS[cfg.name].describe(cfg)


__all__ = ["DATASETS", "DataBundle", "DatasetEntry", "Split", "describe_dataset", "load_dataset"]

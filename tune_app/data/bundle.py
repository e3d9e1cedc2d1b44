"""In-memory form of a dataset: uint8 image arrays per split, ready to move to a device once."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import train_test_split

from tune_app.data.stats import channel_stats_uint8

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Split:
    images: np.ndarray  # uint8, (N, C, H, W)
    labels: np.ndarray  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> "Split":
        return Split(self.images[index], self.labels[index])


@dataclass
class DataBundle:
    """Train / val / test splits of one dataset; val selects models, test is read once."""

    name: str
    train: Split
    val: Split
    test: Split
    class_names: list[str]  # what reports show: readable, unique ("Egyptian cat")
    mean: tuple[float, ...]  # per channel, in [0, 1] pixel units
    std: tuple[float, ...]
    # The source's own labels in the same order ("n02124075"); empty: the same as class_names.
    class_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.class_ids:
            self.class_ids = list(self.class_names)
        if len(self.class_ids) != len(self.class_names):
            raise ValueError(f"{len(self.class_ids)} class ids for {len(self.class_names)} class names")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out) with `fraction` of every class held out, reproducibly."""
    index = np.arange(len(labels))
    kept, held = train_test_split(index, test_size=fraction, stratify=labels, random_state=seed)
    return np.sort(kept), np.sort(held)


def normalization(kind: str, train_images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    channels = train_images.shape[1]
    if kind == "imagenet" and channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    if kind == "none":
        return (0.0,) * channels, (1.0,) * channels
    return channel_stats_uint8(train_images)

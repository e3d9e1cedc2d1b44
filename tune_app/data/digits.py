"""The embedded default dataset: scikit-learn's 1,797 real 8x8 handwritten digits (no network)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from tune_app.config import DatasetConfig
from tune_app.data.bundle import DataBundle, Split, normalization, stratified_split


def load(cfg: DatasetConfig) -> DataBundle:
    raw = load_digits()
    # Pixel values are 0..16; scale to the uint8 range every other dataset uses.
    images = np.round(raw.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = raw.target.astype(np.int64)
    rest, test = stratified_split(labels, cfg.test_fraction, cfg.split_seed)
    train_rel, val_rel = stratified_split(labels[rest], cfg.val_fraction, cfg.split_seed)
    train, val = rest[train_rel], rest[val_rel]
    mean, std = normalization(cfg.normalize, images[train])
    return DataBundle(
        name="digits",
        train=Split(images[train], labels[train]),
        val=Split(images[val], labels[val]),
        test=Split(images[test], labels[test]),
        class_names=[str(d) for d in range(10)],
        mean=mean,
        std=std,
    )


def describe(cfg: DatasetConfig) -> tuple[int, int]:
    """(number of classes, image channels) without loading the images."""
    return 10, 1

"""The embedded default dataset: scikit-learn's 1,797 real 8x8 handwritten digits (no network)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from tune_app.config import DatasetConfig
from tune_app.data.bundle import DataBundle, Split, normalization
from tune_app.data.splits import plan_splits


def load(cfg: DatasetConfig) -> DataBundle:
    raw = load_digits()
    # Pixel values are 0..16; scale to the uint8 range every other dataset uses.
    images = np.round(raw.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = raw.target.astype(np.int64)
    names = [str(d) for d in range(10)]
    plan = plan_splits(labels, None, names, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                       seed=cfg.split_seed, source=None, per_class=cfg.subset_per_class)
    train, val, test = plan.train, plan.val, plan.test
    mean, std = normalization(cfg.normalize, images[train])
    return DataBundle(
        name="digits",
        train=Split(images[train], labels[train]),
        val=Split(images[val], labels[val]),
        test=Split(images[test], labels[test]),
        class_names=names,
        mean=mean,
        std=std,
    )


def describe(cfg: DatasetConfig) -> tuple[int, int]:
    """(number of classes, image channels) without loading the images."""
    return 10, 1

"""Seeded stratified hold-outs that also work when classes have only a handful of images."""

from __future__ import annotations

import math

import numpy as np

from tune_app.data.bundle import stratified_split


def _sklearn_can_stratify(labels: np.ndarray, fraction: float) -> bool:
    # train_test_split refuses unless every class has 2 images and each side gets at
    # least one image per class.
    counts = np.bincount(labels) if len(labels) else np.zeros(0, dtype=np.int64)
    present = counts[counts > 0]
    if len(present) == 0 or present.min() < 2:
        return False
    held = math.ceil(fraction * len(labels))
    return held >= len(present) and len(labels) - held >= len(present)


def per_class_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out max(1, round(fraction * n)) images of every class that has 2 or more."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            continue
        count = min(len(members) - 1, max(1, round(fraction * len(members))))
        held.append(rng.choice(members, size=count, replace=False))
    held_index = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_index)
    return kept, held_index


def holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices (kept, held out), stratified by label and reproducible from `seed`.

    scikit-learn's split (the one the reference projects used) whenever it can stratify;
    otherwise, e.g. 3 images a class, every class gives up the same share of its images.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if _sklearn_can_stratify(labels, fraction):
        return stratified_split(labels, fraction, seed)
    return per_class_split(labels, fraction, seed)

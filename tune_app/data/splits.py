"""Seeded stratified hold-outs that also work when classes have only a handful of images,
and `plan_splits`, the one place that decides (and checks) train / val / test before any
image is decoded."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from tune_app.data.bundle import stratified_split
from tune_app.errors import UsageError


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


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class SplitPlan:
    train: np.ndarray  # rows of the train source
    val: np.ndarray  # rows of the train source
    test: np.ndarray  # rows of the test source (all of them), or of the train source when held out


def _names(classes: np.ndarray, class_names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(f"'{class_names[c]}'" if c < len(class_names) else str(c) for c in classes[:limit])
    return shown + (f" and {len(classes) - limit} more" if len(classes) > limit else "")


def _split(train_labels: np.ndarray, has_test: bool, val_fraction: float, test_fraction: float,
           seed: int) -> SplitPlan:
    if has_test:
        rest, test = np.arange(len(train_labels)), np.zeros(0, dtype=np.int64)
    else:
        rest, test = holdout(train_labels, test_fraction, seed)
    kept, held = holdout(train_labels[rest], val_fraction, seed)
    return SplitPlan(rest[kept], rest[held], test)


def _problem(plan: SplitPlan, train_labels: np.ndarray, classes: np.ndarray, has_test: bool) -> Optional[str]:
    """What makes `plan` unusable, or None."""
    if len(plan.val) < len(classes):
        return f"the validation split gets {len(plan.val)} images for {len(classes)} classes"
    if not has_test and len(plan.test) == 0:
        return "the test split gets no image"
    untrained = np.setdiff1d(classes, train_labels[plan.train])
    if len(untrained):
        return f"{len(untrained)} of {len(classes)} classes get no training image"
    return None


def _nearest_working(current: float, works: Callable[[float], bool], smaller_first: bool) -> Optional[float]:
    """The fraction in 0.01 steps nearest to `current` for which `works` holds (error path only).

    Searched first in the direction that usually helps (smaller when training images are
    missing, larger when validation ones are), so the advice is not an odd 0.99.
    """
    steps = [round(f / 100, 2) for f in range(1, 100)]
    below = sorted((f for f in steps if f < current), reverse=True)
    above = [f for f in steps if f > current]
    return next((f for f in (below + above if smaller_first else above + below) if works(f)), None)


def sample_per_class(labels: np.ndarray, per_class: int, seed: int, stream: int) -> np.ndarray:
    """Sorted rows holding `per_class` random images of every class (all of a smaller one).

    Every class is shuffled whatever its size, so the generator's state, and with it the
    sample, depends only on (seed, stream): with one seed a larger sample contains a smaller
    one. `stream` keeps the train and test samples of one seed independent.
    """
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng([seed, stream])
    chosen = [rng.permutation(np.flatnonzero(labels == label))[:per_class] for label in np.unique(labels)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _images_needed(has_test: bool) -> int:
    # One image to train on, one to validate and, when test is held out of train, one to test.
    return 2 if has_test else 3


def plan_splits(train_labels: np.ndarray, test_labels: Optional[np.ndarray], class_names: Sequence[str], *,
                val_fraction: float, test_fraction: float, seed: int, source: Optional[str],
                per_class: int = 0) -> SplitPlan:
    """Train / val (/ test) rows, or a UsageError naming what to change if they cannot work.

    `test_labels` None: test is held out of train with test_fraction. Every class of the
    training data must keep a training image and, since val selects the model, the
    validation split needs at least one image per class; a run whose val split is empty
    would "complete" every trial at accuracy 0.

    `per_class` > 0 (dataset.subset_per_class): first a seeded sample of at most that many
    images of every class is drawn from the training source, and from the test source when
    there is one; everything above then applies to the sample. The test sample is drawn
    from test rows only, so the search still never sees a test image.
    """
    if not per_class:
        return _plan_all(train_labels, test_labels, class_names, val_fraction=val_fraction,
                         test_fraction=test_fraction, seed=seed, source=source)
    has_test = test_labels is not None
    need = _images_needed(has_test)
    if per_class < need:
        roles = "train and validation" if has_test else "train, validation and test"
        raise UsageError(f"{per_class} images a class cannot be split into {roles}",
                         key="dataset.subset_per_class",
                         fix=f"set dataset.subset_per_class to at least {need}, or 0 for every image")
    train_rows = sample_per_class(train_labels, per_class, seed, stream=0)
    test_rows = sample_per_class(test_labels, per_class, seed, stream=1) if has_test else None
    plan = _plan_all(np.asarray(train_labels)[train_rows],
                     None if test_rows is None else np.asarray(test_labels)[test_rows], class_names,
                     val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, source=source)
    # Back from rows of the sample to rows of the sources.
    return SplitPlan(train_rows[plan.train], train_rows[plan.val],
                     (test_rows if test_rows is not None else train_rows)[plan.test])


def _plan_all(train_labels: np.ndarray, test_labels: Optional[np.ndarray], class_names: Sequence[str], *,
              val_fraction: float, test_fraction: float, seed: int, source: Optional[str]) -> SplitPlan:
    """plan_splits over every row of the sources."""
    train_labels = np.asarray(train_labels, dtype=np.int64)
    has_test = test_labels is not None
    where = {"file": source, "key": "dataset.path"} if source else {"key": "dataset.name"}
    counts = np.bincount(train_labels) if len(train_labels) else np.zeros(0, dtype=np.int64)
    classes = np.flatnonzero(counts)
    if len(classes) < 2:
        raise UsageError(f"the training data has {len(train_labels)} images of {len(classes)} class"
                         f"{'' if len(classes) == 1 else 'es'} ({_names(classes, class_names)}); "
                         "a classifier needs at least 2", **where,
                         fix="add a folder (imagefolder) or labelled images of at least one more class")
    if has_test and len(test_labels) == 0:
        raise UsageError("the test split has no images", **where, fix="use a source whose test split has images")
    need = _images_needed(has_test)
    thin = np.flatnonzero((counts > 0) & (counts < need))
    if len(thin):
        roles = "train and validation" if has_test else "train, validation and test"
        raise UsageError(
            f"{len(thin)} of {len(classes)} classes have fewer than {need} images ({_names(thin, class_names)}); "
            f"each needs {need}, one for each of {roles}", **where,
            fix=f"add images so that every class has at least {need}, or remove those classes")
    plan = _split(train_labels, has_test, val_fraction, test_fraction, seed)
    problem = _problem(plan, train_labels, classes, has_test)
    if problem is None:
        return SplitPlan(plan.train, plan.val, np.arange(len(test_labels))) if has_test else plan
    # Enough images per class: the fractions are what to change. Name the one that fixes it.
    for key, current, works in (
            ("dataset.val_fraction", val_fraction, lambda f: _problem(
                _split(train_labels, has_test, f, test_fraction, seed), train_labels, classes, has_test) is None),
            ("dataset.test_fraction", test_fraction, lambda f: _problem(
                _split(train_labels, has_test, val_fraction, f, seed), train_labels, classes, has_test) is None)):
        if key == "dataset.test_fraction" and has_test:
            continue
        value = _nearest_working(current, works, smaller_first="training" in problem)
        if value is not None:
            raise UsageError(f"{problem} with {key} {current:g}", key=key,
                             fix=f"set {key} to {value:g}")
    raise UsageError(f"{problem}", **where, fix="add images to the classes with fewest images")

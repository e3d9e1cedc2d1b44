from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix as sk_confusion, f1_score

from tune_app.metrics import baselines, classification_metrics


def test_matches_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 500)
    preds = np.where(rng.random(500) < 0.6, labels, rng.integers(0, 7, 500))
    m = classification_metrics(labels, preds, 7)
    assert m["accuracy"] == np.mean(labels == preds)
    assert np.isclose(m["macro_f1"], f1_score(labels, preds, average="macro"))
    assert np.array_equal(np.array(m["confusion_matrix"]), sk_confusion(labels, preds, labels=range(7)))
    per_class = [np.mean(preds[labels == c] == c) for c in range(7)]
    assert np.allclose(m["per_class_accuracy"], per_class)


def test_baselines():
    b = baselines(np.array([0, 1, 1, 2]), np.array([1, 1, 0, 2]), 4)
    assert b["majority_class_accuracy"] == 0.5 and b["uniform_random_accuracy"] == 0.25

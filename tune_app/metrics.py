"""Classification metrics from predictions, in plain numpy."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """rows = true class, columns = predicted class."""
    flat = labels.astype(np.int64) * num_classes + preds.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_metrics(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> dict:
    cm = confusion_matrix(labels, preds, num_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0  # macro-F1 over the classes that occur, as scikit-learn's labels= would
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class_accuracy": [float(r) if s else None for r, s in zip(recall, support)],
        "confusion_matrix": cm.tolist(),
    }


def baselines(train_labels: np.ndarray, test_labels: np.ndarray, num_classes: int) -> dict:
    """Accuracy of predicting the train split's majority class, and the expected accuracy of
    uniform random guessing: the floors both reference projects report (M0)."""
    majority = int(np.bincount(train_labels, minlength=num_classes).argmax())
    return {
        "majority_class_accuracy": float(np.mean(test_labels == majority)),
        "uniform_random_accuracy": 1.0 / num_classes,
    }

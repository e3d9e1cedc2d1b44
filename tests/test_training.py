"""train() is plain PyTorch: it learns, it is seeded, and resuming equals not stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tune_app.checkpoint import load_checkpoint, save_checkpoint
from tune_app.config import ModelConfig, TrainConfig, TrialConfig
from tune_app.data import load_dataset
from tune_app.errors import UsageError
from tune_app.training import train


def small_cfg(**train_kwargs) -> TrialConfig:
    kwargs = {"epochs": 4, "batch_size": 64, "lr": 3e-3, "threads": 1, **train_kwargs}
    return TrialConfig(model=ModelConfig(stage_channels=[8, 16, 32], stage_blocks=1),
                       train=TrainConfig(**kwargs))


@pytest.fixture(scope="module")
def digits():
    return load_dataset(TrialConfig().dataset)


def test_digits_splits_are_stratified_disjoint_and_uint8(digits):
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1149, 288, 360)
    assert digits.train.images.dtype == np.uint8 and digits.image_shape == (1, 8, 8)
    for split in (digits.val, digits.test):
        assert np.allclose(np.bincount(split.labels) / len(split), np.bincount(digits.train.labels) / len(digits.train), atol=0.02)
    rows = lambda s: {img.tobytes() + bytes([lab]) for img, lab in zip(s.images, s.labels)}  # noqa: E731
    assert not rows(digits.train) & rows(digits.test) and not rows(digits.val) & rows(digits.test)


def test_train_learns(digits):
    seen = []
    result = train(small_cfg(), lambda m, state: seen.append(m), data=digits)
    losses = [m["train_loss"] for m in seen]
    assert [m["epoch"] for m in seen] == [1, 2, 3, 4]
    assert losses[-1] < 0.5 * losses[0]
    assert seen[-1]["val_accuracy"] > 0.8  # chance is 0.1
    assert result.history == seen and not result.diverged


def test_resume_from_checkpoint_matches_an_uninterrupted_run(digits, tmp_path):
    full = train(small_cfg(), data=digits).history

    def stop_after_two(metrics, state):
        if metrics["epoch"] == 2:
            save_checkpoint(tmp_path, state())

    train(small_cfg(epochs=4), stop_after_two, data=digits)
    state = load_checkpoint(tmp_path)
    assert state["epoch"] == 2 and state["config"]["train"]["lr"] == 3e-3
    resumed = train(small_cfg(), data=digits, resume=state).history
    assert [m["epoch"] for m in resumed] == [3, 4]
    for a, b in zip(full[2:], resumed):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)


def test_divergence_stops_training(digits):
    result = train(small_cfg(lr=1e20, optimizer="sgd", momentum=0.0), data=digits)
    assert result.diverged and math.isnan(result.history[-1]["train_loss"])
    assert len(result.history) < 4


def test_foreign_or_truncated_checkpoint_is_a_usage_error(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="unreadable checkpoint"):
        load_checkpoint(bad)

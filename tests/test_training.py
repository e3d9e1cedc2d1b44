"""train() is plain PyTorch: it learns, it is seeded, and resuming equals not stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tune_app.augment import Augment
from tune_app.checkpoint import load_checkpoint, save_checkpoint
from tune_app.config import ModelConfig, TrainConfig, TrialConfig
from tune_app.data import load_dataset
from tune_app.errors import UsageError
from tune_app import training
from tune_app.training import (DeviceSplit, Normalize, make_optimizer, make_schedule, train,
                               train_one_epoch)


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


def test_resume_with_the_same_config_is_bit_identical(digits, tmp_path):
    # follow_config recomputes the optimiser's values on every resume: with the checkpoint's
    # own config they must come out exactly as the uninterrupted run had them.
    cfg = small_cfg(optimizer="sgd", lr_schedule="cosine", weight_decay=1e-4)
    full = train(cfg, data=digits).history

    def stop_after_two(metrics, state):
        if metrics["epoch"] == 2:
            save_checkpoint(tmp_path, state())

    train(cfg, stop_after_two, data=digits)
    resumed = train(cfg, data=digits, resume=load_checkpoint(tmp_path)).history
    keys = ("train_loss", "val_loss", "val_accuracy", "lr")
    assert [{k: m[k] for k in keys} for m in full[2:]] == [{k: m[k] for k in keys} for m in resumed]


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_with_a_mutated_config_trains_at_the_new_values(digits, tmp_path, schedule):
    # What PBT does: the checkpoint was trained at lr A, the run resumes with lr B (and another
    # weight decay and momentum); the checkpoint's optimiser state must not put A back.
    a = small_cfg(optimizer="sgd", lr=3e-2, weight_decay=0.0, momentum=0.9, lr_schedule=schedule)
    b = small_cfg(optimizer="sgd", lr=5e-3, weight_decay=1e-3, momentum=0.5, lr_schedule=schedule)

    def stop_after_two(metrics, state):
        if metrics["epoch"] == 2:
            save_checkpoint(tmp_path, state())

    train(a, stop_after_two, data=digits)
    saved = []
    resumed = train(b, lambda m, state: saved.append(state()), data=digits,
                    resume=load_checkpoint(tmp_path)).history
    assert [m["epoch"] for m in resumed] == [3, 4]
    # The schedule continued from its position at the new base rate: the same lr as a run that
    # had B from the start reports at these epochs.
    assert [m["lr"] for m in resumed] == [m["lr"] for m in train(b, data=digits).history[2:]]
    assert resumed[0]["lr"] != load_checkpoint(tmp_path)["optimizer"]["param_groups"][0]["lr"]
    group = saved[-1]["optimizer"]["param_groups"][0]
    assert (group["initial_lr"], group["weight_decay"], group["momentum"]) == (5e-3, 1e-3, 0.5)
    assert saved[-1]["schedule"]["base_lrs"] == [5e-3]
    assert all(math.isfinite(m["train_loss"]) for m in resumed)
    assert resumed[-1]["train_loss"] < load_checkpoint(tmp_path)["loss_limit"]


def test_resume_with_another_batch_size_keeps_the_schedule_s_fraction(digits, tmp_path):
    a = small_cfg(lr_schedule="cosine", batch_size=64)

    def stop_after_two(metrics, state):
        if metrics["epoch"] == 2:
            save_checkpoint(tmp_path, state())

    train(a, stop_after_two, data=digits)
    saved = []
    train(small_cfg(lr_schedule="cosine", batch_size=128), lambda m, state: saved.append(state()), data=digits,
          resume=load_checkpoint(tmp_path))
    # 1149 images: 18 steps of 64 or 9 of 128 an epoch; 4 epochs of 128 end at step 36.
    assert saved[-1]["schedule"]["last_epoch"] == 36


def test_resume_refuses_another_optimizer(digits, tmp_path):
    train(small_cfg(epochs=1), lambda m, state: save_checkpoint(tmp_path, state()), data=digits)
    with pytest.raises(ValueError, match="optimizer adam, this run uses sgd"):
        train(small_cfg(optimizer="sgd"), data=digits, resume=load_checkpoint(tmp_path))


def test_divergence_stops_training(digits):
    result = train(small_cfg(lr=1e20, optimizer="sgd", momentum=0.0), data=digits)
    assert result.diverged and math.isnan(result.history[-1]["train_loss"])
    assert len(result.history) < 4


def test_gpu_code_path_bf16_and_channels_last_learns(digits, monkeypatch):
    # What a GPU runs (bf16 autocast, channels_last), switched on for a CPU run: no GPU here.
    monkeypatch.setattr(training, "gpu_features", lambda device: True)
    conv_outputs = set()
    hook = nn.modules.module.register_module_forward_hook(
        lambda module, args, out: conv_outputs.add(out.dtype) if isinstance(module, nn.Conv2d) else None)
    try:
        seen = []
        result = train(small_cfg(epochs=2), lambda m, state: seen.append(m), data=digits)
    finally:
        hook.remove()
    assert conv_outputs == {torch.bfloat16}  # training and evaluation really ran in bf16
    assert all(p.dtype == torch.float32 for p in result.model.parameters())  # weights stay fp32
    conv = next(m for m in result.model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert seen[-1]["train_loss"] < 0.7 * seen[0]["train_loss"] and seen[-1]["val_accuracy"] > 0.5
    assert not result.diverged and all(math.isfinite(m["val_loss"]) for m in seen)


class NanFrom(nn.Module):
    """Counts forward passes; from pass `first_nan` on its logits are NaN."""

    def __init__(self, classes: int, first_nan: int):
        super().__init__()
        self.linear, self.calls, self.first_nan = nn.Linear(64, classes), 0, first_nan

    def forward(self, x):
        self.calls += 1
        logits = self.linear(x.flatten(1))
        return logits * float("nan") if self.calls >= self.first_nan else logits


@pytest.mark.parametrize("check_every, first_nan, passes, diverged", [
    (1, 3, 3, True),      # CPU default: stop at the first bad step, before its update
    (5, 3, 5, True),      # GPU-style deferred read: stop at the next read of the flag
    (5, 10**9, 18, False),  # 1149 images / 64 = 18 steps, none bad: the flag never stops it
])
def test_divergence_flag_is_read_every_check_every_steps(digits, check_every, first_nan, passes, diverged):
    cfg = small_cfg()
    model = NanFrom(digits.num_classes, first_nan)
    optimizer = make_optimizer(model, cfg.train)
    fit = train_one_epoch(model, optimizer, make_schedule(optimizer, cfg.train, 18),
                          DeviceSplit.from_split(digits.train, torch.device("cpu")),
                          Augment(cfg.augment, 1), Normalize(digits.mean, digits.std), cfg.train, 1,
                          check_every=check_every)
    assert model.calls == passes and fit["diverged"] is diverged
    assert math.isnan(fit["train_loss"]) is diverged
    if check_every == 1:  # the update that would have used the NaN loss never ran
        assert torch.isfinite(model.linear.weight).all()


def test_foreign_or_truncated_checkpoint_is_a_usage_error(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="unreadable checkpoint"):
        load_checkpoint(bad)

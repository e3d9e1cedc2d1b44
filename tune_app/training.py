"""Plain PyTorch training: no Ray in here. The search's trainable and retrain-best both call
`train()`; `train_one_epoch` and `evaluate` return metric dicts.

The dataset is moved to the device once as uint8; batches are drawn by index there and
augmented on the device, so nothing per image happens in Python.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from tune_app.augment import Augment
from tune_app.config import TrainConfig, TrialConfig
from tune_app.data import DataBundle, Split, load_dataset
from tune_app.models import build_model

# on_epoch_end(metrics, state): `state()` builds the checkpoint dict only when asked for.
EpochCallback = Callable[[dict[str, Any], Callable[[], dict[str, Any]]], None]


@dataclass
class DeviceSplit:
    images: torch.Tensor  # uint8 (N, C, H, W) on the training device
    labels: torch.Tensor  # int64 (N,)

    @classmethod
    def from_split(cls, split: Split, device: torch.device) -> "DeviceSplit":
        # Arrays from Ray's object store or a memory-mapped cache are read-only; we never write
        # to them, and copying a large dataset per trial is what sharing it avoids.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return cls(torch.from_numpy(np.ascontiguousarray(split.images)).to(device),
                       torch.from_numpy(np.ascontiguousarray(split.labels)).to(device))

    def __len__(self) -> int:
        return self.labels.shape[0]


class Normalize(nn.Module):
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    diverged: bool = False


def limit_threads(cfg: TrainConfig, cpus: float) -> int:
    """Set torch's CPU threads to train.threads, else to the run's CPU share; return it.

    Trials and retrain-best both run under it: more threads than the cores a run was given
    only thrash (on 2 cores, retraining with torch's default took 19.2 s an epoch against
    14.8 s with one thread while a search ran beside it).
    """
    threads = cfg.threads or max(1, int(cpus))
    torch.set_num_threads(threads)
    return threads


def pick_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    # fused: one kernel for the whole update instead of several per parameter group (7.5x
    # faster on CPU for the 1.2M-parameter Tiny ImageNet model; same maths). CPU and CUDA both
    # have it, so the tested path is the one a GPU runs.
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                           momentum=cfg.momentum, nesterov=cfg.momentum > 0, fused=True)


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def follow_config(optimizer: torch.optim.Optimizer, schedule, cfg: TrainConfig, saved: dict[str, Any],
                  images: int) -> None:
    """After a checkpoint's optimizer and schedule state are loaded: the run's own `cfg` wins
    over the hyperparameters saved in that state.

    PBT resumes a trial from a checkpoint (its own or another trial's) with mutated train
    values; load_state_dict alone would silently put the checkpoint's learning rate and weight
    decay back. The schedule keeps its position and continues at the new base rate. With the
    checkpoint's own values (a plain resume) every number is recomputed as the schedule
    computed it, so the run stays bit-identical to one that never stopped.
    saved: the checkpoint's train config; images: training images per epoch.
    """
    if saved.get("optimizer", cfg.optimizer) != cfg.optimizer:
        # Its state (Adam's moments, SGD's momentum buffers) means nothing to another optimiser.
        raise ValueError(f"checkpoint was trained with optimizer {saved['optimizer']}, this run uses "
                         f"{cfg.optimizer}: an optimiser cannot change mid-run")
    old_batch = int(saved.get("batch_size", cfg.batch_size))
    if old_batch != cfg.batch_size:
        # The schedule counts steps; a new batch size changes the steps per epoch, so keep the
        # same fraction of the run.
        old_steps, new_steps = math.ceil(images / old_batch), math.ceil(images / cfg.batch_size)
        schedule.last_epoch = round(schedule.last_epoch * new_steps / old_steps)
    schedule.base_lrs = [cfg.lr for _ in optimizer.param_groups]
    # base_lr * lambda(step): the very expression LambdaLR computes at each step.
    lrs = [base * factor(schedule.last_epoch) for factor, base in zip(schedule.lr_lambdas, schedule.base_lrs)]
    for group, lr in zip(optimizer.param_groups, lrs):
        group["initial_lr"], group["lr"], group["weight_decay"] = cfg.lr, lr, cfg.weight_decay
        if "momentum" in group and "nesterov" in group:  # SGD (adam's groups have betas instead)
            group["momentum"], group["nesterov"] = cfg.momentum, cfg.momentum > 0


def gpu_features(device: torch.device) -> bool:
    """Whether to train with bf16 autocast and channels_last: on CUDA only (on a CPU both are
    slower). One switch, so a test can run the GPU code path on a CPU."""
    return device.type == "cuda"


def _autocast(device: torch.device, enabled: bool):
    # bf16 needs no loss scaling.
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=enabled and gpu_features(device))


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable, x: torch.Tensor,
               y: torch.Tensor, amp: bool = True,
               proceed: Optional[Callable[[torch.Tensor, torch.Tensor], bool]] = None):
    """The one optimisation step of tune_app (training, the checks and the benchmark take it):
    forward under bf16 autocast with channels_last on CUDA, the loss in float32, backward, step.

    proceed(logits, loss), asked between the forward pass and the update, can refuse the update
    (a diverged loss, a target reached). Returns (logits, loss, whether the update was made).
    """
    device = x.device
    if gpu_features(device):
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(device, amp):
        logits = model(x)
        loss = loss_fn(logits.float(), y)
    if proceed is not None and not proceed(logits, loss):
        return logits, loss, False
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return logits, loss, True


# A run has diverged when a step's loss is not finite, or is more than this many times its
# starting point: the first step's loss (before any update), or ln(classes) - the loss of a
# uniform guess - if that is larger. Adam or SGD at lr 1e3 reach finite losses of 1e6-1e15 that
# a NaN check alone calls healthy; a sound run never climbs tenfold above where it began.
LOSS_EXPLOSION_FACTOR = 10.0

# Reading the loss on the host makes the CPU wait for the GPU, and a step of the reference Tiny
# ImageNet model is ~2 ms on an H100: checking every step would stop kernel launches from
# running ahead. So a non-finite loss is folded into a device-side flag, read every this many
# steps (and at the end of the epoch). A CPU has nothing to overlap and checks every step.
DIVERGENCE_CHECK_STEPS = 32


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, schedule, data: DeviceSplit,
                    augment: Augment, normalize: Normalize, cfg: TrainConfig, epoch: int,
                    check_every: Optional[int] = None, loss_limit: Optional[float] = None) -> dict[str, Any]:
    """One pass over `data` in a seeded random order; returns train loss/accuracy, lr and the
    divergence limit in force (`loss_limit`, to pass to the next epoch).

    check_every: steps between reads of the divergence flag (default: 1 on CPU, else
    DIVERGENCE_CHECK_STEPS); the pass stops at the first read that finds a step diverged.
    loss_limit: a step's loss above it means divergence; None (the first epoch) sets it from
    this pass's first step (see LOSS_EXPLOSION_FACTOR).
    """
    model.train()
    device = data.images.device
    # Seeding per epoch makes a resumed run draw the same batches and augmentations as an
    # uninterrupted one.
    torch.manual_seed(cfg.seed * 100_003 + epoch)
    order = torch.randperm(len(data), device=device)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    finite = torch.ones((), device=device, dtype=torch.bool)
    check_every = check_every or (1 if device.type == "cpu" else DIVERGENCE_CHECK_STEPS)
    lr = optimizer.param_groups[0]["lr"]
    limit = None if loss_limit is None else torch.tensor(loss_limit, device=device)
    for step, start in enumerate(range(0, len(data), cfg.batch_size)):
        index = order[start:start + cfg.batch_size]
        if index.numel() < 2 and seen:  # a 1-image batch breaks BatchNorm statistics
            break
        y = data.labels[index]

        def healthy(logits: torch.Tensor, loss: torch.Tensor) -> bool:
            nonlocal limit, finite
            if limit is None:  # kept on the device: no host sync to set it
                chance = math.log(max(logits.shape[1], 2))
                limit = LOSS_EXPLOSION_FACTOR * torch.clamp(loss.detach(), min=chance)
            finite = finite & torch.isfinite(loss.detach()) & (loss.detach() <= limit)
            return (step + 1) % check_every != 0 or bool(finite.item())

        logits, loss, updated = train_step(model, optimizer, loss_fn, normalize(augment(data.images[index])), y,
                                           cfg.amp, healthy)
        if not updated:
            break
        lr = optimizer.param_groups[0]["lr"]
        schedule.step()
        total_loss += loss.detach() * y.shape[0]
        correct += (logits.argmax(1) == y).sum()
        seen += y.shape[0]
    diverged = not finite.item()
    return {
        "train_loss": float("nan") if diverged else (total_loss / max(seen, 1)).item(),
        "train_accuracy": correct.item() / max(seen, 1),
        "lr": lr,
        "diverged": diverged,
        "loss_limit": None if limit is None else float(limit.item()),
    }


@torch.no_grad()
def evaluate(model: nn.Module, data: DeviceSplit, normalize: Normalize, batch_size: int = 1024,
             amp: bool = True, return_predictions: bool = False) -> dict[str, Any]:
    """Loss, top-1 and top-5 accuracy and macro-F1 over `data`; optionally the predicted classes."""
    model.eval()
    device = data.images.device
    confusion = None  # true x predicted counts, kept on the device: one host sync at the end
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    correct5 = torch.zeros((), device=device, dtype=torch.long)
    preds = []
    for start in range(0, len(data), batch_size):
        x = normalize(data.images[start:start + batch_size].float().div_(255.0))
        y = data.labels[start:start + batch_size]
        if gpu_features(device):
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            logits = model(x).float()
        total_loss += nn.functional.cross_entropy(logits, y, reduction="sum")
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct += (top[:, 0] == y).sum()
        correct5 += (top == y[:, None]).any(dim=1).sum()
        classes = logits.shape[1]
        counts = torch.bincount(y * classes + top[:, 0], minlength=classes * classes)
        confusion = counts if confusion is None else confusion + counts
        if return_predictions:
            preds.append(top[:, 0])
    n = max(len(data), 1)
    out: dict[str, Any] = {"loss": (total_loss / n).item(), "accuracy": correct.item() / n,
                           "top5_accuracy": correct5.item() / n,
                           "macro_f1": macro_f1(confusion) if confusion is not None else 0.0}
    if return_predictions:
        out["predictions"] = torch.cat(preds).cpu().numpy() if preds else np.zeros(0, dtype=np.int64)
    return out


def macro_f1(confusion: torch.Tensor) -> float:
    """Macro-F1 from flattened confusion counts, over the classes that occur (as
    metrics.classification_metrics computes it from predictions on the host)."""
    classes = math.isqrt(confusion.numel())
    cm = confusion.reshape(classes, classes).double()
    tp, support, predicted = cm.diagonal(), cm.sum(1), cm.sum(0)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    total = precision + recall
    f1 = torch.where(total > 0, 2 * precision * recall / total.clamp(min=1e-12), torch.zeros_like(tp))
    present = support > 0
    return f1[present].mean().item() if bool(present.any()) else 0.0


def train(cfg: TrialConfig, on_epoch_end: Optional[EpochCallback] = None, *,
          data: Optional[DataBundle] = None, resume: Optional[dict[str, Any]] = None,
          train_split: Optional[Split] = None, epochs: Optional[int] = None) -> TrainResult:
    """Train `cfg` and validate after every epoch.

    data: a prepared bundle (the search shares one across trials); loaded from cfg if None.
    resume: a checkpoint dict from an earlier call; training continues after its epoch.
    train_split / epochs: retrain-best trains on train+val for its own number of epochs.
    """
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    data = data if data is not None else load_dataset(cfg.dataset)
    device = pick_device(tc)
    epochs = epochs or tc.epochs
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(tc.seed)
    model = build_model(cfg.model, data.num_classes, data.image_shape[0]).to(device)
    if gpu_features(device):
        model = model.to(memory_format=torch.channels_last)
    train_data = DeviceSplit.from_split(train_split or data.train, device)
    val_data = DeviceSplit.from_split(data.val, device)
    optimizer = make_optimizer(model, tc)
    steps = math.ceil(len(train_data) / tc.batch_size)
    schedule = make_schedule(optimizer, replace(tc, epochs=epochs), steps)
    augment = Augment(cfg.augment, data.image_shape[0]).to(device)
    normalize = Normalize(data.mean, data.std).to(device)
    start = 1
    loss_limit = None
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        schedule.load_state_dict(resume["schedule"])
        follow_config(optimizer, schedule, tc, resume["config"].get("train", {}), len(train_data))
        start = int(resume["epoch"]) + 1
        # Checkpoints from before the rule lack it: the uniform-guess loss is the fallback.
        loss_limit = resume.get("loss_limit") or LOSS_EXPLOSION_FACTOR * math.log(max(data.num_classes, 2))

    result = TrainResult(model=model)
    for epoch in range(start, epochs + 1):
        began = time.perf_counter()
        fit = train_one_epoch(model, optimizer, schedule, train_data, augment, normalize, tc, epoch,
                              loss_limit=loss_limit)
        loss_limit = fit["loss_limit"]
        val = evaluate(model, val_data, normalize, tc.eval_batch_size, tc.amp)
        metrics = {
            "epoch": epoch,
            "train_loss": fit["train_loss"],
            "train_accuracy": fit["train_accuracy"],
            "val_loss": val["loss"],
            "val_accuracy": val["accuracy"],
            "val_top5_accuracy": val["top5_accuracy"],
            "val_macro_f1": val["macro_f1"],
            "lr": fit["lr"],
            "diverged": fit["diverged"],
            "epoch_time_s": time.perf_counter() - began,
        }
        result.history.append(metrics)

        def state(epoch: int = epoch) -> dict[str, Any]:
            return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(), "epoch": epoch, "config": cfg.to_dict(),
                    "loss_limit": loss_limit,
                    "class_names": list(data.class_names)}

        if on_epoch_end is not None:
            on_epoch_end(metrics, state)
        if fit["diverged"]:
            result.diverged = True
            break
    return result


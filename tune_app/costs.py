"""What a model costs, the second objective of a two-objective search (search.objectives).

params (trainable parameters), mflops (forward FLOPs per image, in millions) and latency_ms
(inference time per image on the trial's device). A trial measures them once, before its first
epoch, and reports them with every epoch's metrics, so that Ray (the Optuna study), result.json
and the report all carry them. Plain PyTorch: no Ray in here.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from typing import Iterable

import torch
from torch import nn

from tune_app.config import ModelConfig
from tune_app.models import build_model, count_parameters
from tune_app.training import gpu_features

# Latency: the first calls pay for allocation, cuDNN's algorithm search and lazy initialisation;
# the median of the timed calls ignores the odd one a neighbouring trial's burst slowed down.
WARMUP_CALLS = 5
TIMED_CALLS = 21

# (architecture, classes, input shape, device, amp, names) -> costs. A worker process runs many
# trials (reuse_actors) and a grid repeats each architecture for every lr: one measurement each.
_CACHE: dict[str, dict[str, float]] = {}


def forward_flops(model: nn.Module, image_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on one image, as torch counts them: 2 per multiply-add of the
    convolutions and matrix products; BatchNorm, ReLU and pooling are not counted. torch's
    counter rather than hooks on Conv2d/Linear so that a model added later is counted whole; its
    first use imports torch._dynamo (seconds, once per worker process)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *image_shape))
    return int(counter.get_total_flops())


def latency_ms(model: nn.Module, image_shape: tuple[int, ...], device: torch.device, amp: bool = True) -> float:
    """Median milliseconds of a forward pass on one image (batch of 1: what one image waits;
    a large batch's time per image is throughput, a different number), run as evaluation runs
    it (bf16 autocast and channels_last on CUDA)."""
    model = model.to(device).eval()
    x = torch.rand(1, *image_shape, device=device)
    if gpu_features(device):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times = []
    with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                         enabled=amp and gpu_features(device)):
        for _ in range(WARMUP_CALLS):
            model(x)
        sync()
        for _ in range(TIMED_CALLS):
            began = time.perf_counter()
            model(x)
            sync()
            times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def measure(cfg: ModelConfig, num_classes: int, image_shape: tuple[int, ...], device: torch.device,
            names: Iterable[str], amp: bool = True) -> dict[str, float]:
    """The costs `names` (of params, mflops, latency_ms) of a freshly built `cfg`, once per
    architecture in this process. A fresh model, not the one being trained: its weights do not
    change the cost, and timing it must not touch the trained model's state."""
    names = tuple(names)
    key = json.dumps([dataclasses.asdict(cfg), num_classes, list(image_shape), str(device), amp, names], sort_keys=True,
                     default=str)
    if key not in _CACHE:
        model = build_model(cfg, num_classes, image_shape[0])
        out: dict[str, float] = {}
        if "params" in names:
            out["params"] = count_parameters(model)
        if "mflops" in names:
            out["mflops"] = forward_flops(model, image_shape) / 1e6
        if "latency_ms" in names:
            out["latency_ms"] = latency_ms(model, image_shape, device, amp)
        _CACHE[key] = out
    return dict(_CACHE[key])

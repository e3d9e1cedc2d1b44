"""A model's costs: parameters as counted everywhere else, FLOPs checked by hand, latency measured
once per architecture."""

from __future__ import annotations

import pytest
import torch

from tune_app import costs
from tune_app.config import ModelConfig
from tune_app.models import build_model, count_parameters

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch):
    monkeypatch.setattr(costs, "_CACHE", {})


def test_params_are_count_parameters():
    cfg = ModelConfig(stage_channels=[8, 16], stage_blocks=[1, 2], block="conv_gconv", groups=4, stem_channels=8,
                      bias=True)
    measured = costs.measure(cfg, 10, (3, 16, 16), CPU, ["params"])
    assert measured == {"params": count_parameters(build_model(cfg, 10, 3))}


def test_mflops_of_a_known_model_by_hand():
    # One stage of one conv3x3 3 -> 4 on 8x8 (padding 1: 8x8 out), then GAP and a linear 4 -> 10.
    # Multiply-adds: conv 8*8 positions x 4 outputs x 3*9 inputs = 6,912; linear 4*10 = 40.
    # torch counts 2 FLOPs a multiply-add; BatchNorm, ReLU and pooling are not counted.
    cfg = ModelConfig(stage_channels=[4], stage_blocks=1)
    assert costs.measure(cfg, 10, (3, 8, 8), CPU, ["mflops"])["mflops"] == pytest.approx(2 * (6912 + 40) / 1e6)
    # A grouped conv does 1/groups of the work: conv_gconv adds a 4 -> 4 conv in 2 groups,
    # 8*8 x 4 x (4/2)*9 = 4,608 multiply-adds.
    grouped = ModelConfig(stage_channels=[4], stage_blocks=1, block="conv_gconv", groups=2)
    assert costs.measure(grouped, 10, (3, 8, 8), CPU, ["mflops"])["mflops"] == \
        pytest.approx(2 * (6912 + 4608 + 40) / 1e6)
    # Per image: the same on a larger picture scales with the positions (16x16: 4x the conv).
    assert costs.measure(cfg, 10, (3, 16, 16), CPU, ["mflops"])["mflops"] == pytest.approx(2 * (4 * 6912 + 40) / 1e6)


def test_latency_is_positive_and_measured_once_per_architecture(monkeypatch):
    calls = []
    real = costs.latency_ms

    def counting(model, image_shape, device, amp=True):
        calls.append(image_shape)
        return real(model, image_shape, device, amp)

    monkeypatch.setattr(costs, "latency_ms", counting)
    small = ModelConfig(stage_channels=[4, 8], stage_blocks=1)
    first = costs.measure(small, 10, (3, 8, 8), CPU, ["params", "latency_ms"])
    assert first["latency_ms"] > 0 and first["params"] == count_parameters(build_model(small, 10, 3))
    # The same architecture again (another lr of the grid, another trial in the same worker): cached.
    assert costs.measure(ModelConfig(stage_channels=[4, 8], stage_blocks=1), 10, (3, 8, 8), CPU,
                         ["params", "latency_ms"]) == first
    assert len(calls) == 1
    costs.measure(ModelConfig(stage_channels=[4, 16], stage_blocks=1), 10, (3, 8, 8), CPU, ["params", "latency_ms"])
    assert len(calls) == 2


def test_a_bigger_model_takes_longer():
    # Far apart on purpose (about 200x the multiply-adds), so that timing noise cannot swap them.
    tiny = costs.measure(ModelConfig(stage_channels=[4], stage_blocks=1), 10, (3, 8, 8), CPU, ["latency_ms"])
    big = costs.measure(ModelConfig(stage_channels=[32, 64], stage_blocks=1), 10, (3, 16, 16), CPU, ["latency_ms"])
    assert big["latency_ms"] > tiny["latency_ms"]


def test_only_the_named_costs_are_measured():
    assert set(costs.measure(ModelConfig(stage_channels=[4], stage_blocks=1), 10, (3, 8, 8), CPU,
                             ["mflops"])) == {"mflops"}

"""The parametric stage CNN builds both reference networks with their exact sizes."""

from __future__ import annotations

import pytest
import torch

from tune_app.config import ModelConfig
from tune_app.models import build_model, count_parameters, model_problem


def cub_model(groups=2, blocks=2) -> ModelConfig:
    return ModelConfig(stage_channels=[64, 128, 256], stage_blocks=blocks, block="conv_gconv",
                       groups=groups, stem_channels=64, bias=True)


def tiny_model(repeats=(2, 2, 2), channels=(64, 128, 256)) -> ModelConfig:
    return ModelConfig(stage_channels=list(channels), stage_blocks=list(repeats), block="conv", bias=False)


def test_cub_reference_parameter_count():
    assert count_parameters(build_model(cub_model(), 200)) == 2_012_488


def test_tiny_imagenet_reference_parameter_count():
    assert count_parameters(build_model(tiny_model(), 200)) == 1_197_704


def test_more_groups_means_fewer_parameters_and_more_blocks_more():
    assert count_parameters(build_model(cub_model(groups=4), 200)) < 2_012_488
    assert count_parameters(build_model(cub_model(blocks=3), 200)) > 2_012_488


@pytest.mark.parametrize("cfg,size", [(cub_model(), 224), (tiny_model(), 64)])
def test_forward_gives_logits_per_class(cfg, size):
    model = build_model(cfg, 200).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 200)


def test_grouped_conv_layers_really_are_grouped():
    model = build_model(cub_model(groups=4), 10)
    groups = [m.groups for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert groups.count(4) == 6 and groups.count(1) == 7  # 3 stages x 2 blocks, plus the stem


def test_invalid_combinations_are_reported():
    assert "does not divide" in model_problem(cub_model(groups=3))
    assert "groups only applies" in model_problem(ModelConfig(block="conv", groups=2))
    assert "entries" in model_problem(ModelConfig(stage_channels=[8, 16], stage_blocks=[1, 1, 1]))
    with pytest.raises(ValueError):
        build_model(cub_model(groups=3), 10)

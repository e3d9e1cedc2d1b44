"""Model registry and the parametric stage CNN that builds both reference networks.

- CUB project: `stem_channels=64, block=conv_gconv, groups=G, bias=True` -> stem conv, then per
  stage N x [conv3x3, grouped conv3x3], max-pool between stages, GAP, linear head.
- Tiny ImageNet project: `stem_channels=0, block=conv, bias=False` -> per stage N x conv3x3.
Every conv is followed by BatchNorm and ReLU.
"""

from __future__ import annotations

import torch
from torch import nn

from tune_app.config import ModelConfig
from tune_app.registry import Registry


# name -> model class: built as cls(cfg, num_classes, in_channels); its static `problem(cfg)` says
# why a configuration cannot be built (None if it can), checked for every grid point at start-up
# so an invalid combination is dropped or refused before any trial runs.
MODELS: Registry[type] = Registry("model", "model.name")


def _conv_bn_relu(cin: int, cout: int, groups: int, bias: bool) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, groups=groups, bias=bias),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def stage_blocks(cfg: ModelConfig) -> list[int]:
    if isinstance(cfg.stage_blocks, int):
        return [cfg.stage_blocks] * len(cfg.stage_channels)
    return list(cfg.stage_blocks)


@MODELS.register("stage_cnn")
class StageCNN(nn.Module):
    def __init__(self, cfg: ModelConfig, num_classes: int, in_channels: int = 3):
        super().__init__()
        problem = model_problem(cfg)
        if problem:
            raise ValueError(problem)
        layers: list[nn.Module] = []
        cin = in_channels
        if cfg.stem_channels:
            layers += _conv_bn_relu(cin, cfg.stem_channels, 1, cfg.bias)
            cin = cfg.stem_channels
        for index, (cout, blocks) in enumerate(zip(cfg.stage_channels, stage_blocks(cfg))):
            if index:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            for _ in range(blocks):
                layers += _conv_bn_relu(cin, cout, 1, cfg.bias)
                if cfg.block == "conv_gconv":
                    layers += _conv_bn_relu(cout, cout, cfg.groups, cfg.bias)
                cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cin, num_classes)

    @staticmethod
    def problem(cfg: ModelConfig) -> str | None:
        blocks = stage_blocks(cfg)
        if len(blocks) != len(cfg.stage_channels):
            return (f"stage_blocks has {len(blocks)} entries but stage_channels has "
                    f"{len(cfg.stage_channels)}")
        if cfg.block == "conv" and cfg.groups != 1:
            return "groups only applies to block: conv_gconv"
        if cfg.block == "conv_gconv":
            bad = [c for c in cfg.stage_channels if c % cfg.groups]
            if bad:
                return f"groups={cfg.groups} does not divide stage channels {bad}"
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.head(self.dropout(x))


def model_problem(cfg: ModelConfig) -> str | None:
    if cfg.name not in MODELS:
        return f"unknown model '{cfg.name}'"
    return MODELS[cfg.name].problem(cfg)


def build_model(cfg: ModelConfig, num_classes: int, in_channels: int = 3) -> nn.Module:
    return MODELS[cfg.name](cfg, num_classes, in_channels)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

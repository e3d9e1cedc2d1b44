"""Batched augmentation on the device, every image drawing its own random parameters.

Flip and crop are small pure functions (airbench style: indexing, no per-image Python);
colour jitter is kornia's, which samples per-image factors on the batch's device.
"""

from __future__ import annotations

import torch
from torch import nn

from tune_app.config import AugmentConfig


def random_hflip(x: torch.Tensor, p: float) -> torch.Tensor:
    if p <= 0:
        return x
    flip = torch.rand(x.shape[0], device=x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_crop(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero-pad by `padding` and crop back to the input size at a random offset per image."""
    if padding <= 0:
        return x
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # n, h, 1
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # n, 1, w
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


class Augment(nn.Module):
    """uint8 batch -> float batch in [0, 1], augmented per sample (train only)."""

    def __init__(self, cfg: AugmentConfig, channels: int):
        super().__init__()
        self.cfg = cfg
        self.jitter = None
        jitter = (cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)
        if any(jitter):
            if channels != 3 and (cfg.saturation or cfg.hue):
                raise ValueError("saturation and hue jitter need RGB images")
            import kornia.augmentation as K  # imported lazily: kornia is slow to import

            self.jitter = K.ColorJitter(*jitter, p=1.0)

    @property
    def active(self) -> bool:
        c = self.cfg
        return bool(c.hflip or c.crop_padding or self.jitter is not None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = random_crop(random_hflip(x, self.cfg.hflip), self.cfg.crop_padding)
        x = x.float().div_(255.0)
        if self.jitter is not None:
            x = self.jitter(x).clamp_(0.0, 1.0)
        return x

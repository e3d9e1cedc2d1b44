"""Batched augmentation: every image draws its own parameters, images keep their place in
the batch (so labels still match), and disabled augmentations are exact identities."""

from __future__ import annotations

import pytest
import torch

from tune_app.augment import Augment, random_crop, random_hflip
from tune_app.config import AugmentConfig

N = 64


def asymmetric_image(size: int = 16) -> torch.Tensor:
    """One uint8 (3, size, size) image that no flip or shift maps onto itself."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)


def same_image_batch(n: int = N, size: int = 16) -> torch.Tensor:
    return asymmetric_image(size).expand(n, -1, -1, -1).contiguous()


def distinct_batch(n: int = N, size: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def distinct_outputs(x: torch.Tensor) -> int:
    return len({tuple(img.flatten().tolist()) for img in x})


# --------------------------------------------------------------------------- per-sample randomness


def test_flip_is_drawn_per_image():
    torch.manual_seed(0)
    x = same_image_batch()
    out = random_hflip(x, 0.5)
    flipped = [bool(torch.equal(o, x[0].flip(-1))) for o in out]
    kept = [bool(torch.equal(o, x[0])) for o in out]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < N - 10  # about half, not all or none


def test_crop_offset_is_drawn_per_image():
    torch.manual_seed(0)
    x = same_image_batch()
    out = random_crop(x, 4)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert distinct_outputs(out) > 20  # 81 possible offsets


def test_colour_jitter_is_drawn_per_image():
    torch.manual_seed(0)
    x = same_image_batch()
    for cfg in (AugmentConfig(brightness=0.2), AugmentConfig(contrast=0.2),
                AugmentConfig(saturation=0.2), AugmentConfig(hue=0.05)):
        out = Augment(cfg, 3)(x)
        assert distinct_outputs(out) > N // 2, cfg


def test_full_augmentation_differs_across_a_batch_of_one_image():
    torch.manual_seed(0)
    cfg = AugmentConfig(hflip=0.5, crop_padding=4, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05)
    assert distinct_outputs(Augment(cfg, 3)(same_image_batch())) == N


# --------------------------------------------------------------------------- labels are kept


def test_flip_keeps_every_image_in_its_place():
    x = distinct_batch()
    assert torch.equal(random_hflip(x, 1.0), x.flip(-1))  # image i -> flipped image i


def test_crop_output_is_a_window_of_its_own_padded_image():
    torch.manual_seed(0)
    pad, x = 3, distinct_batch(16, 12)
    out = random_crop(x, pad)
    padded = torch.nn.functional.pad(x, (pad,) * 4)
    for i in range(len(x)):
        windows = [padded[i, :, dy:dy + 12, dx:dx + 12] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
        assert any(torch.equal(out[i], w) for w in windows), i
        # ...and of no other image's (the batch is not reordered)
        other = (i + 1) % len(x)
        assert not any(torch.equal(out[i], padded[other, :, dy:dy + 12, dx:dx + 12])
                       for dy in range(2 * pad + 1) for dx in range(2 * pad + 1))


def test_augment_only_touches_images_shape_dtype_and_range():
    torch.manual_seed(0)
    cfg = AugmentConfig(hflip=0.5, crop_padding=4, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05)
    x = distinct_batch(8, 20)
    labels = torch.arange(8)
    out = Augment(cfg, 3)(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert 0.0 <= out.min().item() and out.max().item() <= 1.0
    assert torch.equal(labels, torch.arange(8))  # the module never sees or reorders labels
    # With jitter only, each output stays closest to its own input: order is preserved.
    jittered = Augment(AugmentConfig(brightness=0.1, contrast=0.1), 3)(x)
    distances = torch.cdist(jittered.flatten(1), x.float().div(255).flatten(1))
    assert torch.equal(distances.argmin(dim=1), torch.arange(8))


def test_greyscale_batches_get_flip_crop_brightness_and_contrast():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    out = Augment(AugmentConfig(hflip=0.5, crop_padding=2, brightness=0.2, contrast=0.2), 1)(x)
    assert out.shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match="RGB"):
        Augment(AugmentConfig(saturation=0.2), 1)


# --------------------------------------------------------------------------- identities


def test_p0_and_padding0_are_identities():
    x = distinct_batch()
    assert random_hflip(x, 0.0) is x
    assert random_crop(x, 0) is x
    off = Augment(AugmentConfig(), 3)
    assert not off.active
    assert torch.equal(off(x), x.float() / 255.0)


def test_augmentation_is_reproducible_from_the_seed():
    cfg = AugmentConfig(hflip=0.5, crop_padding=4, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05)
    augment, x = Augment(cfg, 3), distinct_batch(16)
    torch.manual_seed(5)
    first = augment(x)
    torch.manual_seed(5)
    assert torch.equal(first, augment(x))

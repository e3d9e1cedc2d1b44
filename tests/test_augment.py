"""Batched augmentation: every image draws its own parameters, images keep their place in
the batch (so labels still match), and disabled augmentations are exact identities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from tune_app.augment import (Augment, adjust_brightness, adjust_contrast, adjust_hue,
                              adjust_saturation, colour_jitter, random_crop, random_hflip)
from tune_app.bench import _shift_hue
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


# --------------------------------------------------------------------------- colour maths vs PIL
# The reference pipeline (tune_app.bench) jitters with PIL; the batched functions must apply the
# same adjustments, or the benchmark would compare different work.


def photo_like_batch(n: int = 24, size: int = 24) -> torch.Tensor:
    """uint8 images with smooth colour gradients plus noise: every hue, some greys."""
    g = torch.Generator().manual_seed(3)
    ramp = torch.linspace(0, 1, size)
    base = torch.stack([ramp[None, :].expand(size, size), ramp[:, None].expand(size, size),
                        1 - ramp[None, :].expand(size, size)])
    mix = torch.rand(n, 3, 3, generator=g) ** 4  # uneven mixes: strongly coloured images
    images = torch.einsum("nij,jhw->nihw", mix / mix.sum(2, keepdim=True), base)
    images = images + 0.1 * torch.rand(n, 3, size, size, generator=g)
    for channel in range(3):  # one pure red, green and blue image: grey is luma, not the mean
        images[channel] = 0
        images[channel, channel] = ramp[None, :]
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


def pil_images(x: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in x]


def from_pil(images: list[Image.Image]) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(i) for i in images])).permute(0, 3, 1, 2).float() / 255


@pytest.mark.parametrize("adjust, enhancer", [(adjust_brightness, ImageEnhance.Brightness),
                                              (adjust_contrast, ImageEnhance.Contrast),
                                              (adjust_saturation, ImageEnhance.Color)])
@pytest.mark.parametrize("factor", [0.0, 0.8, 1.2, 1.7])
def test_enhancements_match_pil(adjust, enhancer, factor):
    x = photo_like_batch()
    ours = adjust(x.float() / 255, torch.full((len(x),), factor))
    theirs = from_pil([enhancer(im).enhance(factor) for im in pil_images(x)])
    # PIL rounds to 8 bits after its blend (and its contrast mean is an integer grey level).
    assert (ours - theirs).abs().max().item() <= 2.5 / 255


@pytest.mark.parametrize("shift", [-0.05, 0.05, 0.3, -0.45])
def test_hue_shift_matches_pil_hsv(shift):
    x = photo_like_batch()
    ours = adjust_hue(x.float() / 255, torch.full((len(x),), shift))
    theirs = from_pil([_shift_hue(im, shift) for im in pil_images(x)])
    unchanged = (x.float() / 255 - theirs).abs().mean().item()
    error = (ours - theirs).abs().mean().item()
    # PIL's HSV is 8-bit in H, S and V, so agreement is to a few grey levels, far below what
    # the shift itself changes.
    assert error < 2.0 / 255 and error < unchanged / 5, (error, unchanged)


def test_hue_shift_is_a_rotation_that_keeps_value_and_chroma():
    x = photo_like_batch().float() / 255
    shift = torch.linspace(-0.5, 0.5, len(x))
    out = adjust_hue(x, shift)
    assert torch.allclose(out.amax(1), x.amax(1), atol=1e-6)   # V
    assert torch.allclose(out.amin(1), x.amin(1), atol=1e-5)   # V - chroma
    assert torch.allclose(adjust_hue(out, -shift), x, atol=1e-5)
    assert torch.allclose(adjust_hue(x, torch.ones(len(x))), x, atol=1e-5)  # a full turn
    assert torch.allclose(adjust_hue(x, torch.zeros(len(x))), x, atol=1e-6)
    grey = x.mean(1, keepdim=True).expand_as(x).contiguous()
    assert torch.allclose(adjust_hue(grey, shift), grey, atol=1e-6)


def test_colour_jitter_factors_stay_in_their_ranges():
    # One colour per image, so each image's factor can be read back from its output.
    torch.manual_seed(0)
    x = torch.full((512, 3, 2, 2), 0.5)
    out = colour_jitter(x, brightness=0.3)
    assert out.min().item() >= 0.7 * 0.5 - 1e-6 and out.max().item() <= 1.3 * 0.5 + 1e-6
    assert out.amin().item() < 0.72 * 0.5 and out.amax().item() > 1.28 * 0.5  # the whole range
    x = torch.tensor([0.8, 0.2, 0.2]).view(1, 3, 1, 1).repeat(512, 1, 1, 1)  # red, hue 0
    out = colour_jitter(x, hue=0.05)
    # Each image's green rises (hue > 0) or blue rises (hue < 0), by at most 0.05 turn.
    rise = (out[:, 1] - 0.2).flatten() - (out[:, 2] - 0.2).flatten()
    assert rise.abs().max().item() <= 0.05 * 6 * 0.6 + 1e-5
    assert (rise > 0).float().mean().item() == pytest.approx(0.5, abs=0.1)

"""Per-channel mean and std of uint8 images, exact and in bounded memory."""

from __future__ import annotations

import numpy as np

# Bytes of images summed at once: integer sums need a uint16 copy (2x), so ~128 MiB peak.
CHUNK_BYTES = 64 * 2 ** 20


def channel_stats_uint8(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std per channel of uint8 (N, C, H, W) images, in [0, 1] pixel units.

    Sums are exact int64 (255^2 fits uint16), so the result does not drift with N and a
    224x224 dataset needs no float64 copy of thousands of images at once.
    """
    n, channels = images.shape[:2]
    per_image = max(1, int(np.prod(images.shape[1:])))
    step = max(1, CHUNK_BYTES // per_image)
    total = np.zeros(channels, dtype=np.int64)
    total_sq = np.zeros(channels, dtype=np.int64)
    for start in range(0, n, step):
        chunk = np.asarray(images[start:start + step]).astype(np.uint16)
        total += chunk.sum(axis=(0, 2, 3), dtype=np.int64)
        chunk *= chunk
        total_sq += chunk.sum(axis=(0, 2, 3), dtype=np.int64)
    count = max(1, n * images.shape[2] * images.shape[3])
    mean = total / (255.0 * count)
    var = total_sq / (255.0 ** 2 * count) - mean ** 2
    std = np.sqrt(np.maximum(var, 1e-12))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)

"""Host time and tensor ops per batch: tune_app's colour jitter against kornia's ColorJitter.

    pip install kornia==0.9.0 && python scripts/bench_colour_jitter.py

kornia is not a dependency of tune_app (this script is why). On a GPU every tensor op is a
kernel launch paid on the host, so a 2x2-pixel batch times the host overhead alone, and a
64x64 batch the CPU arithmetic. One intra-op thread, the Tiny ImageNet recipe.
"""

import time

import kornia.augmentation as K
import torch
from torch.profiler import profile

from tune_app.augment import colour_jitter

torch.set_num_threads(1)
AMOUNTS = (0.2, 0.2, 0.2, 0.05)  # brightness, contrast, saturation, hue
kornia_jitter = K.ColorJitter(*AMOUNTS, p=1.0)
candidates = {"kornia ColorJitter": kornia_jitter, "tune_app colour_jitter": lambda x: colour_jitter(x, *AMOUNTS)}


def ms_per_call(fn, x, calls=50):
    for _ in range(5):
        fn(x)
    began = time.perf_counter()
    for _ in range(calls):
        fn(x)
    return (time.perf_counter() - began) / calls * 1e3


def top_level_ops(fn, x):
    with profile() as prof:
        fn(x)
    return sum(1 for e in prof.events() if e.name.startswith("aten::") and e.cpu_parent is None)


print(f"{'':<24} {'ms, 128x3x2x2':>14} {'ms, 128x3x64x64':>16} {'aten ops':>9}")
for name, fn in candidates.items():
    tiny, full = torch.rand(128, 3, 2, 2), torch.rand(128, 3, 64, 64)
    print(f"{name:<24} {ms_per_call(fn, tiny):>14.3f} {ms_per_call(fn, full):>16.2f} {top_level_ops(fn, tiny):>9}")

"""Benchmark tune_app's data path against the usual per-image DataLoader pipeline.

    python -m tune_app.bench --dataset tiny-imagenet --path ../shared/data/tiny-imagenet-sample

Same model, batch size, images and augmentations on both sides:

(a) tune_app: the decoded uint8 split lives on the device; batches are indexed there and
    flipped / cropped / colour-jittered on the device (tune_app.training.train_one_epoch);
(b) reference: a torch DataLoader over the `datasets` split, every image decoded by PIL,
    resized, augmented with PIL/numpy (flip, pad + random crop, colour jitter), normalised
    and collated in os.cpu_count() worker processes;
(c) data preparation: the first load (cold cache: decode everything) vs the second (warm
    cache: memory-map the arrays);
(d) with --search SPEC (a grid spec) instead: every grid point trained sequentially for the
    spec's train.epochs (the manual grid search), vs `python -m tune_app.search` with its
    scheduler (ASHA) and parallel trials. Both train with tune_app.training.train, so the
    difference is the search strategy alone.
(e) with --overhead [SPEC] instead: what an epoch of a search costs outside training
    (tune_app.bench_overhead).
(f) with --compare-selection SPEC: the hand procedure against the spec's whole procedure, test
    accuracy and epochs (tune_app/bench_selection.py); --judge-ranking DIR...: which
    scheduler.judge ranks finished searches' trials best at the early rungs (tune_app/bench_judge.py).

Each pipeline is timed twice: producing batches alone ("data only"; under 10,000 images, the best
of 3 passes, each a fresh DataLoader for the reference as every epoch of a script is) and training on them.
`--synthetic N` runs (a) and (b) without any dataset files: N generated JPEGs of the real
shape and about the real size (~1.9 KB at 64 px, like Tiny ImageNet's), which the reference
decodes per image every epoch and tune_app decodes once.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch import nn

from tune_app.augment import Augment
from tune_app.bench_overhead import QUICKSTART
from tune_app.config import AugmentConfig, DatasetConfig, ModelConfig, TrainConfig
from tune_app.data import hub
from tune_app.data.bundle import IMAGENET_MEAN, IMAGENET_STD, Split
from tune_app.data.presets import PRESETS
from tune_app.errors import UsageError, cli_entry
from tune_app.fileio import write_json_atomic
from tune_app.flags import check_count
from tune_app.models import build_model
from tune_app.training import (DeviceSplit, Normalize, gpu_features, make_optimizer,
                               make_schedule, train_one_epoch, train_step)

# The Tiny ImageNet project's augmentations (search_spaces/tiny_imagenet_grid.yaml).
DEFAULT_AUGMENT = AugmentConfig(hflip=0.5, crop_padding=4, brightness=0.2, contrast=0.2,
                                saturation=0.2, hue=0.05)


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _procedures(text: str) -> tuple[str, ...]:
    from tune_app.bench_selection import PROCEDURES
    from tune_app.errors import did_you_mean

    names = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    for name in names:
        if name not in PROCEDURES:
            raise UsageError(f"unknown procedure '{name}'", key="--procedures", fix=did_you_mean(name, PROCEDURES))
    if not names:
        raise UsageError("name at least one procedure", key="--procedures", fix="e.g. --procedures hand,tune_app")
    return names


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tune_app.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="tiny-imagenet", choices=sorted(PRESETS))
    parser.add_argument("--path", help="local copy of the dataset (folder or hub id), as dataset.path")
    parser.add_argument("--image-size", type=int, help="resize side in pixels (default: the preset's)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per pipeline")
    parser.add_argument("--limit", type=int, default=512, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--channels", type=_ints, default=[64, 128, 256], help="stage channels, e.g. 64,128,256")
    parser.add_argument("--blocks", type=_ints, default=[2, 2, 2], help="blocks per stage, e.g. 2,2,2")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="DataLoader workers of the reference pipeline")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="no dataset files: both pipelines on N generated JPEGs of the real shape and size")
    parser.add_argument("--search", metavar="SPEC",
                        help="run (d) alone: sequential grid vs tune_app.search on this grid spec")
    parser.add_argument("--compare-selection", metavar="SPEC",
                        help="run the hand procedure (every grid point 3 epochs, best val, retrain 10) and the "
                             "spec's own procedure, --repeats times each, and compare their test accuracy")
    parser.add_argument("--overhead", metavar="SPEC", nargs="?", const=str(QUICKSTART),
                        help="run the search of SPEC (default: the quickstart) --repeats times and report what "
                             "an epoch costs outside training, and the share of core-seconds spent training")
    parser.add_argument("--num-cpus", type=float, default=float(os.cpu_count() or 1),
                        help="CPUs of the Ray instance --overhead's searches start (default: all)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="repetitions of --compare-selection (train.seed, +1, ...) or of --overhead")
    parser.add_argument("--procedures", type=_procedures, default=("hand", "tune_app"),
                        help="procedures --compare-selection runs, comma-separated (default: hand,tune_app)")
    parser.add_argument("--judge-ranking", nargs="+", metavar="DIR",
                        help="experiment folders of searches whose trials all ran train.epochs (no scheduler): how "
                             "well each scheduler.judge kind ranks them at the early rungs against the final epoch")
    parser.add_argument("--cache-dir", help="cache for the timed loads (default: a fresh temporary folder)")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON to OUT")
    args = parser.parse_args(argv)
    for name in ("epochs", "limit", "batch_size", "workers"):
        if getattr(args, name) < (0 if name == "workers" else 1):
            raise UsageError(f"must be >= {0 if name == 'workers' else 1}", key=f"--{name.replace('_', '-')}")
    check_count(args.num_cpus, "--num-cpus", allow_zero=False, example="2")
    if len(args.channels) != len(args.blocks):
        raise UsageError("--channels and --blocks need one value per stage", key="--blocks",
                         fix=f"give {len(args.channels)} values, e.g. {','.join(['2'] * len(args.channels))}")
    return args


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(device: torch.device, work: Callable[[], Any]) -> float:
    _sync(device)
    began = time.perf_counter()
    work()
    _sync(device)
    return time.perf_counter() - began


# A data-only pass over a few hundred images takes well under a second, and the reference's is
# mostly its workers' start-up: one timing of it varied by 2x between runs of the same command.
# Passes over many images are long enough to time once.
DATA_ONLY_REPEATS = 3
DATA_ONLY_REPEAT_BELOW = 10_000  # images per pass


def _best_of(device: torch.device, work: Callable[[], Any], images: int) -> float:
    repeats = DATA_ONLY_REPEATS if images < DATA_ONLY_REPEAT_BELOW else 1
    return min(_timed(device, work) for _ in range(repeats))


# --------------------------------------------------------------------------- (c) data preparation


def data_preparation(cfg: DatasetConfig) -> dict[str, Any]:
    """Seconds of the first load (decodes into an empty cache) and of the second (memory-maps)."""
    from tune_app.data import load_dataset

    began = time.perf_counter()
    bundle = load_dataset(cfg)
    cold = time.perf_counter() - began
    began = time.perf_counter()
    bundle = load_dataset(cfg)
    warm = time.perf_counter() - began
    images = len(bundle.train) + len(bundle.val) + len(bundle.test)
    return {"images": images, "cold_s": cold, "warm_s": warm, "warm_over_cold": warm / cold, "bundle": bundle}


# --------------------------------------------------------------------------- (a) tune_app


class Trainer:
    """One model + optimiser per pipeline, built identically from the same seed."""

    def __init__(self, args: argparse.Namespace, num_classes: int, device: torch.device):
        torch.manual_seed(0)
        self.device = device
        self.cfg = TrainConfig(batch_size=args.batch_size, lr=1e-3, epochs=max(args.epochs, 1),
                               device=device.type, seed=0)
        model_cfg = ModelConfig(stage_channels=args.channels, stage_blocks=args.blocks, block="conv")
        self.model = build_model(model_cfg, num_classes, 3).to(device)
        if gpu_features(device):
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, self.cfg)
        self.schedule = make_schedule(self.optimizer, self.cfg, 1_000_000)
        self.loss_fn = nn.CrossEntropyLoss()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The step train_one_epoch takes, for batches that arrive from a DataLoader."""
        train_step(self.model, self.optimizer, self.loss_fn, x, y, self.cfg.amp)
        self.schedule.step()


def tune_app_pipeline(split: Split, mean, std, num_classes: int, args: argparse.Namespace,
                      device: torch.device) -> dict[str, Any]:
    data = DeviceSplit.from_split(split, device)
    augment = Augment(DEFAULT_AUGMENT, 3).to(device)
    normalize = Normalize(mean, std).to(device)
    trainer = Trainer(args, num_classes, device)
    n, batch = len(data), args.batch_size

    def produce() -> None:
        order = torch.randperm(n, device=device)
        for start in range(0, n, batch):
            index = order[start:start + batch]
            normalize(augment(data.images[index]))

    def fit(epoch: int) -> None:
        train_one_epoch(trainer.model, trainer.optimizer, trainer.schedule, data, augment, normalize,
                        trainer.cfg, epoch)

    warm = DeviceSplit(data.images[:2 * batch], data.labels[:2 * batch])  # kernels, cudnn autotune
    train_one_epoch(trainer.model, trainer.optimizer, trainer.schedule, warm, augment, normalize,
                    trainer.cfg, 0)
    produce_s = _best_of(device, lambda: [produce() for _ in range(args.epochs)], n * args.epochs)
    train_s = _timed(device, lambda: [fit(e) for e in range(1, args.epochs + 1)])
    images = n * args.epochs
    return {"images": images, "data_only_s": produce_s, "data_only_images_per_s": images / produce_s,
            "train_s": train_s, "train_images_per_s": images / train_s}


# --------------------------------------------------------------------------- (b) reference


def reference_augment(image: Image.Image, cfg: AugmentConfig) -> np.ndarray:
    """torchvision-style PIL/numpy augmentation: flip, pad + random crop, colour jitter.

    Uses the `random` module, which DataLoader reseeds in every worker.
    """
    if random.random() < cfg.hflip:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    jitters = []
    if cfg.brightness:
        jitters.append(lambda im, f=random.uniform(1 - cfg.brightness, 1 + cfg.brightness):
                       ImageEnhance.Brightness(im).enhance(f))
    if cfg.contrast:
        jitters.append(lambda im, f=random.uniform(1 - cfg.contrast, 1 + cfg.contrast):
                       ImageEnhance.Contrast(im).enhance(f))
    if cfg.saturation:
        jitters.append(lambda im, f=random.uniform(1 - cfg.saturation, 1 + cfg.saturation):
                       ImageEnhance.Color(im).enhance(f))
    if cfg.hue:
        jitters.append(lambda im, f=random.uniform(-cfg.hue, cfg.hue): _shift_hue(im, f))
    random.shuffle(jitters)  # ColorJitter applies its four adjustments in random order
    for jitter in jitters:
        image = jitter(image)
    pixels = np.asarray(image, dtype=np.uint8)
    pad = cfg.crop_padding
    if pad:
        height, width = pixels.shape[:2]
        padded = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)))
        dy, dx = random.randint(0, 2 * pad), random.randint(0, 2 * pad)
        pixels = padded[dy:dy + height, dx:dx + width]
    return pixels


def _shift_hue(image: Image.Image, fraction: float) -> Image.Image:
    hsv = np.array(image.convert("HSV"), dtype=np.uint8)
    hsv[..., 0] += np.uint8(round(fraction * 255) % 256)  # wraps around the colour wheel
    return Image.fromarray(hsv, "HSV").convert("RGB")


class ReferenceDataset(torch.utils.data.Dataset):
    """Per-image decode, resize, augment and normalise, the way a torchvision pipeline does."""

    def __init__(self, rows: Any, image_column: str, label_column: str, size: tuple[int, int],
                 mean, std, augment: AugmentConfig):
        self.rows, self.image_column, self.label_column = rows, image_column, label_column
        self.size = size
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        row = self.rows[index]  # `datasets` decodes the image with PIL here
        image = row[self.image_column].convert("RGB")
        height, width = self.size
        if image.size != (width, height):
            image = image.resize((width, height), Image.BILINEAR)
        pixels = reference_augment(image, self.augment).astype(np.float32) / 255.0
        pixels = (pixels - self.mean) / self.std
        return torch.from_numpy(pixels.transpose(2, 0, 1).copy()), int(row[self.label_column])


class JpegRows:
    """Rows as a `datasets` split yields them, {"image": PIL image, "label": int}, decoded on access."""

    def __init__(self, jpegs: list[bytes], labels: np.ndarray, image_column: str = "image",
                 label_column: str = "label"):
        self.jpegs, self.labels = jpegs, labels
        self.columns = (image_column, label_column)

    def __len__(self) -> int:
        return len(self.jpegs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_column, label_column = self.columns
        return {image_column: Image.open(io.BytesIO(self.jpegs[index])), label_column: int(self.labels[index])}


def synthetic_jpegs(count: int, side: int, classes: int, seed: int = 0) -> tuple[Split, JpegRows]:
    """`count` JPEGs of side x side with smooth content plus mild noise, so that they compress to
    about what photos do (~1.9 KB at 64 px, as Tiny ImageNet's), and their decoded pixels.

    Both pipelines get the same images: the reference decodes the JPEGs every epoch, tune_app
    trains on the array decoded once (what its cache holds).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count).astype(np.int64)
    images = np.empty((count, 3, side, side), dtype=np.uint8)
    jpegs = []
    low = max(side // 4, 1)
    for start in range(0, count, 1024):  # bounded memory for the float intermediate
        n = min(1024, count - start)
        coarse = torch.from_numpy(rng.integers(0, 256, (n, 3, low, low)).astype(np.float32))
        smooth = nn.functional.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False)
        pixels = np.clip(smooth.numpy() + rng.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8)
        for i in range(n):
            buffer = io.BytesIO()
            Image.fromarray(pixels[i].transpose(1, 2, 0)).save(buffer, format="JPEG", quality=75)
            jpegs.append(buffer.getvalue())
            images[start + i] = np.asarray(Image.open(buffer).convert("RGB")).transpose(2, 0, 1)
    return Split(images, labels), JpegRows(jpegs, labels)


def reference_pipeline(rows: Any, columns: tuple[str, str], size: tuple[int, int], mean, std,
                       num_classes: int, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    dataset = ReferenceDataset(rows, *columns, size, mean, std, DEFAULT_AUGMENT)
    trainer = Trainer(args, num_classes, device)

    def loader(count: Optional[int] = None) -> torch.utils.data.DataLoader:
        subset = dataset if count is None else torch.utils.data.Subset(dataset, range(count))
        return torch.utils.data.DataLoader(subset, batch_size=args.batch_size, shuffle=True,
                                           num_workers=args.workers, pin_memory=device.type == "cuda")

    def produce() -> None:
        for x, y in loader():
            x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def fit() -> None:
        trainer.model.train()
        for x, y in loader():
            trainer.step(x.to(device, non_blocking=True), y.to(device, non_blocking=True))

    trainer.model.train()
    for x, y in loader(min(len(dataset), 2 * args.batch_size)):  # same warm-up as tune_app's
        trainer.step(x.to(device), y.to(device))
    produce_s = _best_of(device, lambda: [produce() for _ in range(args.epochs)],
                         len(dataset) * args.epochs)
    train_s = _timed(device, lambda: [fit() for _ in range(args.epochs)])
    images = len(dataset) * args.epochs
    return {"images": images, "workers": args.workers, "data_only_s": produce_s,
            "data_only_images_per_s": images / produce_s, "train_s": train_s,
            "train_images_per_s": images / train_s}


# --------------------------------------------------------------------------- (d) search


def search_comparison(spec_path: str, storage: Path) -> dict[str, Any]:
    """Wall time, epochs and best validation metric: sequential grid vs tune_app.search."""
    from tune_app.data import load_dataset
    from tune_app.experiment import best_value, load_experiment
    from tune_app.spec import load_spec
    from tune_app.training import train

    spec = load_spec(spec_path)
    if spec.search.algorithm != "grid":
        raise UsageError("the search comparison needs a grid spec", file=spec_path, key="search.algorithm",
                         fix="pass a spec with search.algorithm: grid, e.g. search_spaces/quickstart.yaml")
    metric, mode = spec.search.metric, spec.search.mode
    pick = max if mode == "max" else min
    data = load_dataset(spec.base.dataset)  # prepared once, as the search's driver does

    began = time.perf_counter()
    scores, epochs = [], 0
    for point in spec.trial_points():  # every configuration once per seed, as the search runs them
        history = train(spec.base.with_overrides(point), data=data).history
        epochs += len(history)
        scores.append((best_value(history, metric, mode), point))
    sequential_s = time.perf_counter() - began
    best_score, best_point = pick(scores, key=lambda item: item[0])

    log = storage / "search.log"
    command = [sys.executable, "-m", "tune_app.search", "--space", spec_path, "--storage", str(storage),
               "--name", "bench_search"]
    began = time.perf_counter()
    with open(log, "w") as out:
        finished = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    search_s = time.perf_counter() - began
    if finished.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise RuntimeError("tune_app.search failed:\n" + "\n".join(tail))
    experiment = load_experiment(storage / "bench_search")
    best = experiment.best_trial()
    return {
        "spec": spec_path, "metric": metric, "trials": len(scores),
        "sequential": {"seconds": sequential_s, "epochs": epochs, f"best_{metric}": best_score,
                       "best_point": best_point},
        "tune_app_search": {"seconds": search_s, "epochs": sum(t.epochs_run for t in experiment.trials),
                            f"best_{metric}": best.best(metric, mode), "best_point": best.hparams,
                            "scheduler": spec.scheduler.name,
                            "cpus_per_trial": spec.resources.cpus_per_trial},
    }


# --------------------------------------------------------------------------- report


def _device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise UsageError("no CUDA device is visible", key="--device", fix="use --device cpu")
    return torch.device(choice if choice != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))


def _environment(device: torch.device) -> dict[str, Any]:
    return {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "device": device.type,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "platform": platform.platform(),
            # Other work on the machine skews every figure; a load above the core count says so.
            "load_average_1m_at_start": os.getloadavg()[0]}


def _table(results: dict[str, Any]) -> str:
    lines = []
    if results.get("tune_app"):
        lines.append(f"{'pipeline':<42} {'images':>7} {'data only img/s':>16} {'training img/s':>15}")
    for key, label in (("tune_app", "tune_app (device-resident uint8 + aug)"),
                       ("reference", f"reference (DataLoader, {results.get('reference', {}).get('workers')} "
                                     "workers)")):
        row = results.get(key)
        if row:
            lines.append(f"{label:<42} {row['images']:>7} {row['data_only_images_per_s']:>16.1f} "
                         f"{row['train_images_per_s']:>15.1f}")
    if results.get("tune_app") and results.get("reference"):
        a, b = results["tune_app"], results["reference"]
        lines.append(f"speed-up: data only x{a['data_only_images_per_s'] / b['data_only_images_per_s']:.1f}, "
                     f"training x{a['train_images_per_s'] / b['train_images_per_s']:.2f}")
    prep = results.get("data_preparation")
    if prep:
        lines.append(f"data preparation ({prep['images']} images): cold {prep['cold_s']:.2f} s, "
                     f"warm {prep['warm_s'] * 1000:.1f} ms, warm/cold {100 * prep['warm_over_cold']:.3f} %")
    search = results.get("search")
    if search:
        key = f"best_{search['metric']}"
        lines.append(f"{'search (' + str(search['trials']) + ' grid points)':<42} {'seconds':>8} {'epochs':>7} "
                     f"{key:>18}")
        for name, label in (("sequential", "every point, full epochs, one by one"),
                            ("tune_app_search", f"tune_app.search ({search['tune_app_search']['scheduler']})")):
            row = search[name]
            lines.append(f"{label:<42} {row['seconds']:>8.1f} {row['epochs']:>7} {row[key]:>18.4f}")
    for note in results.get("skipped", []):
        lines.append(f"skipped: {note}")
    return "\n".join(lines)


@cli_entry
def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    device = _device(args.device)
    preset = PRESETS[args.dataset]
    arguments = argv if argv is not None else sys.argv[1:]
    results: dict[str, Any] = {"command": " ".join(["python -m tune_app.bench", *arguments]),
                               "environment": _environment(device), "skipped": []}
    if not (args.search or args.overhead or args.compare_selection or args.judge_ranking):
        # they train no model of their own
        results["model"] = {"stage_channels": args.channels, "stage_blocks": args.blocks,
                            "batch_size": args.batch_size, "epochs": args.epochs}
        results["augment"] = dict(DEFAULT_AUGMENT.__dict__)
    if args.overhead:
        from tune_app import bench_overhead

        with tempfile.TemporaryDirectory(prefix="tune_app_bench_overhead_") as scratch:
            results["overhead"] = bench_overhead.measure_overhead(args.overhead, args.repeats, Path(scratch),
                                                                  args.num_cpus)
        results["environment"]["load_average_1m_at_end"] = os.getloadavg()[0]
        print(bench_overhead.table(results["overhead"]))
        _write_json(args.json, results)
        return 0
    if args.judge_ranking:
        from tune_app import bench_judge

        results["judge_ranking"] = bench_judge.compare_judges(args.judge_ranking)
        print(bench_judge.table(results["judge_ranking"]))
        _write_json(args.json, results)
        return 0
    if args.compare_selection:
        from tune_app import bench_selection

        # Kept (and printed): the experiments behind the figures are worth a look.
        scratch = Path(tempfile.mkdtemp(prefix="tune_app_bench_selection_"))
        progress = Path(args.json) if args.json else scratch / "selection.json"
        progress.parent.mkdir(parents=True, exist_ok=True)
        print(f"experiments: {scratch}; each finished run is added to {progress}", flush=True)

        def keep(selection: dict[str, Any]) -> None:
            _write_json(progress, {**results, "selection": selection})

        results["selection"] = bench_selection.compare_selection(args.compare_selection, args.repeats, scratch,
                                                                 args.procedures, keep)
        results["environment"]["load_average_1m_at_end"] = os.getloadavg()[0]
        print(bench_selection.table(results["selection"]))
        keep(results["selection"])
        return 0
    if args.search:
        with tempfile.TemporaryDirectory(prefix="tune_app_bench_") as scratch:
            results["search"] = search_comparison(args.search, Path(scratch))
        results["skipped"].append("pipelines (a)-(c): --search runs the search comparison alone")
    elif args.synthetic:
        side = args.image_size or preset.image_size or 64
        classes = preset.num_classes or 200
        split, rows = synthetic_jpegs(args.synthetic, side, classes)
        results["synthetic"] = {"images": args.synthetic, "side": side,
                                "mean_jpeg_bytes": float(np.mean([len(j) for j in rows.jpegs]))}
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        results["tune_app"] = tune_app_pipeline(split, mean, std, classes, args, device)
        del split  # the reference holds only the JPEGs, as a dataset on disk would
        results["reference"] = reference_pipeline(rows, rows.columns, (side, side), mean, std, classes,
                                                  args, device)
        results["skipped"].append("data preparation (c): --synthetic has no dataset files")
    else:
        results["skipped"].append("search comparison (d): run it with --search SPEC")
        with tempfile.TemporaryDirectory(prefix="tune_app_bench_") as scratch:
            cfg = DatasetConfig(name=args.dataset, path=args.path, image_size=args.image_size,
                                normalize="imagenet", cache_dir=args.cache_dir or scratch)
            prep = data_preparation(cfg)
            bundle = prep.pop("bundle")
            results["data_preparation"] = prep
            limit = min(args.limit, len(bundle.train))
            results["tune_app"] = tune_app_pipeline(bundle.train.subset(np.arange(limit)), bundle.mean,
                                                    bundle.std, bundle.num_classes, args, device)
            # The reference reads the very same source rows through `datasets`.
            entry = hub.load_entry(cfg, preset)
            source = hub.open_source(hub.resolve_source(cfg, preset), preset)
            rows = source[entry.meta["splits"]["train"]["source_split"]].select(
                entry.splits["train"].source_index[:limit])
            columns = (entry.meta["columns"]["image"], entry.meta["columns"]["label"])
            size = tuple(entry.meta["image_shape"][1:])
            results["reference"] = reference_pipeline(rows, columns, size, bundle.mean, bundle.std,
                                                      bundle.num_classes, args, device)
            del bundle, entry  # release the memory maps before the folder goes
    results["environment"]["load_average_1m_at_end"] = os.getloadavg()[0]
    print(_table(results))
    _write_json(args.json, results)
    return 0


def _write_json(path: Optional[str | Path], results: dict[str, Any]) -> None:
    # Whole or not at all (a killed comparison keeps its last complete file); default=str: the
    # environment holds a few non-JSON values (paths, versions).
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, results, default=str)


if __name__ == "__main__":
    sys.exit(main())

"""Generic image-classification loader over `datasets.load_dataset`, hub id or local copy alike.

A `HubPreset` names a dataset's hub id, splits and columns; `load` turns it plus a
DatasetConfig into a DataBundle:

- source: `dataset.path` (a local folder, or a hub id) else the preset's hub id, always read
  with the same `datasets.load_dataset` call, so a local copy behaves exactly like the hub;
- test: the source's test split, untouched and in order, or (generic datasets without one)
  a stratified hold-out of train; val is always a stratified seeded hold-out of the rest,
  so model selection never sees test images;
- images: decoded once to uint8 (N, 3, H, W) in the cache and memory-mapped afterwards.
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from tune_app.config import DatasetConfig
from tune_app.data import cache, decode
from tune_app.data.bundle import DataBundle, Split, normalization
from tune_app.data.splits import holdout
from tune_app.data.stats import channel_stats_uint8
from tune_app.errors import UsageError

# Encoded images handed to the decoder per step (a few MB of JPEG bytes at 224 px).
CELL_BATCH = 256
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class HubPreset:
    name: str  # registry name, also the bundle's name
    hub_id: Optional[str] = None  # source when dataset.path is unset; None: path required
    image_column: str = "image"
    label_column: str = "label"
    train_split: str = "train"
    test_split: str = "test"
    # True: the test split must exist. False: without it, test_fraction of train is held out.
    test_split_required: bool = False
    image_size: Optional[int] = None  # side in pixels; None = the first training image's size
    num_classes: Optional[int] = None  # for describe() without reading anything
    imagefolder: bool = False  # dataset.path is a class_name/*.jpg tree


@dataclass(frozen=True)
class Source:
    kind: str  # "folder" (load_dataset(path)), "imagefolder" or "hub"
    location: str  # absolute folder or hub id

    @property
    def is_local(self) -> bool:
        return self.kind != "hub"

    def label(self) -> str:
        return self.location.replace("/", "--") if self.kind == "hub" else Path(self.location).name


def resolve_source(cfg: DatasetConfig, preset: HubPreset) -> Source:
    """Where to read from: dataset.path (folder or hub id), else the preset's hub id."""
    if cfg.path is None:
        if preset.hub_id is None:
            what = "a folder of class_name/*.jpg" if preset.imagefolder else "a hub id or a local folder"
            raise UsageError(f"dataset '{preset.name}' needs a source", key="dataset.path",
                             fix=f"set dataset.path to {what}")
        return Source("hub", preset.hub_id)
    folder = Path(cfg.path).expanduser()
    if folder.exists():
        if not folder.is_dir():
            raise UsageError(f"'{cfg.path}' is a file; a dataset is read from a folder", key="dataset.path",
                             fix="point dataset.path at the folder holding the data files")
        return Source("imagefolder" if preset.imagefolder else "folder", str(folder.resolve()))
    if preset.imagefolder or not _HUB_ID.match(cfg.path):
        raise UsageError(f"no such folder '{cfg.path}'", key="dataset.path",
                         fix="give an existing folder (relative paths start at the working directory)"
                             + ("" if preset.imagefolder else " or a hub id such as owner/name"))
    return Source("hub", cfg.path)


@contextmanager
def _quiet_unless_terminal() -> Iterator[None]:
    """datasets' progress bars only on a terminal.

    In logs and CI each bar is a stray stderr line, and a bad-input run must print exactly
    one (its error); a person at a terminal still sees a long first load progress.
    """
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    if not sys.stderr.isatty():
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def open_source(source: Source, preset: HubPreset) -> Any:
    """The `datasets.DatasetDict` of `source`; unreachable or missing sources are UsageErrors."""
    import datasets  # slow to import; only loaders need it

    try:
        with _quiet_unless_terminal():
            if source.kind == "imagefolder":
                return datasets.load_dataset("imagefolder", data_dir=source.location)
            return datasets.load_dataset(source.location)
    except OSError as err:  # hub, network and missing-file errors all derive from OSError
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        if source.kind == "hub":
            local = f"data/{source.location.split('/')[-1]}"
            raise UsageError(
                f"cannot load '{source.location}' from the Hugging Face hub and there is no local copy "
                f"({reason})", key="dataset.path",
                fix=f"download it where the hub is reachable (hf download {source.location} "
                    f"--repo-type dataset --local-dir {local}) and set dataset.path: {local}") from None
        raise UsageError(f"cannot read dataset folder '{source.location}' ({reason})", key="dataset.path",
                         fix="point dataset.path at a folder saved from the hub (data files such as "
                             "parquet) or, for imagefolder, at class_name/*.jpg folders") from None


# --------------------------------------------------------------------------- columns and labels


def _columns(cfg: DatasetConfig, preset: HubPreset) -> tuple[str, str]:
    return cfg.image_column or preset.image_column, cfg.label_column or preset.label_column


def check_columns(dataset: Any, split: str, image_column: str, label_column: str) -> None:
    import datasets

    features = dataset.features
    available = ", ".join(features)
    for column, key, holds in ((image_column, "dataset.image_column", "images"),
                               (label_column, "dataset.label_column", "class labels")):
        if column not in features:
            raise UsageError(f"split '{split}' has no column '{column}' (columns: {available})", key=key,
                             fix=f"set {key} to the column that holds the {holds}")
    if not isinstance(features[image_column], datasets.Image):
        raise UsageError(f"column '{image_column}' holds {features[image_column]!r}, not images "
                         f"(columns: {available})", key="dataset.image_column",
                         fix="name a column of type Image")


def _splits(dd: Any, preset: HubPreset) -> tuple[str, Optional[str]]:
    """(train split, test split or None when test is held out of train)."""
    available = ", ".join(dd)
    train = preset.train_split
    if train not in dd:
        if preset.test_split_required or len(dd) != 1:
            raise UsageError(f"the source has no '{train}' split (splits: {available})", key="dataset.path",
                             fix=f"point dataset.path at a copy of '{preset.hub_id or preset.name}' "
                                 f"with a '{train}' split")
        train = next(iter(dd))  # a lone split (e.g. an unsplit imagefolder) is the training data
    if preset.test_split in dd:
        return train, preset.test_split
    if preset.test_split_required:
        raise UsageError(f"the source has no '{preset.test_split}' split (splits: {available})",
                         key="dataset.path",
                         fix=f"point dataset.path at a copy of '{preset.hub_id}' with its "
                             f"'{preset.test_split}' split")
    return train, None


def _label_array(dataset: Any, column: str) -> np.ndarray:
    return dataset.with_format("arrow")[:].column(column).to_numpy(zero_copy_only=False)


def class_labels(dd: Any, splits: list[str], column: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Integer labels per split and the class names, from the ClassLabel feature if any.

    Plain ints are used as they are; strings become classes in sorted order, shared by
    every split (datasets' own class_encode_column encodes each split on its own).
    """
    import datasets

    feature = dd[splits[0]].features[column]
    raw = {split: _label_array(dd[split], column) for split in splits}
    if isinstance(feature, datasets.ClassLabel):
        return {s: v.astype(np.int64) for s, v in raw.items()}, list(feature.names)
    if isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint")):
        top = max((int(v.max()) for v in raw.values() if len(v)), default=-1)
        return {s: v.astype(np.int64) for s, v in raw.items()}, [str(i) for i in range(top + 1)]
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        names = sorted({str(x) for values in raw.values() for x in values})
        index = {name: i for i, name in enumerate(names)}
        return {s: np.array([index[str(x)] for x in v], dtype=np.int64) for s, v in raw.items()}, names
    raise UsageError(f"column '{column}' holds {feature!r}, not class labels", key="dataset.label_column",
                     fix="name a ClassLabel, integer or string column")


# --------------------------------------------------------------------------- decode-once cache


def _image_batches(dataset: Any, column: str, rows: np.ndarray) -> Iterator[list[Any]]:
    """Encoded image cells ({"bytes", "path"}) of `rows`, without decoding them."""
    import pyarrow as pa

    images = dataset.with_format("arrow")[:].column(column)  # memory-mapped, zero-copy
    for start in range(0, len(rows), CELL_BATCH):
        yield images.take(pa.array(rows[start:start + CELL_BATCH])).to_pylist()


def _plan(labels: dict[str, np.ndarray], train: str, test: Optional[str],
          cfg: DatasetConfig) -> dict[str, tuple[str, np.ndarray]]:
    """split -> (source split, sorted source rows)."""
    train_labels = labels[train]
    if test is not None:
        rest, test_rows, test_source = np.arange(len(train_labels)), np.arange(len(labels[test])), test
    else:
        rest, test_rows = holdout(train_labels, cfg.test_fraction, cfg.split_seed)
        test_source = train
    kept, held = holdout(train_labels[rest], cfg.val_fraction, cfg.split_seed)
    return {"train": (train, rest[kept]), "val": (train, rest[held]), "test": (test_source, test_rows)}


def _build(writer: cache.EntryWriter, dd: Any, cfg: DatasetConfig, preset: HubPreset,
           size: Optional[tuple[int, int]]) -> dict[str, Any]:
    image_column, label_column = _columns(cfg, preset)
    train, test = _splits(dd, preset)
    used = [train] + ([test] if test else [])
    for split in used:
        check_columns(dd[split], split, image_column, label_column)
    labels, class_names = class_labels(dd, used, label_column)
    for split in used:
        bad = labels[split][(labels[split] < 0) | (labels[split] >= len(class_names))]
        if len(bad):
            raise UsageError(f"split '{split}' has {len(bad)} rows without a valid label (e.g. {bad[0]})",
                             key="dataset.label_column",
                             fix="use a source whose splits are all labelled (hidden test labels "
                                 "cannot be evaluated)")
    if size is None:
        first = next(_image_batches(dd[train], image_column, np.arange(1)))[0]
        size = decode.image_size_of(first)
    plan = _plan(labels, train, test, cfg)
    meta_splits = {}
    mean = std = None
    for name, (source_split, rows) in plan.items():
        out = writer.images(name, len(rows), (3, *size))
        decode.decode_images(_image_batches(dd[source_split], image_column, rows), out, size,
                             desc=f"decoding {preset.name} {name}")
        if name == "train":
            mean, std = channel_stats_uint8(out)
        out.flush()
        del out
        writer.array(f"{name}.labels", labels[source_split][rows])
        writer.array(f"{name}.index", rows.astype(np.int64))
        meta_splits[name] = {"source_split": source_split, "count": int(len(rows))}
    return {"name": preset.name, "class_names": class_names, "image_shape": [3, *size],
            "splits": meta_splits, "mean": mean, "std": std,
            "columns": {"image": image_column, "label": label_column}}


def load_entry(cfg: DatasetConfig, preset: HubPreset) -> cache.CacheEntry:
    """The decoded splits of `cfg`, from the cache or decoded into it now."""
    source = resolve_source(cfg, preset)
    image_column, label_column = _columns(cfg, preset)
    side = cfg.image_size or preset.image_size
    size = (side, side) if side else None
    dd = None
    if source.is_local:
        # Local data is keyed by its files, so a warm load never opens `datasets` at all.
        fingerprint = cache.folder_fingerprint(Path(source.location))
    else:
        dd = open_source(source, preset)
        fingerprint = "+".join(f"{name}:{dd[name]._fingerprint}" for name in sorted(dd))
    recipe = {
        "preset": preset.name, "source": source.location, "kind": source.kind, "fingerprint": fingerprint,
        "image_column": image_column, "label_column": label_column, "size": size or "first-image",
        "train_split": preset.train_split, "test_split": preset.test_split,
        "test_fraction": None if preset.test_split_required else cfg.test_fraction,
        "val_fraction": cfg.val_fraction, "split_seed": cfg.split_seed,
    }
    resolution = f"{size[0]}x{size[1]}" if size else "native"
    final = cache.cache_root(cfg.cache_dir) / f"{preset.name}-{source.label()}-{resolution}-{cache.entry_key(recipe)}"

    def build(writer: cache.EntryWriter) -> dict[str, Any]:
        return _build(writer, dd if dd is not None else open_source(source, preset), cfg, preset, size)

    return cache.load_or_build(final, build)


def load(cfg: DatasetConfig, preset: HubPreset) -> DataBundle:
    entry = load_entry(cfg, preset)
    splits = {name: Split(s.images, s.labels) for name, s in entry.splits.items()}
    if cfg.normalize == "dataset":
        mean, std = tuple(entry.meta["mean"]), tuple(entry.meta["std"])
    else:
        mean, std = normalization(cfg.normalize, splits["train"].images)
    return DataBundle(name=preset.name, train=splits["train"], val=splits["val"], test=splits["test"],
                      class_names=list(entry.meta["class_names"]), mean=mean, std=std)


def describe(cfg: DatasetConfig, preset: HubPreset) -> tuple[int, int]:
    """(classes, channels): the preset's constants, else the source's label feature (no decoding)."""
    if cfg.path is None and preset.num_classes is not None:
        return preset.num_classes, 3
    dd = open_source(resolve_source(cfg, preset), preset)
    image_column, label_column = _columns(cfg, preset)
    train, test = _splits(dd, preset)
    check_columns(dd[train], train, image_column, label_column)
    _, names = class_labels(dd, [train] + ([test] if test else []), label_column)
    return len(names), 3

"""Generic image-classification loader over `datasets.load_dataset`, hub id or local copy alike.

A `HubPreset` names a dataset's hub id, splits and columns; `load` turns it plus a
DatasetConfig into a DataBundle:

- source: `dataset.path` (a local folder, or a hub id) else the preset's hub id, always read
  with the same `datasets.load_dataset` call, so a local copy behaves exactly like the hub;
- test: the source's test split, untouched and in order, or (generic datasets without one)
  a stratified hold-out of train; val is always a stratified seeded hold-out of the rest,
  so model selection never sees test images;
- dataset.subset_per_class: a seeded sample of every class, drawn before the splits are
  planned; only its images are decoded, into a cache entry of its own;
- images: decoded once to uint8 (N, 3, H, W) in the cache and memory-mapped afterwards;
- class names: the source's labels are cached as they are; the preset's renamer turns them
  into the names reports show when the entry is loaded.
"""

from __future__ import annotations

import logging
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NoReturn, Optional

import numpy as np

from tune_app.config import DatasetConfig
from tune_app.data import cache, decode, names
from tune_app.data.bundle import DataBundle, Split, normalization
from tune_app.data.splits import plan_splits
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
    # Source labels -> the names reports show (tune_app/data/names.py); None: the labels themselves.
    rename_classes: Optional[names.Renamer] = None


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
    """datasets' progress bars only on a terminal, and none of its error log lines.

    In logs and CI each bar is a stray stderr line, and a bad-input run must print exactly
    one (its error); a person at a terminal still sees a long first load progress. Errors
    datasets logs before raising (e.g. "Failed to read schema from ...") become our own
    one-line UsageError instead.
    """
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    logger = logging.getLogger("datasets")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    if not sys.stderr.isatty():
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        logger.setLevel(level)
        if was_enabled:
            datasets.enable_progress_bars()


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:160]


def unreadable_parquet(folder: Path) -> Optional[tuple[Path, str]]:
    """The first parquet file under `folder` that pyarrow cannot read through, and why."""
    import pyarrow.parquet as pq

    for path in sorted(folder.rglob("*.parquet")):
        try:
            with pq.ParquetFile(path) as parquet:
                for _ in parquet.iter_batches(batch_size=1024):
                    pass
        except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... by damage
            return path, _first_line(err)
    return None


def open_source(source: Source, preset: HubPreset) -> Any:
    """The `datasets.DatasetDict` of `source`; unreachable or missing sources are UsageErrors."""
    import datasets  # slow to import; only loaders need it

    try:
        with _quiet_unless_terminal():
            if source.kind == "imagefolder":
                return datasets.load_dataset("imagefolder", data_dir=source.location)
            return datasets.load_dataset(source.location)
    except Exception as err:
        _raise_unreadable(source, err)


def _raise_unreadable(source: Source, err: Exception) -> NoReturn:
    """Re-raise a failure of datasets.load_dataset as the UsageError that says what to fix."""
    import datasets
    import pyarrow as pa

    # A damaged data file: pyarrow's error (often wrapped by datasets) does not name it.
    if source.is_local and isinstance(err, (pa.ArrowException, datasets.exceptions.DatasetGenerationError)):
        damaged = unreadable_parquet(Path(source.location))
        if damaged is not None:
            path, reason = damaged
            raise UsageError(f"unreadable parquet file ({reason})", file=str(path), key="dataset.path",
                             fix="download or copy that file again: it is truncated or not parquet at all") from None
    if isinstance(err, OSError) or source.is_local and isinstance(
            err, (pa.ArrowException, datasets.exceptions.DatasetGenerationError)):
        reason = _first_line(err)
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
    raise err


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


def check_imagefolder_classes(dd: Any, split: str, label_column: str, source: Source) -> None:
    """datasets' imagefolder infers labels only from two or more class folders: say so."""
    features = dd[split].features
    if source.kind == "imagefolder" and label_column not in features and "label" not in features:
        raise UsageError("found images of at most one class; a classifier needs at least 2",
                         file=source.location, key="dataset.path",
                         fix="put each class's images in a folder of its own (class_name/*.jpg), "
                             "for at least 2 classes")


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


def _plan(labels: dict[str, np.ndarray], train: str, test: Optional[str], class_names: list[str],
          cfg: DatasetConfig, source: Source) -> dict[str, tuple[str, np.ndarray]]:
    """split -> (source split, sorted source rows), checked by plan_splits before any decoding."""
    plan = plan_splits(labels[train], labels[test] if test is not None else None, class_names,
                       val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=cfg.split_seed,
                       source=source.location, per_class=cfg.subset_per_class)
    test_source = test if test is not None else train
    return {"train": (train, plan.train), "val": (train, plan.val), "test": (test_source, plan.test)}


def _parquet_file_of(source: Source, split: str, row: int) -> Optional[str]:
    """The local parquet file holding `row` of `split` (error messages only), if there is one."""
    import datasets
    import pyarrow.parquet as pq

    if source.kind != "folder":
        return None
    try:
        with _quiet_unless_terminal():
            files = datasets.load_dataset_builder(source.location).config.data_files[split]
        first = 0
        for file in files:
            if not str(file).endswith(".parquet"):
                return None
            count = pq.ParquetFile(file).metadata.num_rows
            if row < first + count:
                return str(file)
            first += count
    except Exception:  # only a nicer message is lost
        return None
    return None


def _undecodable(source: Source, split: str, row: int, cell: Any, reason: str) -> UsageError:
    """The error for an image that cannot be decoded: which one, where, and what to do."""
    image_file = cell.get("path") if isinstance(cell, dict) and cell.get("bytes") is None else None
    if image_file:  # imagefolder: the image is a file of its own
        return UsageError(f"cannot decode image ({reason})", file=str(image_file), key="dataset.path",
                          fix="replace or delete that image file")
    parquet = _parquet_file_of(source, split, row)
    return UsageError(f"cannot decode the image of split '{split}' row {row} ({reason})",
                      file=parquet or source.location, key="dataset.path",
                      fix="download or copy that file again, or remove the row from the source")


def _decode_split(dd: Any, split: str, column: str, rows: np.ndarray, out: np.ndarray,
                  size: tuple[int, int], desc: str, source: Source) -> None:
    try:
        decode.decode_images(_image_batches(dd[split], column, rows), out, size, desc=desc)
    except decode.DecodeError as err:
        row = int(rows[err.position])
        cell = next(_image_batches(dd[split], column, np.array([row])))[0]
        raise _undecodable(source, split, row, cell, err.reason) from None


def _first_image_size(dd: Any, split: str, column: str, source: Source) -> tuple[int, int]:
    first = next(_image_batches(dd[split], column, np.arange(1)))[0]
    try:
        return decode.image_size_of(first)
    except Exception as err:  # the header alone is damaged
        raise _undecodable(source, split, 0, first, _first_line(err)) from None


def _build(writer: cache.EntryWriter, dd: Any, cfg: DatasetConfig, preset: HubPreset,
           size: Optional[tuple[int, int]], source: Source) -> dict[str, Any]:
    image_column, label_column = _columns(cfg, preset)
    train, test = _splits(dd, preset)
    used = [train] + ([test] if test else [])
    check_imagefolder_classes(dd, train, label_column, source)
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
    plan = _plan(labels, train, test, class_names, cfg, source)
    if size is None:
        size = _first_image_size(dd, train, image_column, source)
    writer.reserve({name: len(rows) for name, (_, rows) in plan.items()}, (3, *size))
    meta_splits = {}
    mean = std = None
    for name, (source_split, rows) in plan.items():
        out = writer.images(name, len(rows), (3, *size))
        _decode_split(dd, source_split, image_column, rows, out, size, f"decoding {preset.name} {name}", source)
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
    # Only when set, so that the keys (and entries) of full datasets stay what they were.
    if cfg.subset_per_class:
        recipe["subset_per_class"] = cfg.subset_per_class
    resolution = f"{size[0]}x{size[1]}" if size else "native"
    subset = f"-{cfg.subset_per_class}perclass" if cfg.subset_per_class else ""
    final = cache.cache_root(cfg.cache_dir) / (
        f"{preset.name}-{source.label()}-{resolution}{subset}-{cache.entry_key(recipe)}")

    def build(writer: cache.EntryWriter) -> dict[str, Any]:
        return _build(writer, dd if dd is not None else open_source(source, preset), cfg, preset, size, source)

    return cache.load_or_build(final, build)


def load(cfg: DatasetConfig, preset: HubPreset) -> DataBundle:
    entry = load_entry(cfg, preset)
    splits = {name: Split(s.images, s.labels) for name, s in entry.splits.items()}
    if cfg.normalize == "dataset":
        mean, std = tuple(entry.meta["mean"]), tuple(entry.meta["std"])
    else:
        mean, std = normalization(cfg.normalize, splits["train"].images)
    # The cache holds the source's labels; names are derived here, so renaming needs no rebuild.
    class_ids = [str(c) for c in entry.meta["class_names"]]
    return DataBundle(name=preset.name, train=splits["train"], val=splits["val"], test=splits["test"],
                      class_names=names.display_names(class_ids, preset.rename_classes), mean=mean, std=std,
                      class_ids=class_ids)


def describe(cfg: DatasetConfig, preset: HubPreset) -> tuple[int, int]:
    """(classes, channels): the preset's constants, else the source's label feature (no decoding)."""
    if cfg.path is None and preset.num_classes is not None:
        return preset.num_classes, 3
    source = resolve_source(cfg, preset)
    dd = open_source(source, preset)
    image_column, label_column = _columns(cfg, preset)
    train, test = _splits(dd, preset)
    check_imagefolder_classes(dd, train, label_column, source)
    check_columns(dd[train], train, image_column, label_column)
    _, names = class_labels(dd, [train] + ([test] if test else []), label_column)
    return len(names), 3

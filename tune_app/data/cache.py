"""Decode-once cache: decoded uint8 splits on disk, memory-mapped on every later load.

An entry is a folder of .npy files (images, labels and source row indices per split),
meta.json and a `complete` marker. It is built in a temporary folder and renamed into
place, so a crash never leaves a half entry; a file lock makes concurrent trials wait for
one build instead of decoding the same images side by side.

Every load checks the entry before trusting it (`inspect_entry`), because a disk that
filled up, a copy cut short or a hand edit must cost a rebuild, not a traceback or a trial
that fails an hour later: the marker is written last and holds the hash of meta.json;
meta.json records each file's size and array shape; labels and row indices carry a full
sha256 and labels must lie in [0, number of classes); images, the bulk, carry a hash of
a fixed sample of rows, so a warm load stays in milliseconds however large the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from tune_app.errors import UsageError

# Bump when the layout or the decoding changes, so old entries are never read.
CACHE_VERSION = 2
SPLITS = ("train", "val", "test")
MARKER = "complete"
# Image rows hashed per split: 64 rows of 224x224 RGB are 9.6 MB read, a few ms.
SAMPLED_ROWS = 64


def cache_root(cache_dir: Optional[str]) -> Path:
    """dataset.cache_dir, else $TUNE_APP_CACHE, else ~/.cache/tune_app."""
    chosen = cache_dir or os.environ.get("TUNE_APP_CACHE") or "~/.cache/tune_app"
    return Path(chosen).expanduser().resolve()


def entry_key(recipe: dict[str, Any]) -> str:
    """Stable hash of everything the cached arrays depend on."""
    text = json.dumps({"version": CACHE_VERSION, **recipe}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def folder_fingerprint(folder: Path) -> str:
    """Hash of every file's relative path, size and mtime: changes when any file does.

    Hidden files and folders (.git, .cache, .DS_Store) are skipped: they are not data.
    """
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root, name)
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


@dataclass
class CachedSplit:
    images: np.ndarray  # uint8 (N, 3, H, W), memory-mapped copy-on-write
    labels: np.ndarray  # int64 (N,)
    source_index: np.ndarray  # int64 (N,): row of each image in its source split


@dataclass
class CacheEntry:
    path: Path
    meta: dict[str, Any]
    splits: dict[str, CachedSplit]


class BadEntry(Exception):
    """An entry folder that must not be used; the message says why, for the rebuild warning."""


# --------------------------------------------------------------------------- checksums


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sampled_rows_hash(images: np.ndarray) -> str:
    """sha256 of up to SAMPLED_ROWS evenly spaced images, first and last included."""
    digest = hashlib.sha256(repr((images.shape, images.dtype.str)).encode())
    if len(images):
        for row in np.unique(np.linspace(0, len(images) - 1, min(len(images), SAMPLED_ROWS)).astype(np.int64)):
            digest.update(np.ascontiguousarray(images[row]).tobytes())
    return digest.hexdigest()


def _file_record(path: Path) -> dict[str, Any]:
    """What meta.json records of one .npy file, so that a later load can check it."""
    array = np.load(path, mmap_mode="r")
    record: dict[str, Any] = {"bytes": path.stat().st_size, "shape": list(array.shape), "dtype": array.dtype.str}
    if path.name.endswith(".images.npy"):
        record["sampled_sha256"] = _sampled_rows_hash(array)
    else:
        record["sha256"] = _sha256_file(path)
    return record


# --------------------------------------------------------------------------- reading


def _load_images(path: Path) -> np.ndarray:
    # Copy-on-write: torch.from_numpy accepts it without a read-only warning, and writes
    # (there should be none) stay private to the process instead of corrupting the cache.
    return np.load(path, mmap_mode="c")


def _checked_array(path: Path, record: dict[str, Any]) -> np.ndarray:
    name = path.name
    if not path.is_file():
        raise BadEntry(f"{name} is missing")
    if path.stat().st_size != record["bytes"]:
        raise BadEntry(f"{name} has {path.stat().st_size} bytes, not {record['bytes']}")
    if "sha256" in record and _sha256_file(path) != record["sha256"]:
        raise BadEntry(f"{name} does not match its checksum")
    try:
        array = _load_images(path) if "sampled_sha256" in record else np.load(path)
    except (ValueError, OSError) as err:
        raise BadEntry(f"{name} is unreadable ({str(err).splitlines()[0][:80]})") from None
    if list(array.shape) != record["shape"] or array.dtype.str != record["dtype"]:
        raise BadEntry(f"{name} holds {array.dtype.str} {list(array.shape)}, not {record['dtype']} {record['shape']}")
    if "sampled_sha256" in record and _sampled_rows_hash(array) != record["sampled_sha256"]:
        raise BadEntry(f"{name} does not match its checksum")
    return array


def _checked_meta(path: Path) -> dict[str, Any]:
    marker, meta_file = path / MARKER, path / "meta.json"
    if not marker.is_file():
        raise BadEntry("no completeness marker: its writing was interrupted")
    if not meta_file.is_file():
        raise BadEntry("meta.json is missing")
    text = meta_file.read_bytes()
    if marker.read_text().strip() != hashlib.sha256(text).hexdigest():
        raise BadEntry("meta.json does not match its completeness marker")
    try:
        meta = json.loads(text)
    except ValueError:
        raise BadEntry("meta.json is not valid JSON") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict) \
            or not isinstance(meta.get("class_names"), list):
        raise BadEntry("meta.json is malformed")
    if meta.get("version") != CACHE_VERSION:
        raise BadEntry(f"written by cache version {meta.get('version')}, not {CACHE_VERSION}")
    return meta


def inspect_entry(path: Path) -> Optional[CacheEntry]:
    """The entry at `path`, None if there is none; raises BadEntry if one is there but unusable."""
    if not path.exists():
        return None
    meta = _checked_meta(path)
    files, classes = meta["files"], len(meta["class_names"])
    splits = {}
    for name in SPLITS:
        arrays = {}
        for part in ("images", "labels", "index"):
            file = f"{name}.{part}.npy"
            if file not in files:
                raise BadEntry(f"meta.json does not list {file}")
            try:
                arrays[part] = _checked_array(path / file, files[file])
            except (KeyError, TypeError):
                raise BadEntry(f"meta.json's record of {file} is malformed") from None
        labels = arrays["labels"]
        if not len(labels) == len(arrays["index"]) == len(arrays["images"]):
            raise BadEntry(f"the {name} split's images, labels and index differ in length")
        if len(labels) and (labels.min() < 0 or labels.max() >= classes):
            raise BadEntry(f"{name}.labels.npy has labels outside [0, {classes})")
        splits[name] = CachedSplit(arrays["images"], labels, arrays["index"])
    return CacheEntry(path, meta, splits)


# --------------------------------------------------------------------------- writing


def _human(nbytes: int) -> str:
    size, unit = float(nbytes), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{nbytes} B" if unit == "B" else f"{size:.1f} {unit}"


class EntryWriter:
    """Writes one entry into a temporary folder; `commit` renames it into place."""

    def __init__(self, final: Path):
        self.final = final
        final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        # mkdtemp makes the folder private (0700); a cache shared by several users must not be.
        self.tmp.chmod(0o755)

    def reserve(self, counts: dict[str, int], shape: tuple[int, int, int]) -> None:
        """Refuse, before any decoding, an entry of `counts` images of `shape` that cannot fit.

        The images are written through memory maps: on a full disk that is a SIGBUS that
        kills the process half way, not an exception.
        """
        per_image = int(np.prod(shape))
        # Images, plus int64 labels and index and a header per file.
        needed = sum(n * (per_image + 16) + 3 * 128 for n in counts.values()) + 4096
        free = shutil.disk_usage(self.tmp).free
        if needed > free:
            raise UsageError(
                f"the decoded dataset needs {_human(needed)} ({needed} bytes) of cache but only "
                f"{_human(free)} ({free} bytes) are free", file=str(self.final.parent), key="dataset.cache_dir",
                fix="free disk space there, point dataset.cache_dir (or $TUNE_APP_CACHE) at a larger disk, "
                    "or lower dataset.image_size")

    def images(self, split: str, count: int, shape: tuple[int, int, int]) -> np.ndarray:
        """A writable (count, *shape) uint8 array backed by the entry's .npy file."""
        return np.lib.format.open_memmap(self.tmp / f"{split}.images.npy", mode="w+",
                                         dtype=np.uint8, shape=(count, *shape))

    def array(self, name: str, values: np.ndarray) -> None:
        np.save(self.tmp / f"{name}.npy", values)

    def commit(self, meta: dict[str, Any]) -> None:
        files = {path.name: _file_record(path) for path in sorted(self.tmp.glob("*.npy"))}
        text = json.dumps({"version": CACHE_VERSION, **meta, "files": files}, indent=1).encode()
        (self.tmp / "meta.json").write_bytes(text)
        for file in self.tmp.iterdir():  # data on disk before the marker says it is complete
            with open(file, "rb+") as handle:
                os.fsync(handle.fileno())
        with open(self.tmp / MARKER, "w") as handle:  # last: its presence means all the rest is there
            handle.write(hashlib.sha256(text).hexdigest() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.replace(self.tmp, self.final)
        except OSError:
            # Another process committed the same entry first; theirs is identical.
            if not (self.final / MARKER).is_file():
                raise
            self.abort()

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------- locking and cleanup


def _lock_file(final: Path) -> Path:
    return final.parent / f".{final.name}.lock"


@contextmanager
def entry_lock(final: Path) -> Iterator[None]:
    from filelock import FileLock  # a dependency of datasets and huggingface_hub

    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(_lock_file(final))):
        yield


def sweep_stale_tmp(root: Path, holding: Path) -> list[Path]:
    """Remove temporary folders that no live writer owns; returns them.

    A writer holds its entry's lock from before mkdtemp until after the rename or abort,
    so a temporary folder whose lock can be taken is the leftover of a killed process
    (SIGKILL, power loss): safe to delete even while other processes build other entries.
    `holding` is the entry whose lock the caller already holds.
    """
    from filelock import FileLock, Timeout

    removed = []
    for tmp in root.glob(".*.tmp"):
        entry = tmp.name[1:-len(".tmp")].rpartition(".")[0]
        if not tmp.is_dir() or not entry:
            continue
        if entry == holding.name:
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
            continue
        lock = FileLock(str(_lock_file(root / entry)))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # being written right now
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
        finally:
            lock.release()
    return removed


@contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """SIGTERM / SIGHUP raise SystemExit while building, so the temporary folder is removed.

    Their default action ends the process without running `finally` blocks; SIGINT already
    raises KeyboardInterrupt. Only the main thread may install handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_exit(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, raise_exit) for sig in (signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(sig) in (signal.SIG_DFL, None)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def load_or_build(final: Path, build: Callable[[EntryWriter], dict[str, Any]]) -> CacheEntry:
    """The entry at `final`, building it with `build(writer) -> meta` if it is missing or bad.

    `build` must call writer.images/array for every split and return meta with class_names.
    """
    try:
        entry = inspect_entry(final)
        if entry is not None:
            return entry
    except BadEntry:
        pass  # decided again under the lock, where only one process warns and rebuilds
    with entry_lock(final):
        try:
            entry = inspect_entry(final)  # built by another process while we waited
            if entry is not None:
                return entry
        except BadEntry as problem:
            print(f"warning: cache entry {final} was incomplete ({problem}); rebuilding", file=sys.stderr)
            shutil.rmtree(final)
        sweep_stale_tmp(final.parent, final)
        with _terminate_as_exception():
            writer = EntryWriter(final)
            try:
                meta = build(writer)
                writer.commit(meta)
            except BaseException:
                writer.abort()
                raise
    try:
        entry = inspect_entry(final)
    except BadEntry as problem:
        raise RuntimeError(f"cache entry {final} is unusable right after it was written ({problem})") from None
    if entry is None:
        raise RuntimeError(f"cache entry {final} vanished right after it was written")
    return entry

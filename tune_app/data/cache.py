"""Decode-once cache: decoded uint8 splits on disk, memory-mapped on every later load.

An entry is a folder of .npy files (images, labels and source row indices per split) plus
meta.json. It is built in a temporary folder and renamed into place, so a crash never
leaves a half entry; a file lock makes concurrent trials wait for one build instead of
decoding the same images side by side.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

# Bump when the layout or the decoding changes, so old entries are never read.
CACHE_VERSION = 1
SPLITS = ("train", "val", "test")


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


def _load_images(path: Path) -> np.ndarray:
    # Copy-on-write: torch.from_numpy accepts it without a read-only warning, and writes
    # (there should be none) stay private to the process instead of corrupting the cache.
    return np.load(path, mmap_mode="c")


def read_entry(path: Path) -> Optional[CacheEntry]:
    """The entry at `path`, or None if there is no complete one."""
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        return None
    meta = json.loads(meta_file.read_text())
    if meta.get("version") != CACHE_VERSION:
        return None
    splits = {
        name: CachedSplit(
            images=_load_images(path / f"{name}.images.npy"),
            labels=np.load(path / f"{name}.labels.npy"),
            source_index=np.load(path / f"{name}.index.npy"),
        )
        for name in SPLITS
    }
    return CacheEntry(path, meta, splits)


class EntryWriter:
    """Writes one entry into a temporary folder; `commit` renames it into place."""

    def __init__(self, final: Path):
        self.final = final
        final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        # mkdtemp makes the folder private (0700); a cache shared by several users must not be.
        self.tmp.chmod(0o755)

    def images(self, split: str, count: int, shape: tuple[int, int, int]) -> np.ndarray:
        """A writable (count, *shape) uint8 array backed by the entry's .npy file."""
        return np.lib.format.open_memmap(self.tmp / f"{split}.images.npy", mode="w+",
                                         dtype=np.uint8, shape=(count, *shape))

    def array(self, name: str, values: np.ndarray) -> None:
        np.save(self.tmp / f"{name}.npy", values)

    def commit(self, meta: dict[str, Any]) -> None:
        (self.tmp / "meta.json").write_text(json.dumps({"version": CACHE_VERSION, **meta}, indent=1))
        for file in self.tmp.iterdir():  # data on disk before the rename makes it visible
            with open(file, "rb+") as handle:
                os.fsync(handle.fileno())
        try:
            os.replace(self.tmp, self.final)
        except OSError:
            # Another process committed the same entry first; theirs is identical.
            if not (self.final / "meta.json").is_file():
                raise
            self.abort()

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextmanager
def entry_lock(final: Path) -> Iterator[None]:
    from filelock import FileLock  # a dependency of datasets and huggingface_hub

    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{final.name}.lock")):
        yield


def load_or_build(final: Path, build: Callable[[EntryWriter], dict[str, Any]]) -> CacheEntry:
    """The entry at `final`, building it with `build(writer) -> meta` if it is missing."""
    entry = read_entry(final)
    if entry is not None:
        return entry
    with entry_lock(final):
        entry = read_entry(final)  # built by another process while we waited
        if entry is not None:
            return entry
        if final.exists():  # no meta.json, or another CACHE_VERSION's: not a usable entry
            shutil.rmtree(final)
        writer = EntryWriter(final)
        try:
            meta = build(writer)
            writer.commit(meta)
        except BaseException:
            writer.abort()
            raise
    entry = read_entry(final)
    if entry is None:
        raise RuntimeError(f"cache entry {final} vanished right after it was written")
    return entry

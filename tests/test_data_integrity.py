"""The decode-once cache checks itself: a damaged entry is rebuilt with one warning, an
interrupted or killed build leaves nothing behind, and a cache that cannot fit is refused
before decoding starts."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, SHARED_DATA, needs_shared_data
from tune_app.config import DatasetConfig
from tune_app.data import cache, load_dataset
from tune_app.errors import UsageError

CUB = SHARED_DATA / "cub-200-sample"

pytestmark = [needs_shared_data, pytest.mark.usefixtures("hub_offline")]


def cub_cfg(cache_dir: Path) -> DatasetConfig:
    return DatasetConfig(name="cub200", path=str(CUB), cache_dir=str(cache_dir), image_size=16)


def only_entry(root: Path) -> Path:
    (entry,) = [p for p in root.iterdir() if p.is_dir()]
    return entry


def leftovers(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def out_of_range_labels(path: Path) -> None:
    labels = np.load(path)
    labels[len(labels) // 2] = 99  # same size, one label past the 50 classes
    np.save(path, labels)


DAMAGE = {
    "truncated-images": (lambda e: truncate(e / "train.images.npy"), "train.images.npy has"),
    "deleted-labels": (lambda e: (e / "val.labels.npy").unlink(), "val.labels.npy is missing"),
    "garbage-meta": (lambda e: (e / "meta.json").write_text("{not json"), "meta.json"),
    "labels-out-of-range": (lambda e: out_of_range_labels(e / "test.labels.npy"), "test.labels.npy"),
    "no-marker": (lambda e: (e / cache.MARKER).unlink(), "no completeness marker"),
    "index-changed": (lambda e: np.save(e / "train.index.npy", np.load(e / "train.index.npy")[::-1].copy()),
                      "train.index.npy does not match its checksum"),
    "image-rows-changed": (lambda e: _zero_first_image(e / "val.images.npy"), "val.images.npy does not match"),
}


def _zero_first_image(path: Path) -> None:
    images = np.load(path, mmap_mode="r+")
    images[0] = 0  # size and shape unchanged: only the sampled hash can tell
    images.flush()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_entry_is_rebuilt_with_one_warning(damage, tmp_path, decodes, capfd):
    first = load_dataset(cub_cfg(tmp_path))
    reference = {name: (np.array(getattr(first, name).images), getattr(first, name).labels.copy())
                 for name in ("train", "val", "test")}
    entry = only_entry(tmp_path)
    capfd.readouterr()
    harm, reason = DAMAGE[damage]
    harm(entry)
    decodes.clear()

    again = load_dataset(cub_cfg(tmp_path))
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"warning: cache entry {entry} was incomplete (") and err[0].endswith("; rebuilding")
    assert reason in err[0]
    assert sorted(decodes) == [50, 100, 100]  # rebuilt once, from the source
    for name, (images, labels) in reference.items():
        assert np.array_equal(getattr(again, name).images, images)
        assert np.array_equal(getattr(again, name).labels, labels)
    assert leftovers(tmp_path) == [entry]
    load_dataset(cub_cfg(tmp_path))  # the rebuilt entry is good: no warning, no decoding
    assert capfd.readouterr().err == "" and len(decodes) == 3


def test_a_sound_entry_passes_every_check(tmp_path):
    load_dataset(cub_cfg(tmp_path))
    entry = cache.inspect_entry(only_entry(tmp_path))
    assert entry is not None and set(entry.splits) == set(cache.SPLITS)
    files = entry.meta["files"]
    assert set(files) == {f"{s}.{p}.npy" for s in cache.SPLITS for p in ("images", "labels", "index")}
    assert files["train.images.npy"]["shape"] == [100, 3, 16, 16]
    assert "sha256" in files["train.labels.npy"] and "sampled_sha256" in files["train.images.npy"]


def test_stale_temporary_folders_are_swept_unless_their_lock_is_held(tmp_path):
    from filelock import FileLock

    tmp_path.mkdir(exist_ok=True)
    dead = tmp_path / ".cub200-old-16x16-0123456789abcdef0123.k1l2m3n4.tmp"  # a SIGKILLed build
    live = tmp_path / ".cub200-busy-16x16-0123456789abcdef0123.a1b2c3d4.tmp"  # another process's build
    for folder in (dead, live):
        folder.mkdir()
        (folder / "train.images.npy").write_bytes(b"\0" * 1000)
    busy = FileLock(str(tmp_path / ".cub200-busy-16x16-0123456789abcdef0123.lock"))
    busy.acquire()
    try:
        load_dataset(cub_cfg(tmp_path))  # a cold build sweeps the cache folder
    finally:
        busy.release()
    assert not dead.exists() and live.is_dir()
    assert [p.name for p in leftovers(tmp_path)] == [live.name, only_entry_name(tmp_path)]


def only_entry_name(root: Path) -> str:
    (entry,) = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return entry


# --------------------------------------------------------------------------- free space


def test_too_little_free_space_is_refused_before_decoding(tmp_path, decodes, monkeypatch):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=100_000))
    with pytest.raises(UsageError) as raised:
        load_dataset(cub_cfg(tmp_path))
    message = raised.value.one_line()
    # 250 images of 3x16x16 bytes: 192,000 bytes of images alone.
    assert message.startswith(f"{tmp_path}: dataset.cache_dir: the decoded dataset needs ")
    assert "100000 bytes) are free" in message
    assert "dataset.cache_dir" in raised.value.fix and "TUNE_APP_CACHE" in raised.value.fix
    assert "dataset.image_size" in raised.value.fix
    assert decodes == [] and leftovers(tmp_path) == []
    needed = int(message.split("(")[1].split(" bytes")[0])
    assert 250 * 3 * 16 * 16 < needed < 250 * 3 * 16 * 16 + 20_000


def test_a_real_small_disk_is_refused_in_one_line(tmp_path):
    """A tmpfs of 300 KiB: without the check the memory-mapped writes die of SIGBUS."""
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(small)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root and must mount a tmpfs: {mounted.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        code = ("import sys\nfrom tune_app.config import DatasetConfig\nfrom tune_app.data import load_dataset\n"
                "from tune_app.errors import UsageError\n"
                f"try:\n    load_dataset(DatasetConfig(name='cub200', path={str(CUB)!r}, cache_dir={str(small)!r},"
                " image_size=32))\nexcept UsageError as err:\n    print(err.one_line())\n    sys.exit(2)\n")
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert f"{small}: dataset.cache_dir: the decoded dataset needs" in proc.stdout
        assert proc.stderr == ""
        assert [p for p in small.iterdir() if p.is_dir()] == []
    finally:
        subprocess.run(["umount", str(small)], check=False)


# --------------------------------------------------------------------------- interrupts


def big_imagefolder(root: Path, side: int = 6000, per_class: int = 30) -> Path:
    """Two classes of large JPEGs (hard links of one file: no disk, real decoding work)."""
    from PIL import Image

    y, x = np.mgrid[0:side, 0:side]
    pixels = np.stack([x * 255 // side, y * 255 // side, (x + y) % 256], axis=-1).astype(np.uint8)
    original = root / "original.jpg"
    Image.fromarray(pixels).save(original, quality=80)
    source = root / "big"
    for name in ("a", "b"):
        (source / name).mkdir(parents=True)
        for i in range(per_class):
            os.link(original, source / name / f"{i}.jpg")
    return source


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_decoding_at_once_and_leaves_nothing(signum, tmp_path):
    source = big_imagefolder(tmp_path)
    cache_dir = tmp_path / "cache"
    code = ("from tune_app.config import DatasetConfig\nfrom tune_app.data import load_dataset\n"
            f"load_dataset(DatasetConfig(name='imagefolder', path={str(source)!r}, cache_dir={str(cache_dir)!r},"
            " image_size=32))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # SIG_DFL in the child: a test run started in the background by a non-interactive shell
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list(cache_dir.glob(".*.tmp/train.images.npy")):  # decoding has started
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "decoding never started"
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the train split: 38 images of ~0.35 s each
        sent = time.monotonic()
        proc.send_signal(signum)
        proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    # Each thread ends after its current image (~0.35 s) plus the interpreter's exit; the bound
    # leaves room for a loaded 2-core CI machine. A pool that drains its queue took 17.7 s here.
    assert took < 6.0, f"{took:.1f} s from the signal to exit"
    assert [p.name for p in cache_dir.iterdir() if p.is_dir()] == []  # no entry, no temporary folder

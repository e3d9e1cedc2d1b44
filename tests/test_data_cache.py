"""Decode-once cache: the second load decodes nothing, a crash leaves no half entry, and a
changed source, size or split gets its own entry."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tune_app.config import DatasetConfig  # noqa: E402
from tune_app.data import cache, decode, load_dataset  # noqa: E402
from tune_app.data.stats import channel_stats_uint8  # noqa: E402
from tests.conftest import needs_shared_data, reference_stats  # noqa: E402

CUB = Path(__file__).resolve().parents[2] / "shared" / "data" / "cub-200-sample"

pytestmark = [needs_shared_data, pytest.mark.usefixtures("hub_offline")]


def cub_cfg(cache_dir: Path, **kwargs) -> DatasetConfig:
    return DatasetConfig(name="cub200", path=str(CUB), cache_dir=str(cache_dir), **{"image_size": 32, **kwargs})


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def test_second_load_decodes_nothing_and_memory_maps(tmp_path, decodes, monkeypatch):
    first = load_dataset(cub_cfg(tmp_path))
    assert sorted(decodes) == [50, 100, 100]  # val, train, test: every image exactly once
    decodes.clear()

    import datasets

    def no_reading(*args, **kwargs):
        raise AssertionError("a warm load of a local copy must not even open the source")

    monkeypatch.setattr(datasets, "load_dataset", no_reading)
    second = load_dataset(cub_cfg(tmp_path))
    assert decodes == []
    assert isinstance(second.train.images, np.memmap)
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(first, name).images, getattr(second, name).images)
        assert np.array_equal(getattr(first, name).labels, getattr(second, name).labels)
    assert (first.mean, first.std) == (second.mean, second.std)


def test_cached_arrays_feed_torch_without_copies_or_warnings(tmp_path):
    import warnings

    import torch

    bundle = load_dataset(cub_cfg(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a read-only array would warn here
        tensor = torch.from_numpy(np.ascontiguousarray(bundle.train.images))
    assert tensor.shape == (100, 3, 32, 32) and tensor.dtype == torch.uint8


def test_one_entry_per_size_split_and_source(tmp_path, decodes):
    load_dataset(cub_cfg(tmp_path))
    load_dataset(cub_cfg(tmp_path, image_size=24))
    load_dataset(cub_cfg(tmp_path, split_seed=1))
    load_dataset(cub_cfg(tmp_path, normalize="imagenet"))  # normalisation is not decoded
    assert len(entries(tmp_path)) == 3 and len(decodes) == 9


def test_a_changed_source_file_is_decoded_again(tmp_path, decodes):
    copy = tmp_path / "cub-copy"
    shutil.copytree(CUB, copy)
    cfg = DatasetConfig(name="cub200", path=str(copy), cache_dir=str(tmp_path / "cache"), image_size=16)
    load_dataset(cfg)
    load_dataset(cfg)
    assert len(decodes) == 3
    shard = next(copy.rglob("test-*.parquet"))
    os.utime(shard, ns=(shard.stat().st_atime_ns, shard.stat().st_mtime_ns + 10**9))
    load_dataset(cfg)
    assert len(decodes) == 6 and len(entries(tmp_path / "cache")) == 2


def test_a_crash_while_decoding_leaves_no_entry(tmp_path, monkeypatch):
    real = decode.decode_images
    calls = []

    def crash_on_second_split(batches, out, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # e.g. Ctrl-C half way through
        return real(batches, out, *args, **kwargs)

    monkeypatch.setattr(decode, "decode_images", crash_on_second_split)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(cub_cfg(tmp_path))
    assert entries(tmp_path) == []  # neither a final nor a temporary folder is left
    monkeypatch.setattr(decode, "decode_images", real)
    assert len(load_dataset(cub_cfg(tmp_path)).train) == 100


def test_a_half_written_folder_is_not_an_entry(tmp_path, decodes):
    load_dataset(cub_cfg(tmp_path))
    (entry,) = entries(tmp_path)
    (entry / "meta.json").unlink()  # what a crash before the rename would look like
    load_dataset(cub_cfg(tmp_path))
    assert len(decodes) == 6 and (entry / "meta.json").is_file()


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_APP_CACHE", str(tmp_path / "from-env"))
    assert cache.cache_root(None) == (tmp_path / "from-env").resolve()
    assert cache.cache_root(str(tmp_path / "explicit")) == (tmp_path / "explicit").resolve()
    load_dataset(DatasetConfig(name="cub200", path=str(CUB), image_size=8))  # cache_dir unset
    assert len(entries(tmp_path / "from-env")) == 1
    monkeypatch.delenv("TUNE_APP_CACHE")
    assert cache.cache_root(None) == Path("~/.cache/tune_app").expanduser().resolve()


def test_normalisation_statistics_are_cached_with_the_images(tmp_path):
    bundle = load_dataset(cub_cfg(tmp_path))
    (entry,) = entries(tmp_path)
    meta = json.loads((entry / "meta.json").read_text())
    expected = reference_stats(np.asarray(bundle.train.images))
    assert np.allclose(meta["mean"], expected[0], atol=1e-9) and np.allclose(meta["std"], expected[1], atol=1e-9)
    assert np.allclose(bundle.mean, meta["mean"])


def test_uint8_channel_stats_are_exact_in_small_chunks(monkeypatch):
    import tune_app.data.stats as stats

    images = np.random.default_rng(0).integers(0, 256, (37, 3, 9, 7), dtype=np.uint8)
    monkeypatch.setattr(stats, "CHUNK_BYTES", 500)  # many chunks
    mean, std = channel_stats_uint8(images)
    pixels = images.transpose(1, 0, 2, 3).reshape(3, -1) / 255.0
    assert np.allclose(mean, pixels.mean(axis=1), atol=1e-12)
    assert np.allclose(std, pixels.std(axis=1), atol=1e-9)

"""Bad source data and data settings, through the whole `search.main` call: one line naming
the file or key and the fix, exit code 2, no traceback, the results folder as it was, and
all of it before Ray starts (README's bad-input table, data rows)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_DATA, needs_shared_data
from tests.test_bad_input import check_bad_input, spec_text, w
from tune_app import search

pytestmark = needs_shared_data


def imagefolder(tmp: Path, classes: int, per_class: int, *, truncate: str | None = None) -> Path:
    """class_name/*.jpg written with PIL; `truncate` ('c1/3.jpg') is cut to half its bytes."""
    from PIL import Image

    root = tmp / f"folder-{classes}x{per_class}"
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / f"c{c}" / f"{i}.jpg")
    if truncate:
        data = (root / truncate).read_bytes()
        (root / truncate).write_bytes(data[:len(data) // 2])
    return root


def cub_with_truncated_image(tmp: Path, row: int = 7) -> Path:
    """A copy of the CUB sample whose train parquet holds one truncated JPEG at `row`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    copy = tmp / "cub-copy"
    shutil.copytree(SHARED_DATA / "cub-200-sample", copy)
    shard = copy / "data" / "train-00000-of-00001.parquet"
    shard.chmod(0o644)
    table = pq.read_table(shard)
    cells = table.column("image").to_pylist()
    cells[row] = {**cells[row], "bytes": cells[row]["bytes"][:len(cells[row]["bytes"]) // 3]}
    index = table.schema.get_field_index("image")
    table = table.set_column(index, table.schema.field(index), pa.array(cells, type=table.schema.field(index).type))
    pq.write_table(table, shard)
    return copy


def garbage_parquet(tmp: Path) -> Path:
    root = tmp / "garbage"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 this is not parquet " * 40)
    return root


def dataset_spec(t: Path, r: str, dataset: str) -> str:
    return w(t, spec_text(results=r).replace("  name: digits\n", dataset))


# id -> (command, setup(tmp, results) -> argv, expected text in the error); as in tests/test_bad_input.py
CASES = {
    "corrupt-image": (search, lambda t, r: ["--space", dataset_spec(t, r, (
        f"  name: imagefolder\n  path: {imagefolder(t, 2, 5, truncate='c1/3.jpg')}\n  image_size: 16\n"))],
        "c1/3.jpg: dataset.path: cannot decode image"),
    "corrupt-image-in-parquet": (search, lambda t, r: ["--space", dataset_spec(t, r, (
        f"  name: cub200\n  path: {cub_with_truncated_image(t)}\n  image_size: 16\n"))],
        "train-00000-of-00001.parquet: dataset.path: cannot decode the image of split 'train' row 7"),
    "unreadable-parquet": (search, lambda t, r: ["--space", dataset_spec(t, r, (
        f"  name: hf\n  path: {garbage_parquet(t)}\n"))], "train-00000-of-00001.parquet: dataset.path: unreadable"),
    "one-class": (search, lambda t, r: ["--space", dataset_spec(t, r, (
        f"  name: imagefolder\n  path: {imagefolder(t, 1, 6)}\n  image_size: 16\n"))], "at most one class"),
    "too-few-images-per-class": (search, lambda t, r: ["--space", dataset_spec(t, r, (
        f"  name: imagefolder\n  path: {imagefolder(t, 2, 2)}\n  image_size: 16\n"))],
        "2 of 2 classes have fewer than 3 images"),
    "image-size-too-large": (search, lambda t, r: ["--space", dataset_spec(t, r, (
        "  name: digits\n  image_size: 22400\n"))], "dataset.image_size: 22400 must be in [1, 1024]"),
}


# README row -> the test that covers it outside the CASES harness.
OTHER_CASES = {"cache-disk-full": "test_cache_disk_full"}


@pytest.fixture(scope="module", autouse=True)
def _shutdown_ray():
    yield
    import ray

    ray.shutdown()


@pytest.fixture
def no_ray(monkeypatch):
    """Every data error comes before Ray starts: starting it here is a failure."""
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started before the bad input was reported")

    monkeypatch.setattr(ray, "init", refuse)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_input(case, tmp_path, capsys, monkeypatch, no_ray):
    assert CASES[case][0] is search
    check_bad_input(CASES[case], tmp_path, capsys, monkeypatch)


def test_cache_disk_full(tmp_path, capsys, monkeypatch, no_ray):
    """README row `cache-disk-full`: free space is checked before any image is decoded."""
    real = shutil.disk_usage
    cache_dir = tmp_path / "cache"
    results = tmp_path / "results"
    # Only the cache's disk is short of space; the results folder has plenty.
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path) if Path(path).resolve().is_relative_to(
        results) else real(path)._replace(free=50_000))
    check_bad_input((search, lambda t, r: ["--space", dataset_spec(t, r, (
        f"  name: cub200\n  path: {SHARED_DATA / 'cub-200-sample'}\n  image_size: 64\n  cache_dir: {cache_dir}\n"))],
        f"{cache_dir}: dataset.cache_dir: the decoded dataset needs 2.9 MiB"), tmp_path, capsys, monkeypatch)
    assert [p for p in cache_dir.iterdir() if p.is_dir()] == []

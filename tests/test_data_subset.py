"""dataset.subset_per_class: a seeded per-class sample of the sources, drawn before the
train / val / test plan, decoded alone into a cache entry of its own."""

from __future__ import annotations

import os

# Before anything imports huggingface_hub: tests never touch the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.conftest import SHARED_DATA, needs_shared_data  # noqa: E402
from tests.test_bad_input import check_bad_input, spec_text, w  # noqa: E402
from tune_app import search  # noqa: E402
from tune_app.config import DatasetConfig  # noqa: E402
from tune_app.data import decode, hub, load_dataset  # noqa: E402
from tune_app.data.presets import PRESETS  # noqa: E402
from tune_app.data.splits import plan_splits, sample_per_class  # noqa: E402

TINY = SHARED_DATA / "tiny-imagenet-sample"
CUB = SHARED_DATA / "cub-200-sample"

pytestmark = [needs_shared_data, pytest.mark.usefixtures("hub_offline")]


def source_labels(folder: Path, split: str) -> np.ndarray:
    import pyarrow.parquet as pq

    (file,) = sorted((folder / "data").glob(f"{split}-*.parquet"))
    return pq.read_table(file, columns=["label"]).column("label").to_numpy()


def source_image(folder: Path, split: str, row: int) -> dict:
    import pyarrow.parquet as pq

    (file,) = sorted((folder / "data").glob(f"{split}-*.parquet"))
    return pq.read_table(file, columns=["image"]).column("image")[row].as_py()


def tiny_entry(cache_dir: Path, **kwargs):
    cfg = DatasetConfig(name="tiny-imagenet", path=str(TINY), image_size=16, cache_dir=str(cache_dir), **kwargs)
    return hub.load_entry(cfg, PRESETS["tiny-imagenet"])


# --------------------------------------------------------------------------- the sample


@needs_shared_data
def test_tiny_subset_takes_exactly_n_of_every_class_and_decodes_only_those(tmp_path, decodes):
    entry = tiny_entry(tmp_path, subset_per_class=10)
    train, val, test = (entry.splits[s] for s in ("train", "val", "test"))
    # 10 of each class's 100 train images, split 8 / 2 by val_fraction 0.2; 10 of its 25 test images.
    assert np.bincount(train.labels, minlength=200).tolist() == [8] * 200
    assert np.bincount(val.labels, minlength=200).tolist() == [2] * 200
    assert np.bincount(test.labels, minlength=200).tolist() == [10] * 200
    # Only the sample is decoded: 4,000 of the sample's 25,000 images.
    assert sorted(decodes) == sorted([1600, 400, 2000])
    assert train.images.shape == (1600, 3, 16, 16) and test.images.shape == (2000, 3, 16, 16)
    # Rows are rows of the source: their labels and images are the source's.
    assert np.array_equal(source_labels(TINY, "train")[train.source_index], train.labels)
    assert np.array_equal(source_labels(TINY, "train")[val.source_index], val.labels)
    assert np.array_equal(source_labels(TINY, "valid")[test.source_index], test.labels)
    assert not np.intersect1d(train.source_index, val.source_index).size
    row = int(test.source_index[7])
    assert np.array_equal(test.images[7], decode.decode_image(source_image(TINY, "valid", row), (16, 16)))


@needs_shared_data
def test_tiny_subset_is_seeded_by_split_seed(tmp_path):
    first, again = tiny_entry(tmp_path, subset_per_class=5), tiny_entry(tmp_path / "other", subset_per_class=5)
    other_seed = tiny_entry(tmp_path, subset_per_class=5, split_seed=7)
    for split in ("train", "val", "test"):
        assert np.array_equal(first.splits[split].source_index, again.splits[split].source_index)
        assert not np.array_equal(first.splits[split].source_index, other_seed.splits[split].source_index)
    assert first.path != other_seed.path


def test_digits_subset_counts_and_seed():
    bundle = load_dataset(DatasetConfig(name="digits", subset_per_class=20))
    labels = np.concatenate([bundle.train.labels, bundle.val.labels, bundle.test.labels])
    assert np.bincount(labels).tolist() == [20] * 10
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (128, 32, 40)
    again = load_dataset(DatasetConfig(name="digits", subset_per_class=20))
    other = load_dataset(DatasetConfig(name="digits", subset_per_class=20, split_seed=7))
    assert np.array_equal(bundle.train.images, again.train.images)
    assert not np.array_equal(bundle.train.images, other.train.images)


def test_plan_rows_are_seeded_and_a_larger_sample_holds_the_smaller():
    labels = np.repeat(np.arange(5), 30)
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]

    def rows(per_class: int, seed: int) -> np.ndarray:
        plan = plan_splits(labels, None, [str(c) for c in range(5)], val_fraction=0.2, test_fraction=0.2,
                           seed=seed, source=None, per_class=per_class)
        return np.sort(np.concatenate([plan.train, plan.val, plan.test]))

    assert np.bincount(labels[rows(12, 1)]).tolist() == [12] * 5
    assert np.array_equal(rows(12, 1), rows(12, 1))
    assert not np.array_equal(rows(12, 1), rows(12, 2))
    assert set(sample_per_class(labels, 6, seed=1, stream=0)) <= set(sample_per_class(labels, 12, seed=1, stream=0))
    # A class smaller than the sample keeps every image.
    assert len(sample_per_class(labels, 100, seed=1, stream=0)) == len(labels)


# --------------------------------------------------------------------------- the cache


@needs_shared_data
def test_subset_and_full_data_never_share_a_cache_entry(tmp_path, decodes):
    def cub(**kwargs):
        cfg = DatasetConfig(name="cub200", path=str(CUB), image_size=16, cache_dir=str(tmp_path), **kwargs)
        return hub.load_entry(cfg, PRESETS["cub200"])

    full = cub()
    assert sum(decodes) == 250  # CUB sample: 150 train + 100 test
    subset = cub(subset_per_class=2)
    assert sum(decodes) == 250 + 200  # 2 of each class's 3 train and of its 2 test images
    assert subset.path != full.path and "2perclass" in subset.path.name
    assert sorted(p for p in tmp_path.iterdir() if p.is_dir()) == sorted([full.path, subset.path])
    assert len(subset.splits["train"].labels) + len(subset.splits["val"].labels) == 100
    assert len(full.splits["train"].labels) + len(full.splits["val"].labels) == 150
    # Each is found again, and neither is rebuilt by loading the other.
    assert cub().path == full.path and cub(subset_per_class=2).path == subset.path
    assert sum(decodes) == 450


# --------------------------------------------------------------------------- bad values


@pytest.mark.parametrize("value, expected", [
    ("-1", "dataset.subset_per_class: -1 must be 0 (every image) or >= 2"),
    ("1", "dataset.subset_per_class: 1 must be 0 (every image) or >= 2"),
    ("ten", "dataset.subset_per_class: expected int, got 'ten'"),
    # digits has no test split: a third image a class is held out for test.
    ("2", "dataset.subset_per_class: 2 images a class cannot be split into train, validation and test"),
])
def test_bad_subset_is_one_line(value, expected, tmp_path, capsys, monkeypatch):
    check_bad_input((search, lambda t, r: ["--space", w(t, spec_text(results=r).replace(
        "  name: digits\n", f"  name: digits\n  subset_per_class: {value}\n"))], expected),
        tmp_path, capsys, monkeypatch)


# --------------------------------------------------------------------------- what a reader sees


def test_the_report_says_its_numbers_come_from_a_sample(tmp_path):
    from tests.test_class_names import finished_experiment
    from tune_app import report

    experiment = finished_experiment(tmp_path, {"name": "digits", "subset_per_class": 20})
    assert report.main(["--experiment", str(experiment)]) == 0
    header = (experiment / "report.md").read_text().split("\n## ", 1)[0]
    assert "dataset `digits` (a sample of 20 images a class, `dataset.subset_per_class`)" in header

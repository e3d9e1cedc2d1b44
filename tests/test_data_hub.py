"""The hub loader on the shared samples: the same `datasets.load_dataset` call reads the hub.

Tiny ImageNet sample: 20,000 train / 5,000 valid 64x64 JPEGs (decoded once per session).
CUB sample: 150 train / 100 test photos of varied sizes, two of them greyscale.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter

# Before anything imports huggingface_hub: tests never touch the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from tune_app.config import DatasetConfig  # noqa: E402
from tune_app.data import describe_dataset, hub, load_dataset  # noqa: E402
from tune_app.data.bundle import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from tests.conftest import needs_shared_data, reference_stats  # noqa: E402
from tune_app.data.presets import PRESETS  # noqa: E402
from tune_app.errors import UsageError  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY = SHARED / "tiny-imagenet-sample"
CUB = SHARED / "cub-200-sample"

pytestmark = needs_shared_data


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Offline even if `datasets` was imported before the environment was set."""
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("tune_app_cache"))


def source(path: Path):
    import datasets

    return datasets.load_dataset(str(path))


def as_chw(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).transpose(2, 0, 1)


@pytest.fixture(scope="session")
def tiny(cache_dir):
    cfg = DatasetConfig(name="tiny-imagenet", path=str(TINY), cache_dir=cache_dir, normalize="imagenet")
    return cfg, load_dataset(cfg), hub.load_entry(cfg, PRESETS["tiny-imagenet"])


@pytest.fixture(scope="session")
def cub(cache_dir):
    cfg = DatasetConfig(name="cub200", path=str(CUB), cache_dir=cache_dir)
    return cfg, load_dataset(cfg), hub.load_entry(cfg, PRESETS["cub200"])


# --------------------------------------------------------------------------- Tiny ImageNet


def test_tiny_split_sizes_and_shapes(tiny):
    _, bundle, _ = tiny
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (16_000, 4_000, 5_000)
    assert bundle.image_shape == (3, 64, 64) and bundle.num_classes == 200
    for split in (bundle.train, bundle.val, bundle.test):
        assert split.images.dtype == np.uint8 and split.labels.dtype == np.int64
    assert bundle.class_ids == source(TINY)["train"].features["label"].names  # names: test_class_names.py
    assert (bundle.mean, bundle.std) == (IMAGENET_MEAN, IMAGENET_STD)


def test_tiny_validation_is_stratified(tiny):
    _, bundle, _ = tiny
    train = np.bincount(bundle.train.labels, minlength=200)
    val = np.bincount(bundle.val.labels, minlength=200)
    assert (train == 80).all() and (val == 20).all()  # 100 a class, 20 % held out of every one


def test_tiny_train_and_val_partition_the_source_train_split(tiny):
    _, _, entry = tiny
    train, val = entry.splits["train"].source_index, entry.splits["val"].source_index
    assert not set(train) & set(val)
    assert sorted([*train, *val]) == list(range(20_000))
    assert entry.meta["splits"]["train"]["source_split"] == entry.meta["splits"]["val"]["source_split"] == "train"


def test_tiny_test_is_the_untouched_valid_split_in_order(tiny):
    _, bundle, entry = tiny
    valid = source(TINY)["valid"]
    assert entry.meta["splits"]["test"]["source_split"] == "valid"
    assert list(entry.splits["test"].source_index) == list(range(len(valid)))
    assert np.array_equal(bundle.test.labels, np.asarray(valid["label"]))
    for row in (0, 1, 2_500, len(valid) - 1):  # 64x64 already: decoding is lossless here
        assert np.array_equal(bundle.test.images[row], as_chw(valid[row]["image"]))


def test_tiny_cached_images_are_the_source_rows(tiny):
    _, bundle, entry = tiny
    train_source = source(TINY)["train"]
    for position in (0, 7, len(bundle.train) - 1):
        row = int(entry.splits["train"].source_index[position])
        assert np.array_equal(bundle.train.images[position], as_chw(train_source[row]["image"]))
        assert bundle.train.labels[position] == train_source[row]["label"]


def test_tiny_splits_share_no_image_beyond_the_sources_own_duplicates(tiny):
    _, bundle, entry = tiny
    data = source(TINY)
    # Tiny ImageNet itself holds a few byte-identical JPEGs (the sample: one pair inside
    # train, one shared by train and valid); those may legitimately land in two splits.
    jpeg = {name: [hashlib.sha1(cell["bytes"]).digest() for cell in
                   data[name].with_format("arrow")[:].column("image").to_pylist()] for name in data}
    counts = Counter(h for hashes in jpeg.values() for h in hashes)
    duplicated = {(name, row) for name, hashes in jpeg.items() for row, h in enumerate(hashes) if counts[h] > 1}
    assert len(duplicated) <= 4

    def digests(name: str) -> set[bytes]:
        split, origin = getattr(bundle, name), entry.meta["splits"][name]["source_split"]
        rows = entry.splits[name].source_index
        return {img.tobytes() for img, row in zip(split.images, rows) if (origin, int(row)) not in duplicated}

    train, val, test = digests("train"), digests("val"), digests("test")
    assert not train & val and not train & test and not val & test


# --------------------------------------------------------------------------- CUB-200


def test_cub_sizes_shapes_and_stratified_split(cub):
    _, bundle, entry = cub
    assert bundle.image_shape == (3, 224, 224) and bundle.num_classes == 50
    # 3 images a class is too few for an exact 80/20 split: every class gives one to val.
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (100, 50, 100)
    assert (np.bincount(bundle.train.labels) == 2).all() and (np.bincount(bundle.val.labels) == 1).all()
    train, val = entry.splits["train"].source_index, entry.splits["val"].source_index
    assert sorted([*train, *val]) == list(range(150))


def test_cub_test_is_the_untouched_test_split(cub):
    _, bundle, entry = cub
    test = source(CUB)["test"]
    assert list(entry.splits["test"].source_index) == list(range(100))
    assert np.array_equal(bundle.test.labels, np.asarray(test["label"]))


def test_cub_images_are_resized_from_the_source(cub):
    _, bundle, entry = cub
    train_source = source(CUB)["train"]
    row = int(entry.splits["train"].source_index[0])
    expected = train_source[row]["image"].convert("RGB").resize((224, 224), Image.BILINEAR)
    assert np.array_equal(bundle.train.images[0], np.asarray(expected).transpose(2, 0, 1))


def test_cub_greyscale_images_become_three_equal_channels(cub):
    _, bundle, entry = cub
    data = source(CUB)
    found = 0
    for split_name, source_split in (("train", "train"), ("val", "train"), ("test", "test")):
        modes = [img.mode for img in data[source_split]["image"]]
        for position, row in enumerate(entry.splits[split_name].source_index):
            if modes[row] == "L":
                image = getattr(bundle, split_name).images[position]
                assert image.shape == (3, 224, 224)
                assert np.array_equal(image[0], image[1]) and np.array_equal(image[1], image[2])
                found += 1
    assert found == 2


def test_cub_dataset_normalization_is_the_train_split_statistics(cub):
    _, bundle, _ = cub
    mean, std = reference_stats(np.asarray(bundle.train.images))
    assert np.allclose(bundle.mean, mean, atol=1e-9) and np.allclose(bundle.std, std, atol=1e-9)


def test_split_is_seeded(cache_dir):
    def val_rows(seed: int) -> np.ndarray:
        cfg = DatasetConfig(name="cub200", path=str(CUB), cache_dir=cache_dir, image_size=16, split_seed=seed)
        return hub.load_entry(cfg, PRESETS["cub200"]).splits["val"].source_index

    assert np.array_equal(val_rows(42), val_rows(42))
    assert not np.array_equal(val_rows(42), val_rows(7))


def test_image_size_overrides_the_preset(cache_dir):
    cfg = DatasetConfig(name="cub200", path=str(CUB), cache_dir=cache_dir, image_size=32)
    assert load_dataset(cfg).image_shape == (3, 32, 32)


def test_describe(cache_dir):
    assert describe_dataset(DatasetConfig(name="cub200")) == (200, 3)  # constants, reads nothing
    assert describe_dataset(DatasetConfig(name="tiny-imagenet")) == (200, 3)
    assert describe_dataset(DatasetConfig(name="cub200", path=str(CUB))) == (50, 3)
    assert describe_dataset(DatasetConfig(name="hf", path=str(TINY))) == (200, 3)


# --------------------------------------------------------------------------- generic datasets


def test_hf_preset_reads_a_saved_folder_and_uses_its_test_split(cache_dir):
    cfg = DatasetConfig(name="hf", path=str(CUB), cache_dir=cache_dir, image_size=48)
    bundle = load_dataset(cfg)
    assert bundle.image_shape == (3, 48, 48) and len(bundle.test) == 100 and bundle.num_classes == 50


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """3 classes x 10 images of mixed sizes and modes (RGB, greyscale, RGBA)."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "owl"]):
        (tmp_path / "folder" / name).mkdir(parents=True)
        for i in range(10):
            h, w = (24, 32) if i == 0 else (int(rng.integers(10, 40)), int(rng.integers(10, 40)))
            mode = ["RGB", "L", "RGBA"][(i + c) % 3]
            pixels = rng.integers(0, 256, (h, w, len(mode)) if mode != "L" else (h, w), dtype=np.uint8)
            Image.fromarray(pixels, mode).save(tmp_path / "folder" / name / f"{i}.png")
    return tmp_path / "folder"


def test_imagefolder_holds_out_a_stratified_test_split(image_folder, tmp_path):
    cfg = DatasetConfig(name="imagefolder", path=str(image_folder), cache_dir=str(tmp_path / "cache"))
    bundle = load_dataset(cfg)
    entry = hub.load_entry(cfg, PRESETS["imagefolder"])
    assert bundle.class_names == ["cat", "dog", "owl"]
    assert bundle.image_shape == (3, 24, 32)  # no image_size: the first image's size
    assert (np.bincount(bundle.test.labels) == 2).all()  # 20 % of 10 per class
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 30
    rows = [entry.splits[s].source_index for s in ("train", "val", "test")]
    assert sorted(np.concatenate(rows).tolist()) == list(range(30))  # disjoint and complete
    assert {entry.meta["splits"][s]["source_split"] for s in ("train", "val", "test")} == {"train"}


# --------------------------------------------------------------------------- user errors


def _error(cfg: DatasetConfig) -> UsageError:
    with pytest.raises(UsageError) as info:
        load_dataset(cfg)
    assert "\n" not in str(info.value)
    return info.value


def test_missing_image_column_names_the_columns_and_the_key(tmp_path):
    err = _error(DatasetConfig(name="cub200", path=str(CUB), image_column="photo", cache_dir=str(tmp_path)))
    assert err.key == "dataset.image_column"
    assert "'photo'" in err.message and "image, label, label_name, bbox" in err.message


def test_missing_label_column_names_the_columns_and_the_key(tmp_path):
    err = _error(DatasetConfig(name="hf", path=str(CUB), label_column="species", cache_dir=str(tmp_path)))
    assert err.key == "dataset.label_column"
    assert "'species'" in err.message and "image, label, label_name, bbox" in err.message


def test_a_column_of_the_wrong_kind_is_refused(tmp_path):
    err = _error(DatasetConfig(name="hf", path=str(CUB), image_column="label_name", cache_dir=str(tmp_path)))
    assert err.key == "dataset.image_column" and "not images" in err.message
    err = _error(DatasetConfig(name="hf", path=str(CUB), label_column="bbox", cache_dir=str(tmp_path)))
    assert err.key == "dataset.label_column" and "not class labels" in err.message


def test_unknown_hub_id_offline_asks_for_a_local_copy(tmp_path):
    err = _error(DatasetConfig(name="hf", path="nobody/no-such-dataset-42", cache_dir=str(tmp_path)))
    assert err.key == "dataset.path"
    assert "no-such-dataset-42" in err.message and "dataset.path" in err.fix and "local" in err.fix


def test_missing_folder_and_missing_path(tmp_path):
    assert _error(DatasetConfig(name="imagefolder", path=str(tmp_path / "nope"))).key == "dataset.path"
    assert _error(DatasetConfig(name="hf", path="./no/such/folder")).key == "dataset.path"
    assert _error(DatasetConfig(name="hf")).key == "dataset.path"


def test_preset_without_its_test_split_is_refused(tmp_path):
    err = _error(DatasetConfig(name="tiny-imagenet", path=str(CUB), cache_dir=str(tmp_path)))
    assert err.key == "dataset.path" and "'valid'" in err.message

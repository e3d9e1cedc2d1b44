"""Bad source data is a one-line UsageError before any decoding: the split plan is checked in
one place (splits.plan_splits, used by the hub loader and digits), and an image that cannot
be decoded is named by its position in the source."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tune_app.config import DatasetConfig
from tune_app.data import decode, describe_dataset, load_dataset
from tune_app.data.splits import plan_splits
from tune_app.errors import UsageError


def plan(train, test=None, *, val_fraction=0.2, test_fraction=0.2, source="/data/src"):
    labels = np.asarray(train)
    names = [f"class{i}" for i in range(int(labels.max()) + 1)] if len(labels) else []
    return plan_splits(labels, None if test is None else np.asarray(test), names, val_fraction=val_fraction,
                       test_fraction=test_fraction, seed=0, source=source)


def test_one_class_is_refused_naming_the_source():
    with pytest.raises(UsageError) as raised:
        plan([0] * 20, [0] * 5)
    assert raised.value.one_line().startswith("/data/src: dataset.path: the training data has 20 images of 1 class")
    assert "at least 2" in raised.value.one_line() and raised.value.fix


def test_a_class_too_small_to_split_is_refused():
    # 2 classes x 2 images without a test split: it used to run with 0 validation images.
    with pytest.raises(UsageError, match="2 of 2 classes have fewer than 3 images"):
        plan([0, 0, 1, 1])
    # With the source's own test split, 2 images a class are enough (train + val) ...
    split = plan([0, 0, 1, 1], [0, 1])
    assert len(split.train) == 2 and len(split.val) == 2
    # ... but not 1.
    with pytest.raises(UsageError, match=r"1 of 3 classes have fewer than 2 images \('class2'\)"):
        plan([0, 0, 1, 1, 2], [0, 1, 2])


def test_a_fraction_that_starves_a_class_names_the_fraction_that_works():
    labels = [0] * 2 + [1] * 98
    with pytest.raises(UsageError) as raised:
        plan(labels, [0, 1], val_fraction=0.9)
    err = raised.value
    assert err.key == "dataset.val_fraction" and "get no training image" in err.message
    suggested = float(err.fix.rsplit(" ", 1)[1])
    assert 0 < suggested < 0.9
    split = plan(labels, [0, 1], val_fraction=suggested)  # the advice works
    assert set(np.asarray(labels)[split.train]) == {0, 1}


def test_every_class_gets_train_and_val_images_on_small_data():
    labels = np.repeat(np.arange(10), 3)
    split = plan(labels)
    for part in (split.train, split.val, split.test):
        assert set(labels[part]) == set(range(10))


def test_digits_shares_the_checked_plan():
    # scikit-learn cannot stratify 2 validation images over 10 classes: this was a traceback.
    bundle = load_dataset(DatasetConfig(name="digits", val_fraction=0.001))
    assert len(bundle.val) == 10 and set(bundle.val.labels) == set(range(10))
    default = load_dataset(DatasetConfig(name="digits"))
    assert (len(default.train), len(default.val), len(default.test)) == (1149, 288, 360)


def jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_image_is_named_by_its_position(workers):
    cells = [{"bytes": jpeg(i), "path": None} for i in range(150)]
    cells[70] = {"bytes": cells[70]["bytes"][:40], "path": None}  # in the second chunk of 64
    out = np.zeros((150, 3, 8, 8), dtype=np.uint8)
    with pytest.raises(decode.DecodeError) as raised:
        decode.decode_images([cells[:100], cells[100:]], out, (8, 8), desc="test", workers=workers)
    assert raised.value.position == 70 and "\n" not in raised.value.reason


def test_dry_run_describe_names_a_one_class_imagefolder(tmp_path):
    (tmp_path / "only").mkdir()
    for i in range(3):
        (tmp_path / "only" / f"{i}.jpg").write_bytes(jpeg(i))
    with pytest.raises(UsageError, match="at most one class"):
        describe_dataset(DatasetConfig(name="imagefolder", path=str(tmp_path)))

"""Readable class names: Tiny ImageNet's wnids and CUB's numbered folders become the names
that reports, summaries and metrics.json show; the source's ids stay alongside."""

from __future__ import annotations

import os

# Before anything imports huggingface_hub: tests never touch the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import configparser  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.conftest import REPO, SHARED_DATA, needs_shared_data  # noqa: E402
from tune_app import report, retrain_best  # noqa: E402
from tune_app.config import DatasetConfig, TrialConfig  # noqa: E402
from tune_app.data import load_dataset, names  # noqa: E402

TINY = SHARED_DATA / "tiny-imagenet-sample"
CUB = SHARED_DATA / "cub-200-sample"

pytestmark = [needs_shared_data, pytest.mark.usefixtures("hub_offline")]


# --------------------------------------------------------------------------- names of the samples


@needs_shared_data
def test_tiny_imagenet_shows_wordnet_words_and_keeps_the_wnids():
    import datasets

    bundle = load_dataset(DatasetConfig(name="tiny-imagenet", path=str(TINY), image_size=8, subset_per_class=2))
    wnids = datasets.load_dataset_builder(str(TINY)).info.features["label"].names
    assert bundle.class_ids == wnids
    shown = dict(zip(bundle.class_ids, bundle.class_names))
    assert shown["n02124075"] == "Egyptian cat"
    assert shown["n04099969"] == "rocking chair"  # first synonym of "rocking chair, rocker"
    assert len(set(bundle.class_names)) == 200 and not any(n.startswith("n0") for n in bundle.class_names)


@needs_shared_data
def test_the_shipped_words_table_is_the_datasets_own():
    table = {}
    for line in (SHARED_DATA / "tiny-imagenet-words.txt").read_text().splitlines():
        wnid, words = line.split("\t")
        table[wnid] = words.split(",")[0].strip()
    assert names.wordnet_words() == table


def test_the_words_table_is_package_data():
    """A wheel or non-editable install carries only files named in [options.package_data]."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    shipped = parser["options.package_data"]["tune_app.data"].split()
    assert names.WORDS_FILE in shipped and (REPO / "tune_app" / "data" / names.WORDS_FILE).is_file()


@needs_shared_data
def test_cub_shows_folder_names_without_number_or_underscores():
    bundle = load_dataset(DatasetConfig(name="cub200", path=str(CUB), image_size=8))
    assert bundle.class_ids[0] == "001.Black_footed_Albatross"
    assert bundle.class_names[0] == "Black footed Albatross"
    assert not any("_" in n or n[:1].isdigit() for n in bundle.class_names)


def test_names_a_renamer_gives_twice_carry_their_ids():
    shown = names.display_names(["001.Tern", "002.Tern", "003.Gull"], names.folder_names)
    assert shown == ["Tern (001.Tern)", "Tern (002.Tern)", "Gull"]
    assert names.display_names(["cat", "dog"], None) == ["cat", "dog"]  # generic sources: as they are


# --------------------------------------------------------------------------- what a reader sees


def finished_experiment(root: Path, dataset: dict) -> Path:
    """An experiment folder as a finished one-trial search leaves it (no Ray needed)."""
    path = root / "birds"
    (path / "trial_00000").mkdir(parents=True)
    cfg = TrialConfig.from_dict({
        "dataset": dataset, "model": {"stage_channels": [4, 8], "stage_blocks": 1},
        "train": {"epochs": 1, "batch_size": 32, "threads": 1, "device": "cpu", "amp": False}})
    meta = {"status": "finished", "spec_path": str(root / "spec.yaml"), "base": cfg.to_dict(), "space": {},
            "search": {"algorithm": "grid", "num_samples": 1, "metric": "val_accuracy", "mode": "max"},
            "scheduler": {"name": "none"}, "retrain": {"epochs": 1, "train_on": "train"},
            "output": {"name": "birds"}}
    (path / "experiment.json").write_text(json.dumps(meta))
    (path / "trial_00000" / "params.json").write_text(json.dumps({"hp": {}}))
    (path / "trial_00000" / "result.json").write_text(
        json.dumps({"epoch": 1, "val_accuracy": 0.02, "val_loss": 3.9}) + "\n")
    return path


@needs_shared_data
def test_retrain_summary_metrics_and_report_show_readable_names(tmp_path):
    experiment = finished_experiment(tmp_path, {"name": "cub200", "path": str(CUB), "image_size": 16})
    assert retrain_best.main(["--experiment", str(experiment)]) == 0
    metrics = json.loads((experiment / "best" / "metrics.json").read_text())
    readable = names.folder_names(metrics["class_ids"])
    assert metrics["class_ids"][0] == "001.Black_footed_Albatross"
    assert metrics["class_names"] == readable and readable[0] == "Black footed Albatross"
    assert list(metrics["test"]["per_class_accuracy"]) == readable

    summary = (experiment / "best" / "summary.md").read_text()
    hardest = next(line for line in summary.splitlines() if line.startswith("Hardest classes"))
    assert any(name in hardest for name in readable)
    assert not any(raw in hardest for raw in metrics["class_ids"])

    assert report.main(["--experiment", str(experiment)]) == 0
    text = (experiment / "report.md").read_text()
    listed = [line for line in text.splitlines() if line.startswith(("Worst 10 classes", "Best 10 classes"))]
    assert len(listed) == 2
    for line in listed:
        assert any(name in line for name in readable)
        assert not any(raw in line for raw in metrics["class_ids"])

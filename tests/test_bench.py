"""tune_app.bench on a tiny run: both pipelines train, the warm cache costs < 2 % of the cold."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import json  # noqa: E402
import random  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from tests.conftest import needs_shared_data  # noqa: E402
from tune_app import bench  # noqa: E402
from tune_app.config import AugmentConfig  # noqa: E402

CUB = Path(__file__).resolve().parents[2] / "shared" / "data" / "cub-200-sample"
TINY_MODEL = ["--channels", "8,16,32", "--blocks", "1,1,1", "--batch-size", "32", "--epochs", "1"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@needs_shared_data
def test_bench_runs_both_pipelines_and_the_cache_is_cheap_when_warm(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench.main(["--dataset", "cub200", "--path", str(CUB), "--image-size", "32", "--limit", "96",
                       "--device", "cpu", "--workers", "2", *TINY_MODEL, "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "tune_app" in printed and "reference" in printed and "warm/cold" in printed
    result = json.loads(out.read_text())
    for pipeline in ("tune_app", "reference"):
        row = result[pipeline]
        assert row["images"] == 96
        assert row["train_images_per_s"] > 0 and row["data_only_images_per_s"] > 0
    prep = result["data_preparation"]
    assert prep["images"] == 250
    assert prep["warm_s"] < 0.02 * prep["cold_s"]
    assert result["environment"]["device"] == "cpu"


def test_bench_synthetic_runs_both_pipelines_without_dataset_files(tmp_path):
    out = tmp_path / "bench.json"
    assert bench.main(["--synthetic", "64", "--image-size", "16", "--device", "cpu", "--workers", "2",
                       *TINY_MODEL, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for pipeline in ("tune_app", "reference"):
        assert result[pipeline]["images"] == 64 and result[pipeline]["train_images_per_s"] > 0
    assert result["synthetic"]["side"] == 16 and "data_preparation" not in result


def test_synthetic_jpegs_are_photo_sized_and_both_pipelines_see_the_same_pixels():
    split, rows = bench.synthetic_jpegs(200, 64, 200, seed=1)
    assert split.images.shape == (200, 3, 64, 64) and split.images.dtype == np.uint8
    # Tiny ImageNet's 64 px JPEGs average ~1.9 KB; random noise would be ~3x that and decode slower.
    assert 1200 < np.mean([len(j) for j in rows.jpegs]) < 3000
    for i in (0, 57, 199):
        row = rows[i]
        assert isinstance(row["image"], Image.Image) and row["label"] == split.labels[i]
        assert (np.asarray(row["image"].convert("RGB")).transpose(2, 0, 1) == split.images[i]).all()
    assert len(set(split.labels.tolist())) > 50  # labels drawn over the classes


def test_bench_refuses_mismatched_stages(capsys):
    assert bench.main(["--channels", "8,16", "--blocks", "1,1,1"]) == 2
    assert "--blocks" in capsys.readouterr().err


def test_reference_augmentation_keeps_shape_and_applies_flip_and_crop():
    random.seed(0)
    pixels = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    flipped = bench.reference_augment(image, AugmentConfig(hflip=1.0))
    assert np.array_equal(flipped, pixels[:, ::-1])
    assert np.array_equal(bench.reference_augment(image, AugmentConfig()), pixels)
    crops = {bench.reference_augment(image, AugmentConfig(crop_padding=2)).tobytes() for _ in range(40)}
    assert len(crops) > 5
    jittered = bench.reference_augment(image, AugmentConfig(brightness=0.2, contrast=0.2, saturation=0.2,
                                                            hue=0.05))
    assert jittered.shape == (12, 10, 3) and jittered.dtype == np.uint8


def test_the_hand_procedure_is_the_same_grid_three_epochs_each_no_scheduler_no_race():
    import yaml

    from tests.conftest import REPO
    from tune_app import bench_selection

    spec = yaml.safe_load((REPO / "search_spaces" / "tiny_imagenet_cpu.yaml").read_text())
    hand = bench_selection.hand_spec(spec, seed=7)
    assert hand["model"] == spec["model"] and hand["dataset"] == spec["dataset"]
    assert hand["train"]["lr"] == spec["train"]["lr"] and hand["train"]["weight_decay"] == spec["train"]["weight_decay"]
    assert hand["train"]["epochs"] == 3 and hand["train"]["seed"] == 7
    assert hand["scheduler"] == {"name": "none"} and hand["select"] == {"finalists": 0}
    assert hand["retrain"]["epochs"] == 10 and hand["retrain"]["train_on"] == "train"  # whatever the spec says
    ours = bench_selection.tune_app_spec(spec, seed=7)
    assert ours["train"]["seed"] == 7 and {k: v for k, v in ours.items() if k != "train"} == \
        {k: v for k, v in spec.items() if k != "train"}
    assert spec["train"]["seed"] == 42  # the shipped spec itself is left alone


def test_the_selection_summary_averages_test_accuracy_epochs_and_time():
    from tune_app import bench_selection

    runs = [{"seed": 0, "test_accuracy": 0.10, "epochs": 46, "seconds": 100.0},
            {"seed": 1, "test_accuracy": 0.14, "epochs": 46, "seconds": 120.0}]
    s = bench_selection.summarise(runs)
    assert s["test_accuracy_mean"] == pytest.approx(0.12) and s["test_accuracy_std"] == pytest.approx(0.0282842, abs=1e-6)
    assert (s["epochs_mean"], s["epochs_max"], s["seconds_mean"]) == (46, 46, 110.0)


def test_one_procedure_runs_alone_and_each_finished_run_is_saved_before_the_next(tmp_path, monkeypatch, capsys):
    from tests.conftest import REPO
    from tune_app import bench_selection

    ran = []

    def fake_run(spec, name, storage):
        ran.append(name)
        if len(ran) == 3:
            raise KeyboardInterrupt  # the bench killed during its third run
        return {"test_accuracy": 0.1 + len(ran) / 100, "epochs": 51, "epochs_by_stage": {}, "seconds": 1.0,
                "picked": {}, "chosen_by": "search"}

    monkeypatch.setattr(bench_selection, "run_procedure", fake_run)
    out = tmp_path / "selection.json"
    code = bench.main(["--compare-selection", str(REPO / "search_spaces" / "tiny_imagenet_cpu.yaml"),
                       "--procedures", "tune_app", "--repeats", "3", "--json", str(out)])
    assert code == 130 and ran == ["tune_app-42", "tune_app-43", "tune_app-44"]
    kept = json.loads(out.read_text())["selection"]
    assert "hand" not in kept and [r["seed"] for r in kept["tune_app"]["runs"]] == [42, 43]
    assert kept["tune_app"]["test_accuracy_mean"] == pytest.approx(0.115)
    assert "tune_app" in bench_selection.table(kept) and "tune_app - hand" not in bench_selection.table(kept)


def test_an_unknown_procedure_is_one_line_with_a_suggestion(capsys):
    assert bench.main(["--compare-selection", "x.yaml", "--procedures", "hand,tune-app"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--procedures: unknown procedure 'tune-app'" in err[0] and "'tune_app'" in err[0]


def test_a_search_that_fails_part_way_is_resumed_before_retraining(tmp_path, monkeypatch):
    import subprocess
    import types

    from tune_app import bench_selection

    calls = []

    def fake_run(argv, **kwargs):
        command = argv[2:]
        calls.append(command[0] if "--resume" not in command else "resume")
        experiment = tmp_path / "tune_app-42"
        if command[0] == "tune_app.search":
            experiment.mkdir(exist_ok=True)
            (experiment / "experiment.json").write_text("{}")  # the search got as far as its folder
            code = 0 if calls.count("resume") == 2 else 1  # Ray lost twice: the second resume finishes
        else:
            (experiment / "best").mkdir()
            (experiment / "best" / "metrics.json").write_text(json.dumps({
                "test": {"accuracy": 0.12}, "procedure_epochs": {"total": 51}, "hparams": {"train.lr": 1e-3}}))
            code = 0
        return types.SimpleNamespace(returncode=code)

    monkeypatch.setattr(subprocess, "run", fake_run)
    run = bench_selection.run_procedure({"train": {}}, "tune_app-42", tmp_path)
    assert calls == ["tune_app.search", "resume", "resume", "tune_app.retrain_best"]
    assert (run["test_accuracy"], run["epochs"], run["search_resumes"]) == (0.12, 51, 2)
    calls.clear()
    monkeypatch.setattr(bench_selection, "MAX_RESUMES", 1)
    with pytest.raises(RuntimeError, match="tune_app.search failed for tune_app-42"):
        bench_selection.run_procedure({"train": {}}, "tune_app-42", tmp_path)
    assert calls == ["tune_app.search", "resume"]


def test_a_search_whose_ray_never_started_is_started_again(tmp_path, monkeypatch):
    import subprocess
    import types

    from tune_app import bench_selection

    calls = []

    def fake_run(argv, **kwargs):
        calls.append(" ".join(argv[2:4]))
        experiment = tmp_path / "hand-42"
        if argv[2] == "tune_app.search" and len(calls) == 1:
            return types.SimpleNamespace(returncode=1)  # Ray's start-up timed out: no folder yet
        if argv[2] == "tune_app.search":
            (experiment / "best").mkdir(parents=True)
            (experiment / "best" / "metrics.json").write_text(json.dumps({
                "test": {"accuracy": 0.1}, "procedure_epochs": {"total": 46}, "hparams": {}}))
        return types.SimpleNamespace(returncode=0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    run = bench_selection.run_procedure({"train": {}}, "hand-42", tmp_path)
    assert calls == ["tune_app.search --space"] * 2 + ["tune_app.retrain_best --experiment"]
    assert run["search_resumes"] == 1


def test_a_spec_that_searches_as_the_hand_procedure_shares_the_search_and_retrains_twice(tmp_path, monkeypatch):
    import subprocess
    import types

    import yaml

    from tests.conftest import REPO
    from tune_app import bench_selection

    spec = yaml.safe_load((REPO / "search_spaces" / "tiny_imagenet_cpu.yaml").read_text())
    calls = []

    def fake_run(argv, **kwargs):
        calls.append(argv[2:])
        experiment = tmp_path / "search-42"
        if argv[2] == "tune_app.search":
            experiment.mkdir()
        else:
            hand = "--epochs=10" in argv
            best = experiment / ("best" if hand else "best-2")
            best.mkdir()
            best_metrics = {"test": {"accuracy": 0.12 if hand else 0.15},
                            "procedure_epochs": {"total": 46 if hand else 51}, "hparams": {"train.lr": 1e-3}}
            (best / "metrics.json").write_text(json.dumps(best_metrics))
        return types.SimpleNamespace(returncode=0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    specs = {"hand": bench_selection.hand_spec(spec, 42), "tune_app": bench_selection.tune_app_spec(spec, 42)}
    assert bench_selection.shared_search(specs)
    comparison = bench_selection.compare_selection(str(REPO / "search_spaces" / "tiny_imagenet_cpu.yaml"), 1,
                                                   tmp_path)
    assert [c[0] for c in calls] == ["tune_app.search", "tune_app.retrain_best", "tune_app.retrain_best"]
    assert calls[1][-2:] == ["--epochs=10", "--train-on=train"]
    assert calls[2][-2:] == [f"--epochs={spec['retrain']['epochs']}", f"--train-on={spec['retrain']['train_on']}"]
    assert comparison["hand"]["runs"][0]["test_accuracy"] == 0.12 and comparison["tune_app"]["runs"][0]["epochs"] == 51
    assert "ran once (search-42)" in bench_selection.table(comparison)


def test_a_spec_with_its_own_search_does_not_share_it():
    import yaml

    from tests.conftest import REPO
    from tune_app import bench_selection

    spec = yaml.safe_load((REPO / "search_spaces" / "tiny_imagenet_cpu.yaml").read_text())
    spec["scheduler"] = {"name": "asha", "grace_period": 1}
    spec["train"]["epochs"] = 6
    specs = {"hand": bench_selection.hand_spec(spec, 42), "tune_app": bench_selection.tune_app_spec(spec, 42)}
    assert not bench_selection.shared_search(specs)

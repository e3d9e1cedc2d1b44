"""`python -m tune_app.report` on a real small finished search (+ retrain-best + checks)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_tensorboard import small_finished_search
from tune_app import report
from tune_app.errors import USAGE_EXIT
from tune_app.experiment import load_experiment

# Every test here runs (or shares a module fixture that runs) a real Ray search.
pytestmark = pytest.mark.ray

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEARCH_FIGURES = ("learning_curves.png", "hparam_effects.png")
RETRAIN_FIGURES = ("confusion_matrix.png", "per_class_accuracy.png")


def assert_png(path: Path, min_bytes: int = 10_000) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) >= min_bytes, f"{path}: only {len(data)} bytes"


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> Path:
    experiment = small_finished_search(tmp_path_factory)
    assert report.main(["--experiment", str(experiment)]) == 0
    return experiment


def test_report_has_the_ranked_table_with_every_trial(reported):
    text = (reported / "report.md").read_text()
    exp = load_experiment(reported)
    section = text.split("## Trials, best first", 1)[1].split("\n## ", 1)[0]
    header, _, *table = [line for line in section.splitlines() if line.startswith("| ")]
    for column in ("rank", "trial", "groups", "lr", "epochs run", "best_val_accuracy", "val_loss", "status"):
        assert f" {column} " in header
    rows = {line.split(" | ")[1]: line for line in table}
    assert [line.split(" | ")[0] for line in table] == [f"| {i}" for i in range(1, len(table) + 1)]  # ranked
    assert set(rows) == {t.name for t in exp.trials}
    assert "stopped early" in text and "completed" in text
    best = exp.best_trial()
    assert f"**`{best.name}`**" in text  # named as the best trial in the summary


def test_every_figure_is_written_and_referenced(reported):
    text = (reported / "report.md").read_text()
    for name in SEARCH_FIGURES + RETRAIN_FIGURES + ("lr_range.png",):
        assert_png(reported / "report" / name)
        assert f"](report/{name})" in text, name


def test_retrain_metrics_sit_next_to_val_with_baselines(reported):
    text = (reported / "report.md").read_text()
    metrics = json.loads((reported / "best" / "metrics.json").read_text())
    assert "| **test** |" in text
    accuracy_row = next(line for line in text.splitlines() if line.startswith("| accuracy |"))
    assert f"{metrics['test']['accuracy']:.4f}" in accuracy_row
    for row in ("| top-5 accuracy |", "| macro-F1 |", "| baseline: majority class |", "| baseline: uniform random |"):
        assert row in text
    assert "Worst 5 classes" in text and "Best 5 classes" in text


def test_pre_search_checks_are_included(reported):
    text = (reported / "report.md").read_text()
    assert "## Checks before the search" in text
    assert "loss at init" in text and "overfit 16 images" in text and "lr range test" in text


def test_regenerating_touches_only_the_report_files(reported):
    own = {reported / "report.md", *(reported / "report").glob("*.png")}
    before = {p: p.stat().st_mtime_ns for p in reported.rglob("*") if p.is_file() and p not in own}
    assert report.main(["--experiment", str(reported)]) == 0
    after = {p: p.stat().st_mtime_ns for p in reported.rglob("*") if p.is_file() and p not in own}
    assert after == before


def test_newest_experiment_is_the_default(reported, capsys):
    assert report.main(["--results", str(reported.parent)]) == 0
    assert str(reported / "report.md") in capsys.readouterr().out


def test_not_an_experiment_folder_is_a_one_line_usage_error(tmp_path, capsys):
    assert report.main(["--experiment", str(tmp_path)]) == USAGE_EXIT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a tune_app experiment folder" in err and err.count("\n") == 1


def test_experiment_without_a_finished_epoch_is_a_usage_error(reported, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "trial_00000").mkdir(parents=True)
    shutil.copyfile(reported / "experiment.json", empty / "experiment.json")
    shutil.copyfile(reported / "trial_00000" / "params.json", empty / "trial_00000" / "params.json")
    assert report.main(["--experiment", str(empty)]) == USAGE_EXIT
    assert "no trial of this experiment has finished an epoch" in capsys.readouterr().err
    assert not (empty / "report.md").exists()


def test_many_classes_get_a_sorted_bar_chart_and_worst_best_lists(reported, tmp_path):
    """200 classes (CUB, Tiny ImageNet): no per-class tick labels, the extremes listed instead."""
    import numpy as np

    n = 200
    rng = np.random.default_rng(0)
    names = [f"class_{i:03d}" for i in range(n)]
    accuracy = rng.uniform(0, 1, n)
    metrics = json.loads((reported / "best" / "metrics.json").read_text())
    metrics["class_names"] = names
    metrics["test"]["per_class_accuracy"] = dict(zip(names, accuracy.tolist()))
    cm = rng.integers(0, 3, (n, n))
    np.fill_diagonal(cm, 10)
    metrics["test"]["confusion_matrix"] = cm.tolist()
    fake = tmp_path / "many"
    shutil.copytree(reported, fake, ignore=shutil.ignore_patterns("checkpoint*", "report*"))
    (fake / "best" / "metrics.json").write_text(json.dumps(metrics))
    assert report.main(["--experiment", str(fake)]) == 0
    for name in RETRAIN_FIGURES:
        assert_png(fake / "report" / name)
    text = (fake / "report.md").read_text()
    worst = next(line for line in text.splitlines() if line.startswith("Worst 10 classes"))
    assert worst.split(": ", 1)[1].startswith(names[int(accuracy.argmin())])
    assert names[int(accuracy.argmax())] in next(line for line in text.splitlines() if line.startswith("Best 10"))


def test_checks_are_found_for_a_search_renamed_with_name(reported):
    """`search --name other` stores output.name "other"; its spec's checks are still found."""
    renamed = reported.parent / "renamed"
    # No tb/ (other modules' TensorBoard views of this results folder stay as they were); removed after.
    shutil.copytree(reported, renamed, ignore=shutil.ignore_patterns("tb", "checkpoint*", "best*", "report*"))
    try:
        meta = json.loads((renamed / "experiment.json").read_text())
        meta["output"]["name"] = "renamed"
        (renamed / "experiment.json").write_text(json.dumps(meta))
        assert report.find_checks(load_experiment(renamed)) == reported.parent / "checks" / "small" / "checks.json"
    finally:
        shutil.rmtree(renamed)


def test_accuracy_axis_frames_the_leaders_instead_of_squeezing_them_under_one():
    from tune_app.report import focus_limits

    # The quickstart's top trials: 0.97 to 0.9965, which a 0-to-1 axis draws as one line.
    lo, hi = focus_limits([0.97, 0.9965, 0.98, 0.985, 0.99, 0.9861])
    assert 0.9 < lo < 0.97 and hi == 1.0
    assert (0.9965 - 0.97) / (hi - lo) > 0.4  # their spread fills a large part of the panel
    lo, hi = focus_limits([0.05, 0.1])  # Tiny ImageNet after 3 epochs: low values stay in view
    assert lo == 0.0 and 0.1 < hi < 0.15
    assert focus_limits([]) is None

"""`python -m tune_app.report --compare A B`: on faked experiment folders (no Ray), checked
against numbers worked out by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.test_report import assert_png
from tune_app import report
from tune_app.errors import USAGE_EXIT
from tune_app.experiment import load_experiment
from tune_app.report_compare import anytime

DATASET = {"name": "digits", "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 42}


def write_experiment(root: Path, name: str, *, trials: dict[str, tuple[dict, list[dict], Optional[str]]],
                     epochs: int, search: dict[str, Any], scheduler: dict[str, Any],
                     dataset: Optional[dict] = None) -> Path:
    """An experiment folder as a search leaves it. trials: name -> (hp, result rows, ended status)."""
    path = root / name
    path.mkdir(parents=True)
    meta = {"spec_path": f"{name}.yaml", "status": "finished",
            "base": {"dataset": dataset or DATASET, "train": {"epochs": epochs}},
            "space": {"train.lr": {"kind": "grid", "values": [t[0]["train.lr"] for t in trials.values()]}},
            "search": {"metric": "val_accuracy", "mode": "max", **search}, "scheduler": scheduler}
    (path / "experiment.json").write_text(json.dumps(meta))
    for trial, (hp, rows, ended) in trials.items():
        write_run(path / trial, hp, rows, ended)
    return path


def write_run(folder: Path, hp: dict, rows: list[dict], ended: Optional[str] = "TERMINATED") -> None:
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps({"hp": hp}))
    (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if ended:
        (folder / "ended.json").write_text(json.dumps({"status": ended}))


def acc(epoch: int, value: float, **extra: Any) -> dict:
    return {"epoch": epoch, "val_accuracy": value, "val_loss": 2.0 - value, **extra}


def experiment_a(root: Path) -> Path:
    """Grid + ASHA, two trials one after the other, with Ray's timestamps: trial_00000's epochs end
    at 110, 120, 130 (the first began at 100), trial_00001's at 131, 140: wall time 40 s."""
    return write_experiment(root, "A", epochs=3, search={"algorithm": "grid", "num_samples": 1},
                            scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2.0},
                            trials={
        "trial_00000": ({"train.lr": 0.001}, [acc(1, 0.5, timestamp=110, time_this_iter_s=10.0),
                                              acc(2, 0.7, timestamp=120, time_this_iter_s=8.0),
                                              acc(3, 0.8, timestamp=130, time_this_iter_s=10.0)], "TERMINATED"),
        "trial_00001": ({"train.lr": 0.01}, [acc(1, 0.6, timestamp=131, time_this_iter_s=1.0),
                                             acc(2, 0.65, timestamp=140, time_this_iter_s=9.0)], "TERMINATED")})


def experiment_b(root: Path, name: str = "B", **kwargs: Any) -> Path:
    """Optuna without a scheduler, no timestamps; trial_00002 scored 0.95 and then diverged; a race
    of two finalists over seeds 0 and 1 (seed 0 reused from the search); a retraining."""
    path = write_experiment(root, name, epochs=2, search={"algorithm": "optuna", "num_samples": 3},
                            scheduler={"name": "none"}, trials={
        "trial_00000": ({"train.lr": 0.01}, [acc(1, 0.75), acc(2, 0.9)], "TERMINATED"),
        "trial_00001": ({"train.lr": 0.1}, [acc(1, 0.3), acc(2, 0.2)], "TERMINATED"),
        "trial_00002": ({"train.lr": 1.0}, [acc(1, 0.95, diverged=True)], "TERMINATED")}, **kwargs)
    finalists = []
    for rank, (lr, reuse) in enumerate(((0.01, "trial_00000"), (0.1, "trial_00001")), 1):
        finalists.append({"hparams": {"train.lr": lr}, "label": f"lr={lr}", "search_rank": rank, "parameters": 1000,
                          "runs": [{"seed": 0, "hp": {"train.lr": lr, "train.seed": 0}, "reuse": reuse},
                                   {"seed": 1, "hp": {"train.lr": lr, "train.seed": 1}, "reuse": None}]})
    (path / "race").mkdir()
    (path / "race" / "plan.json").write_text(json.dumps(
        {"metric": "val_accuracy", "mode": "max", "epochs": 2, "seeds": [0, 1], "finalists": finalists}))
    # Paired by seed, lr=0.01 leads by 0.7 on both seeds: no tie, it is the pick (mean final 0.91).
    write_run(path / "race" / "race_00001", {"train.lr": 0.01, "train.seed": 1}, [acc(1, 0.8), acc(2, 0.92)])
    write_run(path / "race" / "race_00003", {"train.lr": 0.1, "train.seed": 1}, [acc(1, 0.5), acc(2, 0.22)])
    (path / "best").mkdir()
    (path / "best" / "metrics.json").write_text(json.dumps({
        "trial": "trial_00000", "epochs": 2, "test": {"accuracy": 0.88, "macro_f1": 0.87}, "test_seeds": None,
        "procedure_epochs": {"search": 5, "race": 4, "retrain": 2, "total": 11}}))
    return path


@pytest.fixture()
def pair(tmp_path) -> tuple[Path, Path]:
    return experiment_a(tmp_path / "results"), experiment_b(tmp_path / "results")


def compare(*argv: str) -> Path:
    assert report.main(["--compare", *argv]) == 0
    found = sorted((Path(argv[0]).parent / "compare").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return found[-1]


def table(text: str, section: str) -> dict[str, dict[str, str]]:
    """The Markdown table of `section`, by experiment: column -> cell."""
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    header, _, *rows = [line for line in body.splitlines() if line.startswith("| ")]
    names = [c.strip() for c in header.strip("|").split(" | ")]
    out = {}
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
        out[cells[0].strip("`")] = dict(zip(names, cells))
    return out


def test_best_per_experiment_matches_the_hand_values(pair):
    out = compare(*map(str, pair))
    best = table((out / "report.md").read_text(), "Best per experiment")
    assert set(best) == {"A", "B"}
    a, b = best["A"], best["B"]
    assert (a["best trial"], a["best configuration"], a["best val_accuracy"], a["at epoch"]) == \
        ("trial_00000", "lr=0.001", "0.8000", "3")
    # B's 0.95 came from a trial that diverged: ranked last, not the best.
    assert (b["best trial"], b["best configuration"], b["best val_accuracy"], b["at epoch"]) == \
        ("trial_00000", "lr=0.01", "0.9000", "2")
    assert a["search"] == "grid" and b["search"] == "optuna, 3 samples"
    assert a["scheduler"].startswith("ASHA (grace 1, factor 2") and b["scheduler"] == "none"
    assert (a["trials"], b["trials"]) == ("2", "3")
    assert a["race pick"] == "no race" and b["race pick"] == "lr=0.01 (mean final 0.9100)"
    assert a["test accuracy (retrained)"] == "-"
    assert b["test accuracy (retrained)"].startswith("0.8800 (trial_00000, `best/`")


def test_budgets_match_the_hand_values(pair):
    out = compare(*map(str, pair))
    budget = table((out / "report.md").read_text(), "Budget")
    a, b = budget["A"], budget["B"]
    assert [a[k] for k in ("epochs: search", "race", "retrain", "total")] == ["5", "0", "0", "5"]
    assert [b[k] for k in ("epochs: search", "race", "retrain", "total")] == ["5", "4", "2", "11"]
    assert a["wall time (search + race)"] == "40 s" and b["wall time (search + race)"] == "-"
    # Both searches reached 0.8 (A's best): A after its 3rd epoch (trial_00000 ran first), B after
    # its 4th (0.9 at trial_00000's epoch 2, which comes after epoch 1 of every trial).
    assert a["search epochs to reach val_accuracy 0.8000"] == "3"
    assert b["search epochs to reach val_accuracy 0.8000"] == "4"


def test_anytime_curve_follows_the_order_epochs_finished(pair):
    a = anytime(load_experiment(pair[0]))
    assert a.spent == [1, 2, 3, 4, 5] and a.best == [0.5, 0.7, 0.8, 0.8, 0.8]  # by timestamp
    b = anytime(load_experiment(pair[1]))  # no timestamps: epoch 1 of every trial, then epoch 2
    assert b.best == [0.75, 0.75, 0.75, 0.9, 0.9]  # the diverged 0.95 never counts
    assert b.epochs_to(0.8, "max") == 4 and b.epochs_to(0.99, "max") is None


def test_figures_are_written_and_referenced(pair):
    out = compare(*map(str, pair))
    text = (out / "report.md").read_text()
    for name in ("learning_curves.png", "budget.png"):
        assert_png(out / name)
        assert f"]({name})" in text
    assert sorted(p.name for p in out.iterdir()) == ["budget.png", "learning_curves.png", "report.md"]


def test_two_comparisons_make_two_folders_and_touch_no_experiment(pair):
    before = {p: p.stat().st_mtime_ns for d in pair for p in d.rglob("*")}
    first, second = compare(*map(str, pair)), compare(*map(str, pair))
    assert first != second and first.parent == second.parent == pair[0].parent / "compare"
    assert re.fullmatch(r"A-vs-B-\d{8}-\d{6}(-\d+)?", first.name), first.name
    assert (first / "report.md").is_file() and (second / "report.md").is_file()
    assert {p: p.stat().st_mtime_ns for d in pair for p in d.rglob("*")} == before


def test_out_names_a_new_folder(pair, tmp_path):
    assert report.main(["--compare", *map(str, pair), "--out", str(tmp_path / "cmp")]) == 0
    assert (tmp_path / "cmp" / "report.md").is_file()
    assert not (pair[0].parent / "compare").exists()


def test_a_different_dataset_is_refused_naming_the_field_and_both_values(pair, tmp_path, capsys):
    other = experiment_b(tmp_path / "results", "B64", dataset={**DATASET, "image_size": 64})
    assert report.main(["--compare", str(pair[0]), str(other)]) == USAGE_EXIT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "dataset.image_size" in err and "None" in err and "64" in err and "B64" in err
    assert not (pair[0].parent / "compare").exists()


def test_a_failed_comparison_leaves_no_folder(pair, monkeypatch):
    from tune_app import report_compare

    def broken(*args):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(report_compare, "plot_budget", broken)
    with pytest.raises(RuntimeError):
        report.main(["--compare", *map(str, pair)])
    assert list((pair[0].parent / "compare").iterdir()) == []

"""bench_judge: how well each scheduler.judge kind ranks trials at a rung, against their final
epoch; checked on a constructed search whose Spearman values were computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tune_app import bench, bench_judge
from tune_app.experiment import load_experiment

# val_accuracy at epochs 1, 2, 3 (mode max). Final-epoch ranks, lowest first: B 1, C 2, A 3, D 4.
CURVES = {"A": [0.10, 0.20, 0.30], "B": [0.21, 0.17, 0.25], "C": [0.05, 0.30, 0.28], "D": [0.12, 0.14, 0.35]}


def write_search(root: Path, curves: dict[str, list[float]], name: str = "grid") -> Path:
    """An experiment folder as a search without a scheduler leaves it."""
    path = root / name
    path.mkdir(parents=True)
    epochs = len(next(iter(curves.values())))
    (path / "experiment.json").write_text(json.dumps({
        "search": {"metric": "val_accuracy", "mode": "max"}, "base": {"train": {"epochs": epochs}}}))
    for i, (label, values) in enumerate(curves.items()):
        trial = path / f"trial_{i:05d}"
        trial.mkdir()
        (trial / "params.json").write_text(json.dumps({"hp": {"label": label}}))
        (trial / "result.json").write_text("".join(
            json.dumps({"epoch": e, "val_accuracy": v}) + "\n" for e, v in enumerate(values, 1)))
    return path


def test_ranks_share_the_mean_rank_on_ties_and_spearman_matches_the_textbook_formula():
    assert bench_judge.ranks([0.3, 0.1, 0.2, 0.2]) == [4, 1, 2.5, 2.5]
    # No ties: rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)); d = (0, 2, -1, -1) -> 1 - 6 * 6 / 60.
    assert bench_judge.spearman([1, 4, 2, 3], [1, 1.5, 3, 5]) == pytest.approx(1 - 6 * 6 / 60)
    assert bench_judge.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1)
    assert bench_judge.spearman([1, 1, 1], [1, 2, 3]) is None  # a constant side ranks nothing


def test_each_judge_kind_ranks_the_constructed_search_as_computed_by_hand(tmp_path):
    result = bench_judge.judge_ranking(load_experiment(write_search(tmp_path, CURVES)))
    assert (result["trials"], result["final_epoch"]) == (4, 3)
    rho = {(r["rung"], r["kind"]): r["spearman"] for r in result["rows"]}
    kept = {(r["rung"], r["kind"]): r["top_kept"] for r in result["rows"]}
    # Rung 1, every kind judges epoch 1 alone: ranks A 2, B 4, C 1, D 3; d = (-1, 3, -1, -1), sum 12.
    for kind in bench_judge.KINDS:
        assert rho[(1, kind)] == pytest.approx(1 - 6 * 12 / 60)  # -0.2
    # Rung 2, last (A .20 B .17 C .30 D .14): ranks 3, 2, 4, 1; d = (0, 1, 2, -3), sum 14.
    assert rho[(2, "last")] == pytest.approx(1 - 6 * 14 / 60)  # -0.4
    # best (A .20 B .21 C .30 D .14): ranks 2, 3, 4, 1; d = (-1, 2, 2, -3), sum 18.
    assert rho[(2, "best")] == pytest.approx(1 - 6 * 18 / 60)  # -0.8
    # ema 0.5 (A .15 B .19 C .175 D .13): ranks 2, 4, 3, 1; d = (-1, 3, 1, -3), sum 20.
    assert rho[(2, "ema")] == pytest.approx(1 - 6 * 20 / 60)  # -1.0
    # D wins at epoch 3. Of 4, ASHA keeps the top 4/3: D survives with one ahead (B at rung 1),
    # not with three ahead (every kind at rung 2).
    assert all(kept[(1, k)] for k in bench_judge.KINDS)
    assert not any(kept[(2, k)] for k in bench_judge.KINDS)


def test_the_winner_tied_at_the_cut_is_kept_and_mode_min_ranks_low_values_first():
    assert bench_judge.top_kept([0.5, 0.5, 0.1], [0.9, 0.1, 0.2], "max")  # ties the leader: kept
    assert not bench_judge.top_kept([0.6, 0.5, 0.1], [0.1, 0.9, 0.2], "max")
    assert bench_judge.top_kept([2.0, 1.0, 3.0], [2.5, 0.8, 3.1], "min")


def test_a_kind_replaces_last_only_when_its_interval_over_searches_is_above_zero(tmp_path):
    def rows(last: float, best: float, ema: float) -> dict:
        return {"rows": [{"rung": 1, "kind": k, "spearman": 0.1, "top_kept": True} for k in bench_judge.KINDS]
                + [{"rung": 2, "kind": "last", "spearman": last, "top_kept": True},
                   {"rung": 2, "kind": "best", "spearman": best, "top_kept": True},
                   {"rung": 2, "kind": "ema", "spearman": ema, "top_kept": True}]}

    steady = bench_judge.better_judge([rows(0.5, 0.5, 0.70), rows(0.4, 0.4, 0.62), rows(0.6, 0.6, 0.79)])
    assert steady["kind"] == "ema" and not steady["tie"]
    assert steady["against_last"]["ema"]["difference"] == pytest.approx(0.2033333)
    noisy = bench_judge.better_judge([rows(0.75, 0.75, 0.60), rows(0.60, 0.60, 0.72), rows(0.33, 0.33, 0.45)])
    assert noisy["kind"] == "last" and noisy["tie"]  # ema ahead on average, but not beyond noise


def test_the_bench_command_prints_the_table_and_refuses_a_search_with_stopped_trials(tmp_path, capsys):
    folder = write_search(tmp_path, CURVES)
    out = tmp_path / "judge.json"
    assert bench.main(["--judge-ranking", str(folder), str(folder), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "-0.800" in printed and "ranks better: none" in printed
    summary = json.loads(out.read_text())["judge_ranking"]["summary"]
    assert {(s["rung"], s["kind"]): s["top_kept"] for s in summary}[(1, "ema")] == 2
    stopped = write_search(tmp_path, {"A": [0.1, 0.2], "B": [0.2, 0.3]}, name="stopped")
    assert bench.main(["--judge-ranking", str(stopped)]) == 2
    assert "needs at least 3 trials" in capsys.readouterr().err

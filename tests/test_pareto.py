"""The Pareto front against hand computations: the plain rule on numbers (modes, ties), then on
experiment folders written by hand (seeds averaged, trials ASHA stopped left out), and the pick."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tune_app.experiment import load_experiment
from tune_app.pareto import dominates, experiment_front, non_dominated
from tune_app.pick import DEFAULT_TOLERANCE, PickRule, choose, smallest_within


def test_dominance_needs_one_strict_improvement():
    modes = ("max", "min")
    assert dominates((0.9, 100), (0.8, 200), modes)
    assert dominates((0.9, 100), (0.9, 200), modes)  # equal metric, cheaper
    assert not dominates((0.9, 100), (0.9, 100), modes)  # equal on both: neither
    assert not dominates((0.9, 300), (0.8, 200), modes)  # better metric, dearer: a trade-off


def test_front_of_accuracy_against_parameters_by_hand():
    # (val_accuracy, params); by hand: a (0.95, 900) best accuracy; c (0.90, 300) cheaper;
    # e (0.70, 100) cheapest; b (0.93, 1000) is beaten by a; d (0.85, 400) by c; f (0.70, 150) by e.
    points = [(0.95, 900), (0.93, 1000), (0.90, 300), (0.85, 400), (0.70, 100), (0.70, 150)]
    assert non_dominated(points, ("max", "min")) == [0, 2, 4]


def test_ties_stay_on_the_front_together():
    # Two configurations with the same accuracy and the same size: neither beats the other.
    points = [(0.9, 500), (0.9, 500), (0.8, 600), (0.95, 800)]
    assert non_dominated(points, ("max", "min")) == [0, 1, 3]
    # Same cost, different accuracy: only the better one.
    assert non_dominated([(0.9, 500), (0.85, 500)], ("max", "min")) == [0]


def test_both_minimised_val_loss_against_latency():
    # (val_loss, latency_ms): lower is better in both. By hand: (0.30, 2.0) and (0.50, 1.0) trade
    # off; (0.40, 2.5) is beaten by (0.30, 2.0); (0.60, 1.0) by (0.50, 1.0).
    points = [(0.30, 2.0), (0.40, 2.5), (0.50, 1.0), (0.60, 1.0)]
    assert non_dominated(points, ("min", "min")) == [0, 2]
    # The same numbers read as "max, max" give the mirror image.
    assert non_dominated(points, ("max", "max")) == [1, 3]


def test_a_single_point_is_the_front():
    assert non_dominated([(0.5, 10)], ("max", "min")) == [0]
    assert non_dominated([], ("max", "min")) == []


# (stage_blocks, lr) -> (params, per-seed (best val_accuracy), epochs run per seed)
def write_experiment(root: Path, configs: dict, *, metric: str = "val_accuracy", mode: str = "max",
                     cost: str = "params", epochs: int = 3, seeds: int = 1) -> Path:
    """A finished two-objective grid search as it lies on disk; each run's best is its last epoch."""
    path = root / "exp"
    path.mkdir()
    meta = {"status": "finished", "base": {"train": {"epochs": epochs}},
            "search": {"algorithm": "grid", "num_samples": seeds, "metric": metric, "mode": mode,
                       "objectives": [metric, cost]},
            "scheduler": {"name": "asha"}, "retrain": {"epochs": 0, "train_on": "train"}}
    (path / "experiment.json").write_text(json.dumps(meta))
    index = 0
    for (blocks, lr), (size, values, runs) in configs.items():
        for seed, (value, run_epochs) in enumerate(zip(values, runs)):
            trial = path / f"trial_{index:05d}"
            trial.mkdir()
            hp = {"model.stage_blocks": blocks, "train.lr": lr, **({"train.seed": seed} if seeds > 1 else {})}
            (trial / "params.json").write_text(json.dumps({"hp": hp}))
            # climbing to `value` at the trial's last epoch; the cost is the same every epoch
            rows = [{"epoch": e, metric: value - 0.1 * (run_epochs - e), cost: size} for e in range(1, run_epochs + 1)]
            (trial / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
            (trial / "ended.json").write_text('{"status": "TERMINATED"}')
            index += 1
    return path


def test_experiment_front_leaves_out_what_asha_stopped(tmp_path):
    exp = load_experiment(write_experiment(tmp_path, {
        (3, 1e-3): (9000, [0.95], [3]),   # best accuracy
        (2, 1e-3): (6000, [0.945], [3]),  # half a point behind, two thirds the size
        (1, 1e-3): (3000, [0.90], [3]),   # smallest that finished
        (1, 1e-2): (3000, [0.80], [3]),   # same size, worse: dominated
        (2, 1e-2): (6000, [0.50], [1]),   # stopped by ASHA after 1 epoch: not compared
    }))
    front = experiment_front(exp)
    assert [(c.hparams["model.stage_blocks"], c.hparams["train.lr"]) for c in front.members] == \
        [(1, 1e-3), (2, 1e-3), (3, 1e-3)]  # cheapest first
    assert len(front.compared) == 4
    assert front.left_out_text() == "1 configuration left out: 1 stopped early by ASHA"
    assert front.best().metric == pytest.approx(0.95)
    rows = front.rows()
    assert rows[0] == {"configuration": "stage_blocks=1, lr=0.001", "val_accuracy": pytest.approx(0.90),
                       "params": 3000, "runs": 1, "trial": "trial_00002"}


def test_seeds_are_averaged_and_a_stopped_seed_leaves_its_configuration_out(tmp_path):
    exp = load_experiment(write_experiment(tmp_path, {
        (3, 1e-3): (9000, [0.96, 0.92], [3, 3]),  # mean 0.94
        (1, 1e-3): (3000, [0.95, 0.91], [3, 3]),  # mean 0.93, cheaper: on the front
        (2, 1e-3): (6000, [0.99, 0.98], [3, 2]),  # one seed stopped: left out however good
    }, seeds=2))
    front = experiment_front(exp)
    assert [c.metric for c in front.members] == [pytest.approx(0.93), pytest.approx(0.94)]
    assert front.left_out_text() == "1 configuration left out: 1 stopped early by ASHA"
    # The run retrained is the configuration's best seed (seed 0 scored 0.95).
    assert front.members[0].run("val_accuracy", "max").name == "trial_00002"


def test_smallest_within_by_hand(tmp_path):
    exp = load_experiment(write_experiment(tmp_path, {
        (3, 1e-3): (9000, [0.95], [3]),
        (2, 1e-3): (6000, [0.94], [3]),   # exactly 1 point behind: within 0.01
        (1, 1e-3): (3000, [0.935], [3]),  # 1.5 points behind
    }))
    front = experiment_front(exp)
    assert smallest_within(front, 0.01).cost == 6000
    assert smallest_within(front, 0.015).cost == 3000
    assert smallest_within(front, 0.0).cost == 9000  # the best itself
    choice = choose(exp)  # the default rule with two objectives: smallest-within 0.01
    assert DEFAULT_TOLERANCE == 0.01
    assert choice.stage == "Pareto front" and choice.run == "trial_00001"
    assert choice.hparams == {"model.stage_blocks": 2, "train.lr": 1e-3}
    assert choice.details["pick_rule"] == {"rule": "smallest-within", "tolerance": 0.01}
    assert "67% of the best model's 9,000" in choice.sentence and "-1.0 points" in choice.sentence
    best = choose(exp, PickRule("best"))
    assert best.stage == "search" and best.run == "trial_00000"
    assert [r["trial"] for r in best.details["front"]] == ["trial_00002", "trial_00001", "trial_00000"]


def test_smallest_within_for_a_minimised_metric(tmp_path):
    exp = load_experiment(write_experiment(tmp_path, {
        (3, 1e-3): (2.0, [0.30], [3]),   # lowest loss
        (2, 1e-3): (1.5, [0.33], [3]),   # 0.03 worse
        (1, 1e-3): (1.0, [0.50], [3]),
    }, metric="val_loss", mode="min", cost="latency_ms"))
    front = experiment_front(exp)
    assert len(front.members) == 3
    assert smallest_within(front, 0.05).cost == 1.5
    assert smallest_within(front, 0.01).cost == 2.0


def test_pick_rules_are_parsed_and_refused(tmp_path):
    from tune_app.errors import UsageError
    from tune_app.pick import parse_pick

    assert parse_pick(None) is None
    assert parse_pick(["best"]) == PickRule("best")
    assert parse_pick(["smallest-within", "0.02"]) == PickRule("smallest-within", 0.02)
    for words in (["smallest"], ["smallest-within"], ["smallest-within", "x"], ["smallest-within", "-1"],
                  ["best", "0.1"]):
        with pytest.raises(UsageError):
            parse_pick(words)

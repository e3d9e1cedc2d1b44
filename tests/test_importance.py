"""Parameter importance on constructed experiment folders (no Ray): a metric that depends on lr
only ranks lr first under both evaluators, ASHA's uneven trials are compared at one epoch, an
Optuna-style continuous space works, and too few trials are said to be too few."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.test_report import assert_png
from tune_app.experiment import load_experiment
from tune_app.importance import FANOVA, MIN_TRIALS, PED_ANOVA, compute_importance, summary_lines

LRS = [1e-4, 1e-3, 1e-2]
WDS = [0.0, 1e-4, 1e-3]


def write_experiment(root: Path, space: dict, trials: list[tuple[dict, list[float]]], *, epochs: int,
                     algorithm: str = "grid", asha: bool = False, name: str = "exp",
                     diverged: set[int] = frozenset()) -> Path:
    """An experiment folder as a search leaves it: trials = (hparams, val_accuracy per epoch).
    A trial index in `diverged` has its last epoch marked diverged (NaN metrics)."""
    path = root / name
    path.mkdir(parents=True)
    meta = {"status": "finished", "spec_path": "spec.yaml",
            "base": {"dataset": {"name": "digits"}, "train": {"epochs": epochs}},
            "space": space,
            "search": {"algorithm": algorithm, "num_samples": 1, "metric": "val_accuracy", "mode": "max"},
            "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2} if asha else {"name": "none"},
            "output": {"name": name}}
    (path / "experiment.json").write_text(json.dumps(meta))
    for index, (hparams, accuracies) in enumerate(trials):
        trial = path / f"trial_{index:05d}"
        trial.mkdir()
        (trial / "params.json").write_text(json.dumps({"hp": hparams}))
        rows = []
        for epoch, acc in enumerate(accuracies, 1):
            bad = index in diverged and epoch == len(accuracies)
            rows.append({"epoch": epoch, "val_accuracy": float("nan") if bad else acc,
                         "val_loss": float("nan") if bad else 1.0 - acc, "diverged": bad})
        (trial / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (trial / "ended.json").write_text('{"status": "TERMINATED"}')
    return path


def grid_space(**domains: list) -> dict:
    return {key: {"kind": "grid", "values": values} for key, values in domains.items()}


def lr_only(lr: float, noise: float) -> float:
    """Accuracy peaking at lr 1e-3, whatever the weight decay."""
    return 0.9 - 0.2 * abs(math.log10(lr) + 3) + noise


def lr_grid(root: Path, seeds: int = 2) -> Path:
    rng = np.random.default_rng(0)
    trials = []
    for lr, wd, seed in itertools.product(LRS, WDS, range(seeds)):
        acc = lr_only(lr, rng.normal(0, 0.01))
        # Each seed is a trial of its own (search.num_samples > 1); train.seed is not searched.
        trials.append(({"train.lr": lr, "train.weight_decay": wd, "train.seed": seed}, [acc - 0.1, acc]))
    return write_experiment(root, grid_space(**{"train.lr": LRS, "train.weight_decay": WDS,
                                                "model.groups": [2]}), trials, epochs=2)


def test_a_metric_that_depends_on_lr_only_ranks_lr_first(tmp_path):
    imp = compute_importance(load_experiment(lr_grid(tmp_path)))
    # model.groups had one value: not searched, so not assessed.
    assert imp.params == ["train.lr", "train.weight_decay"]
    assert imp.trials == 18 and imp.epoch == 2 and not imp.too_few and not imp.skipped
    for name in (PED_ANOVA, FANOVA):
        scores = imp.scores[name]
        assert list(scores)[0] == "train.lr", (name, scores)
        assert scores["train.lr"] > 0.85 and scores["train.weight_decay"] < 0.15, (name, scores)
        assert sum(scores.values()) == pytest.approx(1.0)
    assert [r["parameter"] for r in imp.rows()] == ["lr", "weight_decay"]


def test_the_ranking_follows_the_metric_not_the_parameter_order(tmp_path):
    # The same grid with the roles swapped: now weight decay decides, lr does nothing.
    rng = np.random.default_rng(1)
    trials = [({"train.lr": lr, "train.weight_decay": wd}, [0.5 + 200 * wd + rng.normal(0, 0.01)])
              for lr, wd, _ in itertools.product(LRS, WDS, range(2))]
    path = write_experiment(tmp_path, grid_space(**{"train.lr": LRS, "train.weight_decay": WDS}), trials, epochs=1)
    imp = compute_importance(load_experiment(path))
    for name in (PED_ANOVA, FANOVA):
        assert list(imp.scores[name])[0] == "train.weight_decay", (name, imp.scores[name])


def test_asha_stopped_trials_are_compared_at_the_epoch_every_trial_reached(tmp_path):
    # At epoch 1 accuracy depends on weight decay only. ASHA keeps the wd=1e-3 trials, and among
    # them those with lr 1e-2 then climb much higher: scored on each trial's overall best, lr
    # would look important, though only the survivors ever had the epochs for it to matter.
    rng = np.random.default_rng(2)
    trials = []
    for lr, wd, _ in itertools.product(LRS, WDS, range(2)):
        first = 0.5 + 100 * wd + rng.normal(0, 0.01)
        later = [first + (0.4 if lr == 1e-2 else 0.0) * e / 3 for e in (1, 2, 3)] if wd == 1e-3 else []
        trials.append(({"train.lr": lr, "train.weight_decay": wd}, [first, *later]))
    path = write_experiment(tmp_path, grid_space(**{"train.lr": LRS, "train.weight_decay": WDS}), trials,
                            epochs=4, asha=True)
    exp = load_experiment(path)
    assert {t.epochs_run for t in exp.trials} == {1, 4}
    imp = compute_importance(exp)
    assert imp.epoch == 1 and imp.trials == 18
    for name in (PED_ANOVA, FANOVA):
        assert list(imp.scores[name])[0] == "train.weight_decay", (name, imp.scores[name])
        assert imp.scores[name]["train.lr"] < 0.1, (name, imp.scores[name])
    text = imp.computed_on()
    assert "computed on 18 trials at epoch 1 of 4" in text and "ASHA stopped some trials there" in text


def test_a_diverged_trial_does_not_hold_the_comparison_back(tmp_path):
    rng = np.random.default_rng(3)
    trials = [({"train.lr": lr, "train.weight_decay": wd},
               [lr_only(lr, rng.normal(0, 0.01)) + d for d in (0, .01, .02)])
              for lr, wd, _ in itertools.product(LRS, WDS, range(2))]
    trials[-1] = (trials[-1][0], trials[-1][1][:2])  # stopped at epoch 2 by divergence
    path = write_experiment(tmp_path, grid_space(**{"train.lr": LRS, "train.weight_decay": WDS}), trials,
                            epochs=3, diverged={len(trials) - 1})
    exp = load_experiment(path)
    assert exp.trials[-1].diverged
    imp = compute_importance(exp)
    # Every healthy trial ran 3 epochs; the diverged one counts with its best before diverging.
    assert imp.epoch == 3 and imp.trials == 18 and "(the last)" in imp.computed_on()


def test_an_optuna_continuous_space_with_an_encoded_list_choice(tmp_path):
    rng = np.random.default_rng(4)
    widths = [[8, 16, 32], [16, 32, 64]]
    space = {"train.lr": {"kind": "loguniform", "values": [1e-4, 1e-1]},
             "train.weight_decay": {"kind": "uniform", "values": [0.0, 1e-3]},
             "model.stage_blocks": {"kind": "randint", "values": [1, 4]},
             "model.stage_channels": {"kind": "choice", "values": widths}}
    trials = []
    for _ in range(40):
        lr = float(10 ** rng.uniform(-4, -1))
        hparams = {"train.lr": lr, "train.weight_decay": float(rng.uniform(0, 1e-3)),
                   "model.stage_blocks": int(rng.integers(1, 4)),
                   # Optuna's categoricals hold scalars: list values are recorded JSON-encoded.
                   "model.stage_channels": json.dumps(widths[int(rng.integers(2))])}
        trials.append((hparams, [0.95 - 0.1 * (math.log10(lr) + 2.5) ** 2 + rng.normal(0, 0.005)]))
    path = write_experiment(tmp_path, space, trials, epochs=1, algorithm="optuna")
    imp = compute_importance(load_experiment(path))
    assert imp.trials == 40 and not imp.too_few and not imp.left_out
    assert imp.top_fraction == pytest.approx(0.125)  # 5 of 40 trials: PED-ANOVA's top group
    for name in (PED_ANOVA, FANOVA):
        assert list(imp.scores[name])[0] == "train.lr", (name, imp.scores[name])
        assert set(imp.scores[name]) == set(space)


def test_too_few_trials_are_flagged_and_said(tmp_path):
    trials = [({"train.lr": lr, "train.weight_decay": wd}, [lr_only(lr, 0.0) + 1e-3 * i])
              for i, (lr, wd) in enumerate(itertools.product(LRS[:2], WDS[:2]))]
    path = write_experiment(tmp_path, grid_space(**{"train.lr": LRS[:2], "train.weight_decay": WDS[:2]}),
                            trials, epochs=1)
    imp = compute_importance(load_experiment(path))
    assert imp.trials == 4 < MIN_TRIALS and imp.too_few
    assert f"only 4 trials (fewer than {MIN_TRIALS})" in imp.reason
    printed = "\n".join(summary_lines(imp))
    assert "too few trials to trust it: only 4 trials" in printed
    assert "computed on 4 trials at epoch 1 (the last)" in printed


def test_a_flat_metric_is_skipped_with_the_reason_and_failed_trials_are_left_out(tmp_path):
    trials = [({"train.lr": lr, "train.weight_decay": wd}, [0.5]) for lr, wd in itertools.product(LRS, WDS)]
    trials.append(({"train.lr": 5e-3, "train.weight_decay": 0.0}, [0.9]))  # not a grid value
    path = write_experiment(tmp_path, grid_space(**{"train.lr": LRS, "train.weight_decay": WDS}), trials, epochs=1)
    failed = path / "trial_00000" / "ended.json"
    failed.write_text('{"status": "ERROR"}')
    imp = compute_importance(load_experiment(path))
    assert imp.left_out == {"failed": 1, "outside the recorded search space": 1}
    assert not imp.scores and set(imp.skipped) == {PED_ANOVA, FANOVA}
    assert "every trial has the same val_accuracy (0.5)" in imp.skipped[FANOVA]
    printed = "\n".join(summary_lines(imp))
    assert "fANOVA skipped: every trial has the same" in printed and "Traceback" not in printed


def test_a_top_group_tied_with_every_trial_skips_ped_anova_only(tmp_path):
    # 3 of 18 trials do better, the other 15 tie at the bottom: PED-ANOVA's best 5 (28%) reach
    # into the tie, so its "top group" is every trial and has nothing to set it apart.
    configs = list(itertools.product(LRS, WDS)) * 2
    trials = [({"train.lr": lr, "train.weight_decay": wd}, [0.9 if i < 3 else 0.5])
              for i, (lr, wd) in enumerate(configs)]
    path = write_experiment(tmp_path, grid_space(**{"train.lr": LRS, "train.weight_decay": WDS}), trials, epochs=1)
    imp = compute_importance(load_experiment(path))
    assert set(imp.scores) == {FANOVA} and set(imp.skipped) == {PED_ANOVA}
    assert "the best 28% of trials tie with all of them" in imp.skipped[PED_ANOVA]
    printed = "\n".join(summary_lines(imp))
    assert "PED-ANOVA skipped: the best 28%" in printed
    assert all(row[PED_ANOVA] is None and row[FANOVA] is not None for row in imp.rows())


def test_ties_at_the_top_are_counted_in_ped_anovas_group(tmp_path):
    # 10 of 18 trials share the best value: the best 5 include every one of them.
    configs = list(itertools.product(LRS, WDS)) * 2
    trials = [({"train.lr": lr, "train.weight_decay": wd}, [1.0 if lr == 1e-3 or wd == 0.0 else 0.5 + 0.01 * i])
              for i, (lr, wd) in enumerate(configs)]
    path = write_experiment(tmp_path, grid_space(**{"train.lr": LRS, "train.weight_decay": WDS}), trials, epochs=1)
    imp = compute_importance(load_experiment(path))
    assert imp.top_trials == 10 and set(imp.scores) == {PED_ANOVA, FANOVA}
    assert "best 28% (10 trials, ties included)" in imp.computed_on()


def test_nothing_searched_prints_nothing(tmp_path):
    path = write_experiment(tmp_path, grid_space(**{"train.lr": [1e-3]}),
                            [({"train.lr": 1e-3}, [0.5])], epochs=1)
    imp = compute_importance(load_experiment(path))
    assert imp.params == [] and summary_lines(imp) == []


def test_the_report_has_the_section_the_table_and_the_chart(tmp_path):
    from tune_app.report import write_report

    path = lr_grid(tmp_path)
    report = write_report(path).read_text()
    section = report.split("## Parameter importance", 1)[1].split("\n## ", 1)[0]
    assert "Computed on 18 trials at epoch 2 (the last)" in section
    assert "| parameter | PED-ANOVA | fANOVA |" in section
    table = [line for line in section.splitlines()
             if line.startswith("| ") and "parameter" not in line and "---" not in line]
    assert table[0].startswith("| lr | ") and table[1].startswith("| weight_decay | ")
    assert "Too few trials" not in section
    assert "](report/importance.png)" in section
    assert_png(path / "report" / "importance.png")


def test_the_report_warns_when_there_are_too_few_trials(tmp_path):
    from tune_app.report import write_report

    trials = [({"train.lr": lr}, [lr_only(lr, 0.0)]) for lr in LRS]
    path = write_experiment(tmp_path, grid_space(**{"train.lr": LRS}), trials, epochs=1)
    section = write_report(path).read_text().split("## Parameter importance", 1)[1].split("\n## ", 1)[0]
    assert "> **Too few trials to trust this ranking:** only 3 trials" in section


def test_an_edited_domain_costs_its_parameter_only(tmp_path):
    rng = np.random.default_rng(5)
    trials = [({"train.lr": lr, "train.weight_decay": wd}, [lr_only(lr, rng.normal(0, 0.01))])
              for lr, wd, _ in itertools.product(LRS, WDS, range(2))]
    space = {**grid_space(**{"train.lr": LRS}), "train.weight_decay": {"kind": "range", "values": WDS}}
    imp = compute_importance(load_experiment(write_experiment(tmp_path, space, trials, epochs=1)))
    assert imp.params == ["train.lr"] and imp.trials == 18
    assert imp.notes == ["train.weight_decay's search domain in experiment.json is not one tune_app writes "
                         "({'kind': 'range', 'values': [0.0, 0.0001, 0.001]}): left out"]
    printed = "\n".join(summary_lines(imp))
    assert "note: train.weight_decay's search domain" in printed and "its share is 1 by construction" in printed

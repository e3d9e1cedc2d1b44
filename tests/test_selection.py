"""The race's decision rule (paired t-interval, tie -> smaller model), the judge, and macro-F1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tune_app.judge import Judge
from tune_app.selection import Finalist, compare, decide, t_quantile


def test_interval_matches_a_hand_computation():
    leader = Finalist("A", 1000, 1, [0.80, 0.82, 0.81])
    other = Finalist("B", 900, 2, [0.79, 0.825, 0.79])
    c = compare(leader, other, "max")
    # By hand: differences 0.01, -0.005, 0.02; mean 0.008333; sample sd 0.012583;
    # t(0.975, df=2) = 4.302653; half width 4.302653 * 0.012583 / sqrt(3) = 0.031258.
    assert t_quantile(2) == pytest.approx(4.302653, abs=1e-6)
    assert c.seeds == 3 and c.difference == pytest.approx(0.008333, abs=1e-6)
    assert c.interval == pytest.approx((0.008333 - 0.031258, 0.008333 + 0.031258), abs=1e-5)
    assert c.tied


def test_a_constructed_tie_picks_the_smaller_model():
    big = Finalist("big", 100_000, 1, [0.90, 0.92, 0.91])
    small = Finalist("small", 60_000, 2, [0.91, 0.90, 0.905])  # behind by 0.5 points, noise-sized
    d = decide([small, big], "val_accuracy", "max")
    assert d.leader is big and d.pick is small
    assert d.sentence.startswith("picked small: tied with the leader big") and "40% smaller" in d.sentence
    assert d.runner_up.other is small


def test_a_clear_winner_is_kept_even_when_larger():
    big = Finalist("big", 100_000, 1, [0.90, 0.92, 0.91])
    small = Finalist("small", 10_000, 2, [0.80, 0.81, 0.805])
    d = decide([small, big], "val_accuracy", "max")
    assert d.pick is big and not d.comparisons[0].tied
    assert "clear winner" in d.sentence and "+10.5 points" in d.sentence


def test_lower_is_better_for_the_loss():
    low = Finalist("low", 5, 1, [0.30, 0.31, 0.29])
    high = Finalist("high", 1, 2, [0.50, 0.52, 0.49])
    d = decide([high, low], "val_loss", "min")
    assert d.leader is low and d.pick is low
    assert d.comparisons[0].difference == pytest.approx(0.2033, abs=1e-3)  # positive: leader ahead


def test_a_finalist_with_a_missing_run_is_never_picked():
    broken = Finalist("broken", 1, 1, [0.99, None])
    ok = Finalist("ok", 100, 2, [0.5, 0.5])
    d = decide([broken, ok], "val_accuracy", "max")
    assert d.pick is ok and d.ranked[-1] is broken


def test_one_seed_has_no_interval_and_keeps_the_leader():
    a, b = Finalist("a", 10, 1, [0.9]), Finalist("b", 1, 2, [0.89])
    d = decide([a, b], "val_accuracy", "max")
    assert d.pick is a and d.comparisons[0].interval is None and "no interval" in d.sentence


@pytest.mark.parametrize("kind,expected", [("last", [0.5, 0.9, 0.7]), ("best", [0.5, 0.9, 0.9]),
                                           ("ema", [0.5, 0.7, 0.7])])
def test_judge_columns(kind, expected):
    judge = Judge(kind, "max", 0.5)
    assert [judge.update(v) for v in (0.5, 0.9, 0.7)] == pytest.approx(expected)


def test_judge_survives_a_resume_and_skips_a_diverged_epoch():
    judge = Judge("best", "min", 0.5)
    judge.update(0.4)
    resumed = Judge("best", "min", 0.5)
    resumed.restore(judge.state())
    assert math.isnan(resumed.update(float("nan")))
    assert resumed.update(0.6) == 0.4


def test_macro_f1_on_device_matches_the_host_computation():
    from tune_app.metrics import classification_metrics
    from tune_app.training import macro_f1

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 200)
    preds = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 6, 200))  # class 5 predicted, never true
    counts = torch.bincount(torch.tensor(labels * 6 + preds), minlength=36)
    assert macro_f1(counts) == pytest.approx(classification_metrics(labels, preds, 6)["macro_f1"])

"""PBT's mutations stay inside the spec's domains."""

from __future__ import annotations

import pickle
from functools import partial

from tune_app.spec import Domain
from tune_app.tuner.space import mutation_bounds, within_bounds


def test_ranges_are_clipped_to_their_domain_and_lists_left_to_pbt():
    bounds = mutation_bounds({"train.momentum": Domain("uniform", (0.8, 0.99)),
                              "train.lr": Domain("loguniform", (1e-4, 1e-2)),
                              "train.batch_size": Domain("randint", (32, 129)),
                              "train.weight_decay": Domain("choice", (0.0, 1e-4))})
    assert bounds == {"train.momentum": (0.8, 0.99), "train.lr": (1e-4, 1e-2), "train.batch_size": (32, 128)}
    # Ray scaled each by 1.2 (or 0.8) past the domain: 0.9 * 1.2 = 1.08 would be no momentum at all.
    explored = {"hp": {"train.momentum": 1.08, "train.lr": 5e-5, "train.batch_size": 154, "train.weight_decay": 1e-4}}
    explore = pickle.loads(pickle.dumps(partial(within_bounds, bounds)))  # the scheduler is pickled with it
    assert explore(explored) == {"hp": {"train.momentum": 0.99, "train.lr": 1e-4, "train.batch_size": 128,
                                        "train.weight_decay": 1e-4}}

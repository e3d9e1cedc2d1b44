"""ASHA's state crosses a resume as plain data: restoring it unpickles nothing."""

from __future__ import annotations

import json

import pytest
from ray.tune.schedulers import ASHAScheduler

from tune_app.tuner.callbacks import SchedulerStateCallback


def asha(max_t: int = 8) -> ASHAScheduler:
    s = ASHAScheduler(time_attr="training_iteration", max_t=max_t, grace_period=1, reduction_factor=2)
    s.set_search_properties("val_accuracy", "max")
    return s


def test_the_state_is_json_and_restores_rungs_trials_and_counters():
    running = asha()
    running._brackets[0]._rungs[-1][1].update({"t1": 0.9, "t2": 0.4})  # the rung at 1 epoch
    running._trial_info = {"t1": running._brackets[0], "t2": running._brackets[0]}
    running._counter, running._num_stopped = 2, 1
    state = json.loads(json.dumps(SchedulerStateCallback(running).get_state()))

    restored = SchedulerStateCallback(asha())
    restored.set_state(state)
    s = restored.scheduler
    assert s._brackets[0]._rungs == running._brackets[0]._rungs
    assert s._trial_info == {"t1": s._brackets[0], "t2": s._brackets[0]}
    assert (s._counter, s._num_stopped) == (2, 1)


def test_state_of_other_rungs_is_refused_rather_than_misapplied():
    state = json.loads(json.dumps(SchedulerStateCallback(asha(8)).get_state()))
    with pytest.raises(ValueError, match="rungs do not match"):
        SchedulerStateCallback(asha(16)).set_state(state)


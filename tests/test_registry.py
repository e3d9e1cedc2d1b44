"""One registry idiom for models, datasets, searchers and schedulers."""

from __future__ import annotations

import pytest

from tune_app.registry import Registry


def test_decorator_registers_the_definition_under_its_name():
    things: Registry[type] = Registry("thing", "thing.name")

    @things.register("a")
    class A:
        pass

    assert things["a"] is A and "a" in things and list(things) == ["a"] and len(things) == 1


def test_a_name_registered_twice_is_a_bug_caught_at_import():
    things: Registry[int] = Registry("thing", "thing.name")
    things.add("a", 1)
    with pytest.raises(ValueError, match="registered twice"):
        things.add("a", 2)


def test_every_registry_uses_the_idiom():
    from tune_app.data import DATASETS
    from tune_app.models import MODELS
    from tune_app.tuner.schedulers import SCHEDULERS
    from tune_app.tuner.searchers import SEARCHERS

    assert all(isinstance(r, Registry) for r in (DATASETS, MODELS, SEARCHERS, SCHEDULERS))
    assert {"grid", "random", "optuna"} <= set(SEARCHERS)
    assert {"asha", "hyperband", "median", "pbt", "none"} <= set(SCHEDULERS)


def test_config_literals_and_registries_name_the_same_entries():
    """Adding a searcher or scheduler means its entry and its config Literal: both or neither."""
    import typing

    from tune_app.config import SchedulerConfig, SearchConfig
    from tune_app.tuner.schedulers import SCHEDULERS
    from tune_app.tuner.searchers import SEARCHERS

    assert set(typing.get_args(typing.get_type_hints(SearchConfig)["algorithm"])) == set(SEARCHERS)
    assert set(typing.get_args(typing.get_type_hints(SchedulerConfig)["name"])) == set(SCHEDULERS)

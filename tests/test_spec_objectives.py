"""What search.objectives sets in the spec it is part of (the refusals are in
tests/test_bad_input_objectives.py)."""

from __future__ import annotations

from tune_app.spec import load_spec


def test_the_first_objective_becomes_the_search_metric_with_its_natural_mode(write_spec):
    spec = load_spec(write_spec({"search": {"objectives": ["val_loss", "latency_ms"]}}))
    assert spec.search.metric == "val_loss" and spec.search.mode == "min"
    assert spec.search.objectives == ["val_loss", "latency_ms"]


def test_a_matching_search_metric_is_accepted(write_spec):
    spec = load_spec(write_spec({"search": {"metric": "val_macro_f1", "objectives": ["val_macro_f1", "mflops"]}}))
    assert spec.search.metric == "val_macro_f1" and spec.search.mode == "max"


def test_no_race_unless_asked_and_asha_stays(write_spec):
    # QUICK_SPEC has ASHA and select.finalists: 0; without the line the default (3) is turned off.
    spec = load_spec(write_spec({"search": {"objectives": ["val_accuracy", "params"]}}))
    assert spec.select.finalists == 0 and spec.scheduler.name == "asha"
    path = write_spec({"search": {"objectives": ["val_accuracy", "params"]}})
    path.write_text(path.read_text().replace("select:\n  finalists: 0\n", ""))
    assert "select:" not in path.read_text()
    assert load_spec(path).select.finalists == 0
    assert load_spec(write_spec({"search": {"objectives": ["val_accuracy", "params"]},
                                 "select": {"finalists": 1}})).select.finalists == 1


def test_without_objectives_nothing_changes(write_spec):
    spec = load_spec(write_spec())
    assert spec.search.objectives == [] and spec.search.metric == "val_accuracy"

"""The trial hyperparameter format, in its one module."""

from __future__ import annotations

from tune_app.hparams import decode, encode_choice, field_name, shown, unwrap, wrap


def test_wrap_and_unwrap_round_trip_and_refuse_other_shapes():
    hp = {"train.lr": 1e-3, "model.stage_channels": [8, 16]}
    assert unwrap(wrap(hp)) is hp
    assert unwrap({"lr": 1}) is None and unwrap(None) is None and unwrap({"hp": 3}) is None


def test_shown_names_drop_the_section():
    assert field_name("train.lr") == "lr"
    assert shown({"train.lr": 1, "model.groups": 2}) == {"lr": 1, "groups": 2}


def test_list_choices_travel_as_json_and_come_back_as_lists_only_for_list_fields():
    assert encode_choice([16, 32]) == "[16, 32]" and encode_choice(0.1) == 0.1
    assert decode({"model.stage_channels": "[16, 32]", "model.name": "[not a list]"}) == {
        "model.stage_channels": [16, 32], "model.name": "[not a list]"}

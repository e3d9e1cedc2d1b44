"""The spec parser: every mistake is caught at start-up with file, line, key and a fix."""

from __future__ import annotations

import pytest

from tune_app.errors import UsageError
from tune_app.spec import load_spec
from tune_app import search


def error_of(path) -> str:
    with pytest.raises(UsageError) as info:
        load_spec(path)
    return info.value.one_line()


def test_quickstart_spec_parses_into_typed_config():
    spec = load_spec("search_spaces/quickstart.yaml")
    assert spec.base.dataset.name == "digits"
    assert spec.base.train.epochs == 12 and spec.base.model.block == "conv_gconv"
    assert set(spec.space) == {"model.stage_blocks", "model.groups", "train.lr"}
    assert len(spec.grid_points()) == 12
    assert spec.output.name == "quickstart"


def test_scientific_notation_without_dot_is_a_float(write_spec):
    spec = load_spec(write_spec({"train": {"lr": "1e-3"}}))
    assert spec.base.train.lr == pytest.approx(1e-3)


def test_unknown_key_suggests_the_right_one(write_spec):
    msg = error_of(write_spec(text="train:\n  epochs: 3\n  lrr: 0.1\n"))
    assert "spec.yaml:3: train.lrr: unknown key 'lrr'" in msg and "did you mean 'lr'" in msg


def test_unknown_section(write_spec):
    msg = error_of(write_spec(text="trian:\n  epochs: 3\n"))
    assert "unknown section 'trian'" in msg and "did you mean 'train'" in msg


def test_wrong_type_names_key_and_line(write_spec):
    msg = error_of(write_spec(text="dataset:\n  name: digits\ntrain:\n  epochs: three\n"))
    assert ":4: train.epochs: expected int, got 'three'" in msg


def test_bool_is_not_an_int(write_spec):
    assert "expected int" in error_of(write_spec(text="train:\n  epochs: true\n"))


def test_literal_choice_with_did_you_mean(write_spec):
    msg = error_of(write_spec(text="train:\n  optimizer: adamm\n"))
    assert "train.optimizer" in msg and "did you mean 'adam'" in msg


@pytest.mark.parametrize("lr", [0, -0.001])
def test_non_positive_learning_rate(write_spec, lr):
    assert "train.lr" in error_of(write_spec({"train": {"lr": lr}})) 


def test_non_positive_learning_rate_inside_a_grid(write_spec):
    msg = error_of(write_spec({"train": {"lr": {"grid": [1.0e-3, -1.0]}}}))
    assert "train.lr" in msg and "must be > 0" in msg


def test_lo_not_below_hi(write_spec):
    msg = error_of(write_spec({"search": {"algorithm": "optuna"}, "model": {"groups": 2},
                               "train": {"lr": {"loguniform": [1.0e-2, 1.0e-3]}}}))
    assert "train.lr.loguniform" in msg and "must be < hi" in msg


def test_empty_grid(write_spec):
    msg = error_of(write_spec({"train": {"lr": {"grid": []}}}))
    assert "train.lr.grid" in msg and "non-empty list" in msg


def test_unknown_domain_kind(write_spec):
    assert "did you mean 'grid'" in error_of(write_spec({"train": {"lr": {"gird": [0.1]}}}))


def test_grid_algorithm_rejects_sampled_domains(write_spec):
    msg = error_of(write_spec({"train": {"lr": {"loguniform": [1.0e-4, 1.0e-2]}}}))
    assert "search.algorithm: optuna" in msg


def test_optuna_rejects_grid_lists(write_spec):
    msg = error_of(write_spec({"search": {"algorithm": "optuna"}}))
    assert "choice" in msg


def test_uniform_on_a_list_field_is_rejected(write_spec):
    msg = error_of(write_spec({"search": {"algorithm": "optuna"}, "model": {"groups": 2},
                               "train": {"lr": 1.0e-3, "batch_size": {"uniform": [1.0, 2.0]}}}))
    assert "train.batch_size.uniform" in msg


def test_groups_not_dividing_channels_are_dropped_and_listed(write_spec):
    spec = load_spec(write_spec({"model": {"stage_channels": [12, 24, 48], "stem_channels": 12,
                                           "groups": {"grid": [3, 5]}}}))
    assert {p["model.groups"] for p in spec.grid_points()} == {3}
    assert len(spec.dropped) == 2 and "does not divide" in spec.dropped[0][1]


def test_no_valid_grid_point_left_is_an_error(write_spec):
    msg = error_of(write_spec({"model": {"groups": {"grid": [5, 7]}}}))
    assert "no valid configuration" in msg and "groups" in msg


def test_searching_a_non_trial_section_is_rejected(write_spec):
    assert "cannot be searched" in error_of(write_spec({"search": {"num_samples": {"grid": [1, 2]}}}))


def test_unknown_dataset_and_model(write_spec):
    assert "unknown dataset 'digitz'" in error_of(write_spec({"dataset": {"name": "digitz"}}))
    assert "unknown model 'resnet'" in error_of(write_spec({"model": {"name": "resnet"}}))


def test_yaml_syntax_error_has_line(write_spec):
    msg = error_of(write_spec(text="train:\n  epochs: [1, 2\n  lr: 3\n"))
    assert "YAML syntax error" in msg and "spec.yaml:" in msg


def test_missing_file(tmp_path):
    assert "spec file not found" in error_of(tmp_path / "nope.yaml")


def test_cli_exits_2_with_one_line_and_no_traceback(write_spec, capsys):
    code = search.main(["--space", str(write_spec(text="train:\n  lrr: 1\n")), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err


def test_dry_run_lists_trials_parameter_counts_and_budget(write_spec, capsys):
    assert search.main(["--space", str(write_spec()), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 trials" in out and "params" in out
    assert "at most 16 epochs" in out and "ASHA" in out


def test_grid_num_samples_runs_each_configuration_with_consecutive_seeds(write_spec, capsys):
    path = write_spec({"train": {"seed": 5}, "search": {"num_samples": 3}})
    points = load_spec(path).trial_points()
    assert len(points) == 12  # 4 configurations x 3 seeds
    by_config = {}
    for point in points:
        rest = tuple(sorted((k, v) for k, v in point.items() if k != "train.seed"))
        by_config.setdefault(rest, []).append(point["train.seed"])
    assert len(by_config) == 4 and all(seeds == [5, 6, 7] for seeds in by_config.values())
    assert search.main(["--space", str(path), "--dry-run"]) == 0
    assert "4 configurations x 3 seed(s) (train.seed 5, 6, 7) = 12 trials" in capsys.readouterr().out


def test_one_sample_adds_no_seed_field(write_spec):
    assert all("train.seed" not in p for p in load_spec(write_spec()).trial_points())


def test_seed_grid_and_grid_repeats_conflict(write_spec):
    msg = error_of(write_spec({"train": {"seed": {"grid": [0, 1]}}, "search": {"num_samples": 2}}))
    assert "search.num_samples" in msg and "train.seed" in msg


def test_live_table_shows_the_seed_only_when_configurations_repeat(write_spec):
    from tune_app.tuner.reporter import make_reporter

    columns = make_reporter(load_spec(write_spec({"search": {"num_samples": 2}})))._parameter_columns
    assert columns["hp/train.seed"] == "seed" and columns["hp/train.lr"] == "lr"
    assert "hp/train.seed" not in make_reporter(load_spec(write_spec()))._parameter_columns

"""Spec files that are not small YAML mappings, and grids too big to list: one-line errors,
in seconds, before Ray starts."""

from __future__ import annotations

import time

import pytest

from tests.test_bad_input_spec import alias_bomb
from tune_app import search
from tune_app.errors import UsageError
from tune_app.spec import load_spec
from tune_app.spec_yaml import MAX_DEPTH, MAX_SPEC_BYTES


def error_of(path) -> str:
    with pytest.raises(UsageError) as info:
        load_spec(path)
    return info.value.one_line()


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("dataset:\n  name: digits\n# caf\xe9\n".encode("latin-1"))
    assert f"{path}:3: not UTF-8" in error_of(path)
    path.write_bytes("\ufeffdataset:\n  name: digits\n# caf\xe9\n".encode("utf-8"))  # UTF-8, even with a BOM
    assert load_spec(path).base.dataset.name == "digits"


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "{}\n", "---\n...\n"])
def test_a_spec_that_holds_nothing_is_an_error_not_all_defaults(write_spec, text):
    assert "the spec is empty" in error_of(write_spec(text=text))


def test_recursive_alias_names_its_line(write_spec):
    msg = error_of(write_spec(text="dataset:\n  name: digits\nmodel: &m\n  stage_channels: [8]\n  inner: *m\n"))
    assert "spec.yaml:5: recursive YAML alias: *m" in msg


def test_deep_nesting_is_bounded_without_recursion_error(write_spec):
    msg = error_of(write_spec(text="train:\n  lr: " + "[" * 100_000 + "]" * 100_000 + "\n"))
    assert f"nested more than {MAX_DEPTH} levels" in msg and "spec.yaml:2" in msg


def test_alias_bomb_is_refused_in_well_under_a_second(write_spec):
    path = write_spec(text=alias_bomb(levels=30))  # 9**29 nodes once expanded
    began = time.perf_counter()
    msg = error_of(path)
    assert time.perf_counter() - began < 1.0
    assert "YAML expands to more than" in msg and "spec.yaml:" in msg


def test_a_chain_of_aliases_cannot_nest_deeper_than_the_limit(write_spec):
    text = "x0: &x0 [1]\n" + "".join(f"x{i}: &x{i} [*x{i - 1}]\n" for i in range(1, MAX_DEPTH + 5))
    assert "levels deep once aliases are expanded" in error_of(write_spec(text=text))
    # Aliases within the limits still work.
    spec = load_spec(write_spec(text="dataset:\n  name: digits\nmodel:\n  stage_channels: &c [8, 16, 32]\n"
                                     "  stage_blocks: 1\ntrain:\n  epochs: &e 2\nretrain:\n  epochs: *e\n"))
    assert spec.base.model.stage_channels == [8, 16, 32] and spec.retrain.epochs == 2


def test_an_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("train:\n  epochs: 1\n" + "#" * MAX_SPEC_BYTES + "\n")
    assert "a spec is at most" in error_of(path)


# 4 architectures (groups 2/4 x stem 0/8; groups 3 dropped) x 100 x 10 x 10 x 25 = 10^6 points.
HUGE = {"model": {"groups": {"grid": [2, 3, 4]}, "stem_channels": {"grid": [0, 8]}},
        "train": {"lr": {"grid": [round(1e-4 * (i + 1), 6) for i in range(100)]},
                  "weight_decay": {"grid": [round(1e-5 * i, 6) for i in range(10)]},
                  "batch_size": {"grid": [16, 32, 48, 64, 80, 96, 112, 128, 144, 160]},
                  "label_smoothing": {"grid": [round(0.04 * i, 2) for i in range(25)]}}}


def test_a_million_point_grid_loads_and_counts_in_seconds(write_spec):
    began = time.perf_counter()
    spec = load_spec(write_spec(HUGE))
    assert time.perf_counter() - began < 5
    assert spec.trial_count() == 4 * 100 * 10 * 10 * 25 == 10**6
    assert len(spec.grid.architectures) == 4 and len(spec.grid.dropped_architectures()) == 2


def test_counting_agrees_with_listing_on_a_small_grid(write_spec):
    spec = load_spec(write_spec({"model": {"stage_channels": [12, 24, 48], "stem_channels": 12,
                                           "groups": {"grid": [3, 5, 6]}}, "search": {"num_samples": 2}}))
    assert spec.trial_count() == len(spec.trial_points()) == 2 * 2 * 2  # groups 3, 6 x 2 lrs x 2 seeds
    assert [p["model.groups"] for p in spec.grid_points()] == [3, 3, 6, 6]


def test_dry_run_of_a_huge_grid_summarises_per_architecture(write_spec, capsys):
    began = time.perf_counter()
    assert search.main(["--space", str(write_spec(HUGE)), "--dry-run"]) == 0
    assert time.perf_counter() - began < 20
    out = capsys.readouterr().out
    assert "1000000 configurations x 1 seed(s)" in out and "4 distinct architectures, 250000 configurations each" in out
    assert "architecture" in out and "params" in out and len(out.splitlines()) < 60
    assert "needs --max-trials 1000000" in out


def test_more_trials_than_the_limit_start_with_max_trials(write_spec, capsys, monkeypatch):
    from tune_app import data

    path = write_spec(HUGE)
    assert search.main(["--space", str(path)]) == 2
    assert "pass --max-trials 1000000" in capsys.readouterr().err

    class Launched(Exception):
        pass

    def load_dataset(cfg):
        raise Launched  # past every check that comes before the data is loaded

    monkeypatch.setattr(data, "load_dataset", load_dataset)
    with pytest.raises(Launched):
        search.main(["--space", str(path), "--max-trials", "1000000"])

"""Experiment names are folder names, never paths: checked in the spec and for --name, and the
folder tune_app claims is the one Ray writes to, inside the results folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from tests.test_bad_input import fake_experiment
from tune_app import search
from tune_app.errors import UsageError
from tune_app.names import MAX_NAME_LENGTH
from tune_app.spec import load_spec
from tune_app.storage import Location

BAD = ["", ".", "..", "../tiny", "a/b", "/abs/path", "a\\b", ".hidden", "-rf", "tab\there", "nul\x00",
       "bell\x07", "rtl\u202eoverride", " padded", "x" * (MAX_NAME_LENGTH + 1), "é" * (MAX_NAME_LENGTH // 2 + 1)]
GOOD = ["quick", "lr-sweep_2", "v1.2", "grid+seeds", "é" * (MAX_NAME_LENGTH // 2), "x" * MAX_NAME_LENGTH]


def spec_named(tmp: Path, name: str) -> Path:
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump({"dataset": {"name": "digits"}, "train": {"epochs": 1},
                                    "output": {"name": name, "results_dir": str(tmp / "results")}}))
    return path


@pytest.mark.parametrize("name", BAD)
def test_names_that_are_not_plain_folder_names_are_refused_in_the_spec_and_as_flag(name, tmp_path, capsys):
    with pytest.raises(UsageError, match="output.name: experiment name"):
        load_spec(spec_named(tmp_path, name))
    assert search.main(["--space", str(spec_named(tmp_path, "fine")), f"--name={name}", "--dry-run"]) == 2
    assert "--name: experiment name" in capsys.readouterr().err


def test_spec_name_error_names_file_line_and_key(write_spec, tmp_path):
    path = write_spec(text="dataset:\n  name: digits\noutput:\n  name: ../tiny\n")
    with pytest.raises(UsageError) as info:
        load_spec(path)
    assert f"{path}:4: output.name: experiment name '../tiny' contains a path separator" in info.value.one_line()
    for name in GOOD:  # while plain folder names pass
        assert load_spec(spec_named(tmp_path, name)).output.name == name


def test_a_spec_file_name_that_is_no_folder_name_needs_output_name(tmp_path):
    path = tmp_path / ".hidden.yaml"
    path.write_text("dataset:\n  name: digits\n")
    with pytest.raises(UsageError, match="output.name"):
        load_spec(path)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("how", ["spec", "flag"])
def test_dot_dot_name_leaves_the_existing_experiment_byte_identical(tmp_path, capsys, monkeypatch, how):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    results = tmp_path / "results"
    tiny = fake_experiment(results, "tiny")
    (tiny / "trial_00000" / "result.json").write_text('{"epoch": 1, "val_accuracy": 0.5}\n')
    spec = tmp_path / "spec.yaml"
    name = "../tiny"
    spec.write_text("dataset:\n  name: digits\nmodel:\n  stage_channels: [8, 16, 32]\n  stage_blocks: 1\n"
                    f"train:\n  epochs: 1\noutput:\n  name: {name if how == 'spec' else 'fine'}\n"
                    f"  results_dir: {results}\n")
    before, root_before = _digest(tiny), sorted(p.name for p in tmp_path.iterdir())
    argv = ["--space", str(spec), "--num-cpus", "1"] + (["--name", name] if how == "flag" else [])
    assert search.main(argv) == 2
    assert "experiment name '../tiny'" in capsys.readouterr().err
    assert _digest(tiny) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == root_before  # no sibling 'tiny' either
    assert sorted(p.name for p in results.iterdir()) == ["tiny"]


def test_claimed_folder_and_rays_destination_are_one_folder_inside_the_root(tmp_path):
    root = Location(tmp_path / "results")
    location = search.claim_experiment_dir(root, "quick")
    storage_path, name, _ = search.ray_destination(location)
    assert Path(storage_path) / name == location.local and Path(storage_path) == root.local
    # A second run under the same name gets a fresh sibling, never the same folder.
    again = search.claim_experiment_dir(root, "quick")
    assert again.local.parent == root.local and again.local != location.local


@pytest.mark.parametrize("child", ["../escaped", "a/b", "."])
def test_a_folder_outside_the_root_is_refused_even_unchecked(tmp_path, child):
    root = Location(tmp_path / "results")
    with pytest.raises(UsageError, match="not directly inside"):
        search._check_direct_child(root, root.child(child))
    assert not (tmp_path / "escaped").exists()


def test_uri_storage_destination_is_the_claimed_folder(tmp_path):
    root = Location(f"file://{tmp_path}/results")
    location = search.claim_experiment_dir(root, "quick")
    assert search.ray_destination(location)[:2] == (f"{tmp_path}/results", "quick")
    assert (tmp_path / "results" / "quick").is_dir()
    with pytest.raises(UsageError, match="not directly inside"):
        search._check_direct_child(root, root.child("../escaped"))

"""--storage with a URI: Ray writes through pyarrow, tune_app mirrors and pushes back."""

from __future__ import annotations

import pytest

import json

from tests.conftest import make_spec
from tune_app import retrain_best, search
from tune_app.storage import Location

# Every test here runs (or shares a module fixture that runs) a real Ray search.
pytestmark = pytest.mark.ray


def test_search_and_retrain_through_a_storage_uri(tmp_path, monkeypatch):
    import ray

    monkeypatch.setenv("TUNE_APP_CACHE", str(tmp_path / "cache"))
    spec = make_spec(tmp_path, {"scheduler": {"name": "none"}, "train": {"epochs": 2},
                                "model": {"groups": 2}, "retrain": {"epochs": 1}})
    remote = tmp_path / "bucket"
    uri = f"file://{remote}"
    try:
        assert search.main(["--space", str(spec), "--num-cpus", "2", "--storage", uri]) == 0
        assert retrain_best.main(["--experiment", f"{uri}/quick"]) == 0
    finally:
        ray.shutdown()
    exp = remote / "quick"
    assert json.loads((exp / "experiment.json").read_text())["status"] == "finished"
    assert (exp / "spec.yaml").is_file() and (exp / "trials.json").is_file()
    for trial in ("trial_00000", "trial_00001"):
        assert list((exp / trial).glob("checkpoint_*/checkpoint.pt"))
        assert (exp / trial / "ended.json").is_file() and list((exp / trial / "tb").glob("events.*"))
    assert json.loads((exp / "best" / "metrics.json").read_text())["epochs"] == 1
    assert not (tmp_path / "results").exists()  # all went to the URI


def test_mirror_leaves_checkpoints_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_APP_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "remote" / "exp"
    (src / "trial_00000" / "checkpoint_000001").mkdir(parents=True)
    (src / "trial_00000" / "checkpoint_000001" / "checkpoint.pt").write_bytes(b"x" * 100)
    (src / "trial_00000" / "result.json").write_text("{}\n")
    location = Location(f"file://{src}")
    local = location.pull()
    assert (local / "trial_00000" / "result.json").read_text() == "{}\n"
    assert not (local / "trial_00000" / "checkpoint_000001").exists()
    (local / "report.md").write_text("hello")
    location.push("report.md")
    assert (src / "report.md").read_text() == "hello"

"""Every mistake in the README's bad-input table: one line naming file/key and fix, exit code
2, no traceback, and the results folder exactly as it was."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, SHARED_DATA
from tune_app import retrain_best, search


def spec_text(extra: str = "", results: str = "") -> str:
    return ("dataset:\n  name: digits\nmodel:\n  stage_channels: [8, 16, 32]\n  stage_blocks: 1\n"
            f"train:\n  epochs: 1\n{extra}output:\n  name: quick\n  results_dir: {results}\n")


def fake_experiment(root: Path, name: str, *, status: str = "finished", pid: int | None = None,
                    checkpoint: bytes | None = None) -> Path:
    """An experiment folder as a search leaves it (no Ray needed to make one)."""
    path = root / name
    (path / "trial_00000").mkdir(parents=True)
    (path / "spec.yaml").write_text(spec_text(results=str(root)))
    meta = {"status": status, "pid": pid or os.getpid(), "host": os.uname().nodename,
            "search": {"metric": "val_accuracy", "mode": "max"}, "base": {"train": {"epochs": 1}},
            "retrain": {"epochs": 0, "train_on": "train"}}
    (path / "experiment.json").write_text(json.dumps(meta))
    (path / "trial_00000" / "params.json").write_text(json.dumps({"hp": {}}))
    if checkpoint is not None:
        (path / "trial_00000" / "checkpoint_000000").mkdir()
        (path / "trial_00000" / "checkpoint_000000" / "checkpoint.pt").write_bytes(checkpoint)
    return path


def foreign_checkpoint() -> bytes:
    """A valid torch file that also pickles an arbitrary object: weights_only must refuse it."""
    import datetime
    import io

    buffer = io.BytesIO()
    torch.save({"model": {}, "config": {}, "epoch": 1, "made": datetime.datetime(2026, 1, 1)}, buffer)
    return buffer.getvalue()


# id -> (command, setup(tmp, results) -> argv, expected text in the error)
CASES = {
    "missing-spec": (search, lambda t, r: ["--space", str(t / "nope.yaml")], "spec file not found"),
    "yaml-syntax": (search, lambda t, r: ["--space", w(t, "train:\n  epochs: [1, 2\n")], "YAML syntax error"),
    "unknown-key": (search, lambda t, r: ["--space", w(t, spec_text("  lrr: 0.1\n", r))], "did you mean 'lr'"),
    "wrong-type": (search, lambda t, r: ["--space", w(t, spec_text("  batch_size: big\n", r))], "expected int"),
    "non-positive-lr": (search, lambda t, r: ["--space", w(t, spec_text("  lr: 0\n", r))], "train.lr: 0.0 must be > 0"),
    "lo-not-below-hi": (search, lambda t, r: ["--space", w(t, spec_text(
        "  lr: {loguniform: [0.1, 0.01]}\n", r).replace("dataset:", "search:\n  algorithm: optuna\ndataset:"))],
        "must be < hi"),
    "empty-grid": (search, lambda t, r: ["--space", w(t, spec_text("  lr: {grid: []}\n", r))], "non-empty list"),
    "groups-divide-nothing": (search, lambda t, r: ["--space", w(t, spec_text(results=r).replace(
        "  stage_blocks: 1\n", "  stage_blocks: 1\n  block: conv_gconv\n  groups: {grid: [3, 5]}\n"))],
        "no valid configuration"),
    "seeds-twice": (search, lambda t, r: ["--space", w(t, spec_text("  seed: {grid: [0, 1]}\n", r).replace(
        "dataset:", "search:\n  num_samples: 2\ndataset:"))], "search.num_samples"),
    "unknown-dataset": (search, lambda t, r: ["--space", w(t, spec_text(results=r).replace(
        "name: digits", "name: cifar"))], "unknown dataset 'cifar'"),
    "unknown-model": (search, lambda t, r: ["--space", w(t, spec_text(results=r).replace(
        "model:\n", "model:\n  name: resnet50\n"))], "unknown model 'resnet50'"),
    "dataset-offline": (search, lambda t, r: ["--space", w(t, spec_text(results=r).replace(
        "name: digits", "name: tiny-imagenet"))], "dataset.path"),
    "missing-column": (search, lambda t, r: ["--space", w(t, spec_text(results=r).replace(
        "name: digits", f"name: hf\n  path: {SHARED_DATA / 'cub-200-sample'}\n  label_column: species"))],
        "species"),
    "resources-too-large": (search, lambda t, r: ["--num-cpus", "2", "--space", w(t, spec_text(results=r)
        + "resources:\n  cpus_per_trial: 64\n")], "resources.cpus_per_trial"),
    "cluster-unreachable": (search, lambda t, r: ["--address", f"127.0.0.1:{closed_port()}", "--space",
                                                  w(t, spec_text(results=r))], "cannot reach a Ray cluster"),
    "resume-not-an-experiment": (search, lambda t, r: ["--resume", str(t)], "not a tune_app experiment"),
    "experiment-in-use": (search, lambda t, r: ["--resume", str(fake_experiment(
        t / "busy", "quick", status="running", pid=os.getppid()))], "in use by a running search"),
    "truncated-checkpoint": (search, lambda t, r: ["--resume", str(fake_experiment(
        t / "trunc", "quick", status="interrupted", checkpoint=b"PK\x03\x04 cut short"))], "not signed by this user's tune_app key"),
    "foreign-checkpoint": (search, lambda t, r: ["--resume", str(fake_experiment(
        t / "foreign", "quick", status="interrupted", checkpoint=foreign_checkpoint()))], "not signed by this user's tune_app key"),
    "retrain-no-finished-trial": (retrain_best, lambda t, r: ["--experiment", str(fake_experiment(
        t / "empty", "quick"))], "no trial of this experiment finished"),
    "retrain-not-an-experiment": (retrain_best, lambda t, r: ["--experiment", str(t)], "not a tune_app experiment"),
    "retrain-bad-epochs": (retrain_best, lambda t, r: ["--experiment", str(fake_experiment(
        t / "ep", "quick")), "--epochs", "-3"], "--epochs"),
}


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free once the socket closes: nothing listens there


def w(tmp: Path, text: str) -> str:
    path = tmp / "spec.yaml"
    path.write_text(text)
    return str(path)


def snapshot(root: Path) -> dict:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


@pytest.fixture(scope="module", autouse=True)
def _shutdown_ray():
    yield
    import ray

    ray.shutdown()


def check_bad_input(case: tuple, tmp_path: Path, capsys, monkeypatch) -> None:
    """Run one CASES entry: exit 2, one `error:` line with the expected text and a fix, and
    the results folder (holding an earlier experiment of the same name) exactly as it was.
    Every tests/test_bad_input*.py runs its CASES through this."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    results = tmp_path / "results"
    existing = fake_experiment(results, "quick")  # an earlier experiment with the same name
    (existing / "trial_00000" / "result.json").write_text('{"epoch": 1, "val_accuracy": 0.5}\n')
    module, argv, expected = case
    args = argv(tmp_path, str(results))  # may plant files of its own before the snapshot
    before = snapshot(results)
    code = module.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert "fix:" in err[0]
    assert snapshot(results) == before  # nothing created, changed or deleted


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    check_bad_input(CASES[case], tmp_path, capsys, monkeypatch)


def test_the_process_exits_2_with_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tune_app.search", "--space", w(tmp_path, "train:\n  lrr: 1\n")],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def all_cases() -> set[str]:
    """The ids of every CASES table in tests/test_bad_input*.py."""
    import importlib

    ids: set[str] = set()
    for path in sorted(Path(__file__).parent.glob("test_bad_input*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        # OTHER_CASES: README rows whose test needs more than the CASES harness (a monkeypatch).
        cases = set(module.CASES) | set(getattr(module, "OTHER_CASES", {}))
        overlap = ids & cases
        assert not overlap, f"{path.name} reuses case ids {overlap}"
        ids |= cases
    return ids


def test_readme_table_lists_exactly_these_cases():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Bad input", 1)[1].split("\n## ", 1)[0]
    ids = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.M))
    assert ids == all_cases()

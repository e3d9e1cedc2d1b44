"""The bad-input cases of the trust boundary (README "Bad input" rows), in test_bad_input's
format and harness: one line naming the file and a fix, exit 2, results folder unchanged."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.fs
import pytest
import torch

from tests.test_bad_input import fake_experiment, snapshot
from tune_app import search
from tune_app.integrity import signing_filesystem


def with_file(root: Path, relpath: str, data: bytes, *, signed: bool = False, then: bytes | None = None) -> str:
    """An interrupted experiment holding `relpath`, optionally signed with this user's key and
    then overwritten with `then` (by someone without the key)."""
    path = fake_experiment(root, "quick", status="interrupted")
    target = path / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    if signed:
        with signing_filesystem(pyarrow.fs.LocalFileSystem(), str(root)).open_output_stream(str(target)) as f:
            f.write(data)
    else:
        target.write_bytes(data)
    if then is not None:
        target.write_bytes(then)
    return str(path)


def checkpoint_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"model": {}, "config": {}, "epoch": 1}, buffer)
    return buffer.getvalue()


# id -> (command, setup(tmp, results) -> argv, expected text in the error)
CASES = {
    "resume-unsigned-pickle": (search, lambda t, r: ["--resume", with_file(t / "planted", "tuner.pkl", b"\x80\x04N.")],
                               "not signed by this user's tune_app key"),
    "resume-altered-pickle": (search, lambda t, r: ["--resume", with_file(
        t / "altered", "searcher-state-2026-01-01_00-00-00.pkl", b"\x80\x04N.", signed=True, then=b"\x80\x04K\x01.")],
        "changed since tune_app wrote it"),
    "resume-planted-checkpoint": (search, lambda t, r: ["--resume", with_file(
        t / "ckpt", "trial_00000/checkpoint_000009/checkpoint.pt", checkpoint_bytes())],
        "not signed by this user's tune_app key"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    results = tmp_path / "results"
    existing = fake_experiment(results, "quick")
    (existing / "trial_00000" / "result.json").write_text('{"epoch": 1, "val_accuracy": 0.5}\n')
    module, argv, expected = CASES[case]
    args = argv(tmp_path, str(results))
    before, resumed_before = snapshot(results), snapshot(Path(args[-1]))
    code = module.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert "fix:" in err[0]
    assert snapshot(results) == before and snapshot(Path(args[-1])) == resumed_before

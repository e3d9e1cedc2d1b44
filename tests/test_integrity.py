"""tune_app.integrity: the key, signatures, and the signing filesystem Ray writes through."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pyarrow.fs
import pytest

from tune_app import integrity
from tune_app.errors import UsageError


@pytest.fixture
def secret(tmp_path, monkeypatch) -> Path:
    """A fresh key of this test only (the cache would otherwise keep the session's)."""
    path = tmp_path / "cfg" / "secret"
    monkeypatch.setenv(integrity.SECRET_ENV, str(path))
    monkeypatch.setattr(integrity, "_KEYS", {})
    return path


def fs_at(root: Path) -> pyarrow.fs.FileSystem:
    return integrity.signing_filesystem(pyarrow.fs.LocalFileSystem(), str(root))


def write(fs, path: Path, data: bytes) -> None:
    with fs.open_output_stream(str(path)) as f:
        f.write(data)


def read(fs, path: Path) -> bytes:
    with fs.open_input_stream(str(path)) as f:
        return f.readall()


# --------------------------------------------------------------------------- key


def test_the_key_is_created_private_and_then_reused(secret):
    key = integrity.load_key(create=True)
    assert len(key) >= 32
    assert secret.stat().st_mode & 0o777 == 0o600
    integrity._KEYS.clear()
    assert integrity.load_key() == key


def test_no_key_is_a_usage_error_unless_asked_to_create_one(secret):
    with pytest.raises(UsageError, match="no tune_app secret file") as err:
        integrity.load_key()
    assert str(secret) in err.value.one_line() and not secret.exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_others_can_read_is_refused(secret, mode):
    integrity.load_key(create=True)
    integrity._KEYS.clear()
    secret.chmod(mode)
    with pytest.raises(UsageError, match="readable or writable by others") as err:
        integrity.load_key()
    assert f"chmod 600 {secret}" in err.value.one_line()


def test_a_short_key_is_refused(secret):
    secret.parent.mkdir()
    secret.write_text("short")
    secret.chmod(0o600)
    with pytest.raises(UsageError, match="too short"):
        integrity.load_key()


# --------------------------------------------------------------------------- sign / verify


def test_a_signature_binds_key_path_and_contents():
    key, other = b"k" * 32, b"o" * 32
    mac = integrity.sign(key, "tuner.pkl", b"data")
    assert integrity.verify(key, "tuner.pkl", b"data", [mac])
    assert not integrity.verify(key, "tuner.pkl", b"datA", [mac])
    assert not integrity.verify(key, "trial_00001/params.pkl", b"data", [mac])
    assert not integrity.verify(other, "tuner.pkl", b"data", [mac])
    assert not integrity.verify(key, "tuner.pkl", b"data", ["00" * 32, 5])


def test_protected_names():
    for rel in ["tuner.pkl", "experiment_state-2026-01-01_00-00-00.json", "searcher-state-x.pkl",
                "callback-states-x.pkl", "basic-variant-state-x.json", "search_gen_state-x.json",
                "trial_00000/params.pkl", "trial_00000/error.pkl", "trial_00000/checkpoint_000003/checkpoint.pt"]:
        assert integrity.is_protected(rel), rel
    for rel in ["experiment.json", "trial_00000/result.json", "tuner.pkl.sig", "spec.yaml",
                "trial_00000/checkpoint_000003/checkpoint.pt.sig", "trial_00000/tb/events.out"]:
        assert not integrity.is_protected(rel), rel


# --------------------------------------------------------------------------- filesystem


def test_a_protected_file_is_signed_when_written_and_read_back(secret, tmp_path):
    integrity.load_key(create=True)
    fs = fs_at(tmp_path)
    target = tmp_path / "exp" / "trial_00000" / "params.pkl"
    target.parent.mkdir(parents=True)
    write(fs, target, b"payload")
    assert target.read_bytes() == b"payload"
    assert Path(f"{target}.sig").is_file()
    assert read(fs, target) == b"payload"
    assert not [p for p in tmp_path.rglob("*") if integrity.TMP_MARK in p.name]


def test_other_files_pass_through_unsigned(secret, tmp_path):
    integrity.load_key(create=True)
    fs = fs_at(tmp_path)
    (tmp_path / "exp").mkdir()
    write(fs, tmp_path / "exp" / "result.json", b"{}")
    assert not (tmp_path / "exp" / "result.json.sig").exists()
    (tmp_path / "exp" / "result.json").write_bytes(b"[]")
    assert read(fs, tmp_path / "exp" / "result.json") == b"[]"


def test_a_tampered_or_planted_pickle_is_refused_before_it_is_read(secret, tmp_path):
    integrity.load_key(create=True)
    fs = fs_at(tmp_path)
    (tmp_path / "exp").mkdir()
    write(fs, tmp_path / "exp" / "tuner.pkl", pickle.dumps({"ok": 1}))
    (tmp_path / "exp" / "tuner.pkl").write_bytes(pickle.dumps({"ok": 2}))
    with pytest.raises(UsageError, match="signature mismatch"):
        read(fs, tmp_path / "exp" / "tuner.pkl")
    (tmp_path / "exp" / "searcher-state-x.pkl").write_bytes(b"planted")
    with pytest.raises(UsageError, match="not signed"):
        read(fs, tmp_path / "exp" / "searcher-state-x.pkl")


def test_an_entry_moved_to_another_file_does_not_verify(secret, tmp_path):
    integrity.load_key(create=True)
    fs = fs_at(tmp_path)
    exp = tmp_path / "exp"
    exp.mkdir()
    write(fs, exp / "tuner.pkl", b"genuine")
    (exp / "callback-states-x.pkl").write_bytes(b"genuine")
    (exp / "callback-states-x.pkl.sig").write_bytes((exp / "tuner.pkl.sig").read_bytes())
    with pytest.raises(UsageError, match="signature mismatch"):
        read(fs, exp / "callback-states-x.pkl")


def test_the_previous_signature_still_verifies_after_a_kill_between_entry_and_data(secret, tmp_path):
    """Sign-before-write: the entry is replaced first, so a SIGKILL before the data is replaced
    leaves the old data next to an entry that still holds its HMAC."""
    key = integrity.load_key(create=True)
    fs = fs_at(tmp_path)
    exp = tmp_path / "exp"
    exp.mkdir()
    write(fs, exp / "experiment_state-s.json", b"old")
    old_entry = (exp / "experiment_state-s.json.sig").read_bytes()
    write(fs, exp / "experiment_state-s.json", b"new")
    assert integrity.parse_entry(old_entry)[0] in integrity.parse_entry(
        (exp / "experiment_state-s.json.sig").read_bytes())
    (exp / "experiment_state-s.json").write_bytes(b"old")  # as if killed before the data moved
    assert read(fs, exp / "experiment_state-s.json") == b"old"
    assert integrity.verify(key, "experiment_state-s.json", b"new",
                            integrity.parse_entry((exp / "experiment_state-s.json.sig").read_bytes()))


def test_copy_through_the_filesystem_re_signs_for_the_new_path(secret, tmp_path):
    integrity.load_key(create=True)
    fs = fs_at(tmp_path)
    ckpt = tmp_path / "exp" / "trial_00000" / "checkpoint_000001"
    ckpt.mkdir(parents=True)
    write(fs, ckpt / "checkpoint.pt", b"weights")
    fs.copy_file(str(ckpt / "checkpoint.pt"), str(tmp_path / "exp" / "trial_00000" / "params.pkl"))
    assert read(fs, tmp_path / "exp" / "trial_00000" / "params.pkl") == b"weights"


def test_the_filesystem_pickles_without_the_key(secret, tmp_path):
    key = integrity.load_key(create=True)
    fs = fs_at(tmp_path)
    blob = pickle.dumps(fs)
    assert key not in blob
    assert pickle.loads(blob).equals(fs)


def test_verify_experiment_names_the_first_bad_file_and_changes_nothing(secret, tmp_path):
    integrity.load_key(create=True)
    fs = fs_at(tmp_path)
    exp = tmp_path / "exp"
    (exp / "trial_00000" / "checkpoint_000000").mkdir(parents=True)
    write(fs, exp / "tuner.pkl", b"t")
    write(fs, exp / "trial_00000" / "checkpoint_000000" / "checkpoint.pt", b"c")
    integrity.verify_experiment(pyarrow.fs.LocalFileSystem(), str(exp))
    planted = exp / "trial_00000" / "checkpoint_000007" / "checkpoint.pt"
    planted.parent.mkdir()
    planted.write_bytes(b"x")
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in exp.rglob("*")}
    with pytest.raises(UsageError, match="not signed") as err:
        integrity.verify_experiment(pyarrow.fs.LocalFileSystem(), str(exp), shown="results/exp")
    assert err.value.file == "results/exp/trial_00000/checkpoint_000007/checkpoint.pt"
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in exp.rglob("*")} == before


def test_a_missing_key_stops_verification(secret, tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "tuner.pkl").write_bytes(b"t")
    with pytest.raises(UsageError, match="no tune_app secret file"):
        integrity.verify_experiment(pyarrow.fs.LocalFileSystem(), str(tmp_path / "exp"))
    assert not os.path.exists(secret)


def test_load_checkpoint_verifies_when_told_the_experiment(secret, tmp_path):
    import io

    import torch

    from tune_app.checkpoint import load_checkpoint

    integrity.load_key(create=True)
    buffer = io.BytesIO()
    torch.save({"model": {}, "config": {}, "epoch": 3}, buffer)
    ckpt = tmp_path / "exp" / "trial_00000" / "checkpoint_000002"
    ckpt.mkdir(parents=True)
    write(fs_at(tmp_path), ckpt / "checkpoint.pt", buffer.getvalue())
    assert load_checkpoint(ckpt, experiment=tmp_path / "exp")["epoch"] == 3
    moved = tmp_path / "exp" / "trial_00001" / "checkpoint_000002"
    moved.parent.mkdir()
    ckpt.rename(moved)  # a genuine checkpoint planted in another trial
    assert load_checkpoint(moved)["epoch"] == 3  # unverified reads still work (retrain, tests)
    with pytest.raises(integrity.IntegrityError, match="signature mismatch"):
        load_checkpoint(moved, experiment=tmp_path / "exp")
    (moved / "checkpoint.pt.sig").unlink()
    with pytest.raises(integrity.IntegrityError, match="not signed"):
        load_checkpoint(moved, experiment=tmp_path / "exp")

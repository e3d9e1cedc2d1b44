"""`--resume` of a results folder someone else wrote to: nothing planted is ever unpickled.

One real (interrupted) Optuna search is made per module; each case copies it, plants or
alters one file, and resumes: exit 2, one line naming the file, no code of the file run,
the folder exactly as it was. A genuine copy then resumes to the end.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.fs
import pytest

from tests.conftest import REPO, make_spec
from tests.test_bad_input import foreign_checkpoint, snapshot
from tests.test_faults import result_rows, run_search
from tests.test_resume import wait_for
from tune_app.experiment import load_experiment, read_ended
from tune_app.integrity import signing_filesystem

pytestmark = pytest.mark.ray  # real Ray searches (implies slow)

# 3 Optuna trials of 4 epochs, two at a time, slow enough (~0.2 s/epoch) to interrupt at
# epoch 2. ASHA (so that its state is saved too) with its only rung at epoch 3: nothing is
# stopped before the interruption.
SPEC = {"model": {"stage_channels": [32, 64, 128], "stem_channels": 32, "groups": 2},
        "train": {"epochs": 4, "lr": {"loguniform": [1.0e-3, 3.0e-3]}},
        "search": {"algorithm": "optuna", "num_samples": 3},
        "scheduler": {"name": "asha", "grace_period": 3, "reduction_factor": 2}}


class Payload:
    """Unpickling this runs a shell command: what an attacker would plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker))


def evil_experiment_state(marker: Path) -> bytes:
    # Ray's experiment state is JSON whose objects embed cloudpickles (TuneFunctionEncoder).
    return json.dumps({"_type": "CLOUDPICKLE_FALLBACK", "value": evil_pickle(marker).hex()}).encode()


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("trust")
    exp = tmp / "results" / "quick"
    proc = run_search(make_spec(tmp, SPEC))
    assert wait_for(lambda: any(len(result_rows(t)) >= 2 for t in exp.glob("trial_*"))), proc.communicate()[0]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert restored_checkpoint(exp) is not None, "no unfinished trial with a checkpoint to resume"
    return exp


def restored_checkpoint(exp: Path) -> Path | None:
    """The checkpoint Tune restores for an unfinished trial, as the experiment state names it."""
    from tune_app.search import ray_storage
    from tune_app.tuner.build import restored_checkpoints
    from tune_app.storage import Location

    path, fs = ray_storage(Location(exp))
    for trial, checkpoint in restored_checkpoints(path, fs):
        if not read_ended(exp / trial):
            return Path(checkpoint)
    return None


def copy_of(exp: Path, tmp: Path) -> Path:
    target = tmp / "results" / exp.name
    shutil.copytree(exp, target)
    return target


def resign(exp: Path, path: Path, data: bytes) -> None:
    """Write `data` with this user's key, as tune_app itself would."""
    with signing_filesystem(pyarrow.fs.LocalFileSystem(), str(exp.parent)).open_output_stream(str(path)) as f:
        f.write(data)


def newest(exp: Path, pattern: str) -> Path:
    return sorted(exp.glob(pattern))[-1]


def plant_newer_checkpoint(exp: Path, marker: Path) -> Path:
    """A genuine checkpoint (and its signature) copied to a newer name than Tune's: the old
    pre-check loaded this one, the newest by name, and passed."""
    restored = restored_checkpoint(exp)
    newer = restored.parent / "checkpoint_000099"
    shutil.copytree(restored, newer)
    return newer / "checkpoint.pt"


def unreadable_restored_checkpoint(exp: Path, marker: Path) -> Path:
    """Signed but truncated where Tune restores, a valid signed one newer by name: only a
    check of the checkpoint Tune really restores finds it."""
    restored = restored_checkpoint(exp) / "checkpoint.pt"
    newer = restored.parent.parent / "checkpoint_000099" / "checkpoint.pt"
    newer.parent.mkdir()
    resign(exp, newer, restored.read_bytes())
    resign(exp, restored, restored.read_bytes()[:100])
    return restored


# case -> (alter(experiment, marker) -> the file the error must name, expected text)
CASES = {
    "tuner-pkl": (lambda e, m: _put(e / "tuner.pkl", evil_pickle(m)), "signature mismatch"),
    "experiment-state": (lambda e, m: _put(newest(e, "experiment_state-*.json"), evil_experiment_state(m)),
                         "signature mismatch"),
    "newer-experiment-state": (lambda e, m: _put(e / "experiment_state-2099-01-01_00-00-00.json",
                                                 evil_experiment_state(m)), "not signed"),
    "searcher-state": (lambda e, m: _put(newest(e, "searcher-state-*.pkl"), evil_pickle(m)), "signature mismatch"),
    "callback-state": (lambda e, m: _put(newest(e, "callback-states-*.pkl"), evil_pickle(m)), "signature mismatch"),
    # tune_app's result logger writes no params.pkl (nobody reads it); a planted one is refused.
    "params-pkl": (lambda e, m: _put(sorted(e.glob("trial_*"))[0] / "params.pkl", evil_pickle(m)), "not signed"),
    "restored-checkpoint": (lambda e, m: _put(restored_checkpoint(e) / "checkpoint.pt", foreign_checkpoint()),
                            "signature mismatch"),
    "newer-checkpoint-planted": (plant_newer_checkpoint, "signature mismatch"),
    "restored-checkpoint-unreadable": (unreadable_restored_checkpoint, "unreadable checkpoint"),
}


def _put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def resume(exp: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tune_app.search", "--resume", str(exp), "--num-cpus", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_planted_or_altered_file_is_refused_and_never_unpickled(case, interrupted, tmp_path):
    exp = copy_of(interrupted, tmp_path)
    marker = tmp_path / "MARKER"
    alter, expected = CASES[case]
    named = alter(exp, marker)
    before = snapshot(exp)
    proc = resume(exp)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in proc.stderr, err
    assert f"{named}:" in err[0] and expected in err[0] and "fix:" in err[0], err
    assert not marker.exists()
    assert snapshot(exp) == before


def test_the_payloads_run_code_when_unpickled(tmp_path):
    """The cases above would prove nothing if their payloads were inert."""
    from ray.tune.utils.serialization import _loads_with_cloudpickle

    pickle.loads(evil_pickle(tmp_path / "a"))
    _loads_with_cloudpickle(evil_experiment_state(tmp_path / "b"))
    assert (tmp_path / "a").exists() and (tmp_path / "b").exists()


def test_a_genuine_interrupted_search_resumes_to_the_end(interrupted, tmp_path):
    exp = copy_of(interrupted, tmp_path)
    proc = resume(exp, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((exp / "experiment.json").read_text())["status"] == "finished"
    experiment = load_experiment(exp)
    assert len(experiment.trials) == 3
    for trial in experiment.trials:  # ASHA's rung at epoch 3 may stop one, once resumed
        assert trial.status(experiment.max_epochs) in ("completed", "stopped early"), trial.name
        epochs = [r["epoch"] for r in result_rows(trial.path)]
        assert sorted(set(epochs)) == list(range(1, max(epochs) + 1)), (trial.name, epochs)
    for checkpoint in exp.glob("trial_*/checkpoint_*/checkpoint.pt"):
        assert Path(f"{checkpoint}.sig").is_file()  # written during the resume too


def test_every_pickle_ray_wrote_is_protected_and_signed(interrupted):
    """Guards the list of protected names against a Ray upgrade that adds a pickle file."""
    from tune_app.integrity import SIG_SUFFIX, is_protected

    pickles = []
    for f in sorted(interrupted.rglob("*")):
        if f.is_file() and not f.name.endswith(SIG_SUFFIX):
            head = f.read_bytes()
            # pickle protocol 2+, a torch zip, or JSON that embeds cloudpickles
            if head[:1] == b"\x80" or head[:2] == b"PK" or b"CLOUDPICKLE_FALLBACK" in head:
                rel = f.relative_to(interrupted).as_posix()
                pickles.append(rel)
                assert is_protected(rel) and Path(f"{f}{SIG_SUFFIX}").is_file(), rel
    for kind in ("tuner.pkl", "experiment_state-", "searcher-state-", "callback-states-",
                 "checkpoint.pt"):  # the detection above found each kind Ray writes
        assert any(kind in p for p in pickles), kind
    assert not any("params.pkl" in p for p in pickles)  # no pickle that nothing reads

"""Checkpoint files: state dicts plus the config, read back with weights_only=True."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from tune_app.errors import UsageError
from tune_app.fileio import write_atomic, write_error

CHECKPOINT_FILE = "checkpoint.pt"
REQUIRED_KEYS = ("model", "config", "epoch")


def save_checkpoint(directory: str | Path, state: dict[str, Any], *, staging: bool = False) -> Path:
    """Write `state` as directory/checkpoint.pt.

    staging: `directory` is a private temporary folder that tune.report copies into the
    experiment and then deletes. That copy is written whole (integrity._write_atomic), and a
    crash mid-write here takes the temporary folder with it, so the rename and the fsync that
    make a kept checkpoint crash-safe buy nothing there (about 2 ms of every epoch of the
    quickstart).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_FILE
    if staging:
        try:
            with open(path, "wb") as f:
                torch.save(state, f)
        except OSError as err:
            raise write_error(err, path) from None
        return path
    # A crash or a full disk mid-write never leaves a truncated checkpoint.pt.
    write_atomic(path, lambda f: torch.save(state, f), binary=True)
    return path


def load_checkpoint(path: str | Path, *, experiment: str | Path | None = None) -> dict[str, Any]:
    """Load a tune_app checkpoint (a file or a folder holding checkpoint.pt).

    weights_only=True: a checkpoint is data, never code, so a foreign pickle cannot run.
    With `experiment` (the experiment folder holding the checkpoint), the bytes are loaded
    only if they carry this user's signature (tune_app.integrity). Checkpoints Ray hands a
    worker were already verified by the signing filesystem they were fetched through.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise UsageError("checkpoint not found", file=str(path), fix="point at a trial checkpoint folder")
    data = path.read_bytes()
    if experiment is not None:
        from tune_app.integrity import SIG_SUFFIX, check, load_key

        sig = path.with_name(path.name + SIG_SUFFIX)
        check(load_key(), path.relative_to(experiment).as_posix(), data,
              sig.read_bytes() if sig.is_file() else None, str(path))
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError) as err:
        reason = str(err).splitlines()[0][:120]
        raise UsageError(f"unreadable checkpoint (truncated, or not saved by tune_app): {reason}",
                         file=str(path), fix="delete this checkpoint or pick another trial") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise UsageError("not a tune_app checkpoint (missing model/config/epoch)", file=str(path),
                         fix="pick a checkpoint written by tune_app")
    return state

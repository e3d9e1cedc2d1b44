"""Checkpoint files: state dicts plus the config, read back with weights_only=True."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

from tune_app.errors import UsageError
from tune_app.fileio import write_atomic, write_error

CHECKPOINT_FILE = "checkpoint.pt"
REQUIRED_KEYS = ("model", "config", "epoch")


# A trial checkpoint holds its tensors in one byte buffer under this key (see pack()).
PACKED = "packed_tensors"
_REF = "packed_tensor"  # the placeholder of one tensor: {_REF: [offset, dtype, shape]}
_ALIGN = 16  # bytes: each dtype's run starts at a multiple of the largest element size


def save_checkpoint(directory: str | Path, state: dict[str, Any], *, staging: bool = False) -> Path:
    """Write `state` as directory/checkpoint.pt.

    staging: a trial's checkpoint, written into a private temporary folder that tune.report
    copies into the experiment and then deletes. That copy is written whole
    (integrity._write_atomic), and a crash mid-write here takes the temporary folder with it,
    so the rename and the fsync that make a kept checkpoint crash-safe buy nothing there. Its
    tensors are packed (pack()): torch.save spends about 35 us per tensor, 9 of the 10 ms an
    epoch of the quickstart spent saving its 93 weights and 162 Adam tensors.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_FILE
    if staging:
        try:
            with open(path, "wb") as f:
                torch.save(pack(state), f)
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
    if isinstance(state, dict) and PACKED in state:
        try:
            state = unpack(state)
        except (AttributeError, KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
            raise UsageError(f"unreadable checkpoint (its packed tensors do not fit their index: {err})",
                             file=str(path), fix="delete this checkpoint or pick another trial") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise UsageError("not a tune_app checkpoint (missing model/config/epoch)", file=str(path),
                         fix="pick a checkpoint written by tune_app")
    return state


def pack(state: dict[str, Any]) -> dict[str, Any]:
    """`state` with every tensor (in nested dicts, lists and tuples) moved into one uint8
    buffer, each replaced by {_REF: [byte offset, dtype name, shape]}. Still plain data for
    torch.load(weights_only=True); unpack() turns it back."""
    tensors: list[torch.Tensor] = []
    refs: list[dict[str, Any]] = []  # the placeholders in the tree, filled in below

    def strip(value: Any) -> Any:
        if not isinstance(value, torch.Tensor):
            return None
        tensors.append(value.detach())
        refs.append({_REF: None})
        return refs[-1]

    tree = _rebuild(state, strip)
    # One torch.cat per dtype and device: per-tensor work is what made torch.save slow.
    groups: dict[tuple[torch.dtype, torch.device], list[int]] = {}
    for index, tensor in enumerate(tensors):
        groups.setdefault((tensor.dtype, tensor.device), []).append(index)
    chunks, offset = [], 0
    for (dtype, _), members in groups.items():
        flat = torch.cat([tensors[i].reshape(-1) for i in members])
        position = offset
        for i in members:
            refs[i][_REF] = [position, str(dtype).removeprefix("torch."), list(tensors[i].shape)]
            position += tensors[i].numel() * dtype.itemsize
        data = flat.view(torch.uint8).cpu() if flat.dtype != torch.bool else flat.to(torch.uint8).cpu()
        pad = -data.numel() % _ALIGN
        chunks += [data, torch.zeros(pad, dtype=torch.uint8)] if pad else [data]
        offset += data.numel() + pad
    buffer = torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.uint8)
    return {**tree, PACKED: buffer}


def unpack(state: dict[str, Any]) -> dict[str, Any]:
    """The state pack() was given; its tensors are views of the one buffer."""
    buffer = state[PACKED]

    def tensor(offset: int, dtype: str, shape: list[int]) -> torch.Tensor:
        kind = getattr(torch, dtype)
        if not isinstance(kind, torch.dtype):
            raise ValueError(f"{dtype} is not a dtype")
        count = 1
        for size in shape:
            count *= size
        nbytes = count * kind.itemsize
        if offset % kind.itemsize or offset + nbytes > buffer.numel():
            raise ValueError(f"a tensor at byte {offset} does not fit the buffer")
        data = buffer[offset:offset + nbytes]
        return (data.view(kind) if kind != torch.bool else data.to(torch.bool)).reshape(shape)

    def restore(value: Any) -> Any:
        return tensor(*value[_REF]) if isinstance(value, dict) and set(value) == {_REF} else None

    return _rebuild({key: value for key, value in state.items() if key != PACKED}, restore)


def _rebuild(value: Any, replace: Callable[[Any], Any]) -> Any:
    """`value` rebuilt through its dicts, lists and tuples, with replace(part) in place of every
    part for which it returns something other than None."""
    new = replace(value)
    if new is not None:
        return new
    if isinstance(value, dict):
        return {key: _rebuild(item, replace) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_rebuild(item, replace) for item in value)
    return value

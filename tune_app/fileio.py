"""Writing and reading tune_app's own files so that no crash, full disk or stray edit turns into
a traceback or a silently wrong answer.

Writes are atomic (a temporary file in the same folder, flushed to disk, then renamed over the
target): a reader, or a resume after SIGKILL, sees the old file or the new one, never a 0-byte
or half-written one. Reads of JSON name the file and the fix when it is missing, empty or
corrupt, instead of raising JSONDecodeError from deep inside a report.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

from tune_app.errors import UsageError

# errno values that mean "the disk cannot take this write", as opposed to a bug.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR}


# Free space a search keeps on its results disk: below it the driver stops the search (as one
# Ctrl-C would) and workers stop writing checkpoints, so Ray's experiment state and the final
# "interrupted" mark still fit and the search can be resumed once space is freed.
DISK_RESERVE = 8 * 2**20


def is_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in _NO_SPACE


class DiskFull(UsageError):
    """Raised by the writers here when the target's file system is full (ENOSPC/EDQUOT)."""

    def __init__(self, folder: Path | str):
        super().__init__("no space left on the device", file=str(folder),
                         fix="free space there (or pass --storage / output.results_dir on a larger disk), "
                             "then resume the search with --resume")
        self.folder = str(folder)


def write_error(err: OSError, path: Path | str) -> UsageError:
    """The one-line error for a failed write of `path` (disk full, read-only, not a folder)."""
    folder = Path(path).parent
    if err.errno in _NO_SPACE:
        return DiskFull(folder)
    if err.errno in _NOT_WRITABLE:
        return UsageError(f"cannot write here ({os.strerror(err.errno)})", file=str(folder),
                          fix="pick a folder you can write to (output.results_dir, --storage)")
    return UsageError(f"cannot write {Path(path).name}: {err.strerror or err}", file=str(folder),
                      fix="check the folder and the disk")


def write_atomic(path: str | Path, write: Callable[[Any], None], *, binary: bool = False) -> None:
    """Call `write(handle)` on a temporary file next to `path`, then rename it over `path`.

    The temporary name carries the pid, so two writers never share one; on any failure it is
    removed and the old `path` is untouched. OSErrors become one-line UsageErrors.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        _remove_quietly(tmp)
        raise write_error(err, path) from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda f: f.write(text))


def write_json_atomic(path: str | Path, data: Any, indent: int = 1,
                      default: Optional[Callable[[Any], Any]] = None) -> None:
    """default: as json.dump's, for values JSON has no type for."""
    write_atomic(path, lambda f: json.dump(data, f, indent=indent, default=default))


def save_figure_atomic(fig: Any, path: str | Path, **kwargs: Any) -> None:
    """A matplotlib figure written like every other file: whole or not at all."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    write_atomic(path, lambda f: fig.savefig(f, format=fmt, **kwargs), binary=True)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def read_json(path: str | Path, *, what: str, fix: str, missing_ok: bool = False) -> Any:
    """The JSON in `path`; missing (unless missing_ok: None), empty or corrupt -> one-line error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return None
        raise UsageError(f"{what} is missing", file=str(path), fix=fix) from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read {what} ({err})", file=str(path), fix=fix) from None
    if not text.strip():
        raise UsageError(f"{what} is empty (a write was cut short, e.g. by a full disk)",
                         file=str(path), fix=fix)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{what} is not valid JSON ({err.msg} at line {err.lineno})",
                         file=str(path), fix=fix) from None


def free_bytes(folder: str | Path) -> Optional[int]:
    """Free bytes on the file system holding `folder` (or its nearest existing parent)."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None

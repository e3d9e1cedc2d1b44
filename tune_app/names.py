"""Experiment names: one folder directly under the results folder, never a path.

tune_app and Ray both turn the name into a folder; anything that a path join or a shell could
read as more than one plain folder name (a separator, `..`, an absolute path) would let a run
write into another experiment. So a name is checked like any other spec value, before Ray starts.
"""

from __future__ import annotations

import unicodedata

from tune_app.errors import UsageError

MAX_NAME_LENGTH = 100  # well under the 255-byte limit of a file name, with room for "-YYYYmmdd-HHMMSS-NN"
_FIX = "use a plain folder name such as 'lr-sweep' (letters, digits, '-', '_', '.'; no '/')"


def name_problem(name: str) -> str | None:
    """Why `name` cannot be an experiment folder name, or None if it can."""
    if not name:
        return "is empty"
    if name != name.strip():
        return f"{name!r} starts or ends with a space"
    if name in (".", ".."):
        return f"{name!r} is not a folder name"
    if "/" in name or "\\" in name:
        return f"{name!r} contains a path separator"
    if name[0] in ".-":
        # a leading dot hides the folder; a leading dash reads as an option to shell tools
        return f"{name!r} starts with '{name[0]}'"
    bad = next((c for c in name if unicodedata.category(c).startswith("C")), None)
    if bad is not None:
        return f"{name!r} contains the control character {ord(bad):#04x}"
    if len(name.encode("utf-8")) > MAX_NAME_LENGTH:
        return f"is {len(name.encode('utf-8'))} bytes long (at most {MAX_NAME_LENGTH})"
    return None


def check_name(name: str, *, key: str, file: str | None = None, line: int | None = None) -> str:
    """`name` if it is a valid experiment name; else the one-line UsageError naming `key`."""
    problem = name_problem(name)
    if problem:
        raise UsageError(f"experiment name {problem}", file=file, key=key, line=line, fix=_FIX)
    return name

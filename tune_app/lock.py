"""Who is running an experiment: the search process recorded in experiment.json.

A pid alone is not an identity: once the search is gone the OS hands the number to another
process, and a check of "is pid N alive" would then lock the experiment forever. The search
records its pid with the process's start time; the lock is held only while a process with that
pid *and* that start time exists on this host. search --resume and retrain_best both ask here.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

# Start times come from /proc in clock ticks (10 ms); a reused pid starts later than that.
_SAME_START_S = 0.05


def _psutil():
    # Imported on use: importing Ray (which vendors psutil in ray/thirdparty_files and puts that
    # folder on sys.path) must not happen before search.py has set Ray's environment variables.
    try:
        import psutil
    except ImportError:
        import ray  # noqa: F401

        import psutil
    return psutil


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str


def owner_fields() -> dict[str, Any]:
    """What a running search writes into experiment.json to claim it."""
    return {"pid": os.getpid(), "pid_started": _psutil().Process().create_time(), "host": socket.gethostname()}


def _started(pid: int) -> Optional[float]:
    """The process's start time; None if there is no such process, NaN if we may not look."""
    psutil = _psutil()
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return math.nan


def holder(meta: dict[str, Any], meta_file: Path) -> Optional[Holder]:
    """The search that holds this experiment, or None if no live process does.

    A lock on another host cannot be checked from here and is not held; neither is one held by
    this very process (a resume re-reading its own folder).
    """
    if meta.get("status") != "running" or meta.get("host") != socket.gethostname():
        return None
    try:
        pid = int(meta.get("pid", -1))
    except (TypeError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    started = _started(pid)
    if started is None:
        return None
    recorded = meta.get("pid_started")
    if math.isnan(started):
        same = True  # alive and not ours to inspect: better a lock the user can clear than a clash
    elif isinstance(recorded, (int, float)) and not isinstance(recorded, bool):
        same = abs(started - recorded) < _SAME_START_S
    else:
        # Written before start times were recorded: the writer was alive when it last wrote the
        # file, so a process that started after that cannot be it.
        same = started <= meta_file.stat().st_mtime + _SAME_START_S
    return Holder(pid, str(meta["host"])) if same else None

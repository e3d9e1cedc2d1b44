"""Driver-side Tune callbacks: the files of each trial folder, TensorBoard, the disk guard,
and the scheduler's state across --resume."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional

from ray.tune import Callback
from ray.tune.logger import LoggerCallback

from tune_app.checkpoint import CHECKPOINT_FILE
from tune_app.experiment import ENDED_FILE, RESULT_FILE, best_value, read_history
from tune_app.fileio import DISK_RESERVE, DiskFull, free_bytes, write_atomic, write_error, write_json_atomic
from tune_app.hparams import shown, unwrap
from tune_app.tb import TrialWriter
from tune_app.tuner.schedulers import SCHEDULERS


class TensorBoardCallback(LoggerCallback):
    """Writes each trial's scalars and HParams session into the trial's own folder.

    Runs in the driver, so it sees trials ASHA stops as well as the ones still running.
    stage: "race" marks the runs of the race after the search (hparam `stage`).
    """

    def __init__(self, metric: str = "val_accuracy", mode: str = "max", stage: Optional[str] = None) -> None:
        self._writers: dict[str, TrialWriter] = {}
        self.metric, self.mode, self.stage = metric, mode, stage

    def log_trial_start(self, trial) -> None:
        if trial.trial_id in self._writers:
            return
        trial.init_local_path()
        hparams = shown(unwrap(trial.config) or {})
        hparams["trial"] = Path(trial.local_path).name  # the folder's name: trial_00003, race_00001
        if self.stage:
            hparams["stage"] = self.stage
        # A resumed trial keeps its best-so-far from the epochs before the interruption.
        best = best_value(read_history(Path(trial.local_path) / "result.json"), self.metric, self.mode)
        self._writers[trial.trial_id] = TrialWriter(os.path.join(trial.local_path, "tb"), hparams, best,
                                                    metric=self.metric, mode=self.mode)

    def log_trial_restore(self, trial) -> None:
        self.log_trial_start(trial)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        if "epoch" in result:
            if trial.trial_id not in self._writers:
                self.log_trial_start(trial)
            self._writers[trial.trial_id].epoch(result)

    def log_trial_end(self, trial, failed: bool = False) -> None:
        writer = self._writers.pop(trial.trial_id, None)
        if writer is not None:
            writer.close()


class DiskSpaceGuard(Callback):
    """Stops the search, as one Ctrl-C would, before the results' disk is full.

    On a full disk every writer fails at once - Ray's experiment state, checkpoints, our own
    files - leaving tracebacks and 0-byte files, and the final "interrupted" mark itself cannot
    be written. Stopping while `reserve` bytes are still free leaves room to save the
    experiment state, so it can be resumed once space is freed. The other callbacks `trip` it
    when a write of theirs fails with ENOSPC anyway (another program filled the disk at once).
    """

    CHECK_EVERY_S = 1.0

    def __init__(self, folder: str | os.PathLike, stop: Callable[[], None]) -> None:
        self.folder, self._stop = str(folder), stop
        self.tripped: Optional[str] = None
        self._checked = 0.0
        self._largest_checkpoint = 0

    def reserve(self) -> int:
        # A trial may be persisting a checkpoint while the state is saved: keep room for a few.
        return max(DISK_RESERVE, 3 * self._largest_checkpoint)

    def check(self) -> None:
        free = free_bytes(self.folder)
        if free is not None and free < self.reserve():
            self.trip(f"{free / 2**20:.1f} MB free, under the {self.reserve() / 2**20:.0f} MB reserve")

    def trip(self, why: str) -> None:
        if self.tripped is None:
            self.tripped = why
            self._stop()

    def on_step_begin(self, iteration, trials, **info) -> None:
        now = time.monotonic()
        if now - self._checked >= self.CHECK_EVERY_S:
            self._checked = now
            self.check()

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
        path = Path(checkpoint.path) / CHECKPOINT_FILE
        with contextlib.suppress(OSError):
            self._largest_checkpoint = max(self._largest_checkpoint, path.stat().st_size)
        self.check()


@contextlib.contextmanager
def _guarded(guard: Optional[DiskSpaceGuard]):
    """A driver-side write that hits a full disk stops the search instead of crashing Tune."""
    try:
        yield
    except DiskFull as err:
        if guard is None:
            raise
        guard.trip(err.message)


class ResultFileCallback(LoggerCallback):
    """Each trial's params.json and result.json (one JSON line per epoch) and progress.csv.

    In place of Ray's JsonLoggerCallback and CSVLoggerCallback: theirs append blindly, so an
    epoch re-run after a resume (its checkpoint was not saved before the interruption) appears
    twice, and they also write params.pkl, a pickle nobody needs. Here a re-reported epoch
    replaces the rows from that epoch on; appends stay appends otherwise.
    """

    def __init__(self, guard: Optional[DiskSpaceGuard] = None) -> None:
        self.guard = guard
        self._last_epoch: dict[str, int] = {}
        # progress.csv's header per trial, read once rather than at every epoch's append.
        self._columns: dict[str, Optional[list[str]]] = {}

    def log_trial_start(self, trial) -> None:
        trial.init_local_path()
        # The driver writes into its staging folder, which Ray uploads now and then. After a
        # --resume (a new session) that copy is missing: fetch the uploaded rows first. A
        # restart within the run (a crash retried, PBT pausing or cloning a trial) keeps the
        # local file, the newest one: the uploaded copy may be rows behind.
        if not (Path(trial.local_path) / RESULT_FILE).is_file():
            self._restore_from_remote(RESULT_FILE, trial)
        with _guarded(self.guard):
            write_json_atomic(os.path.join(trial.local_path, "params.json"), trial.config, indent=2)
            # Created now, empty: Ray's end-of-run analysis warns about trials without one.
            _append(Path(trial.local_path) / RESULT_FILE, "")
        rows = read_history(Path(trial.local_path) / RESULT_FILE)
        self._last_epoch[trial.trial_id] = int(rows[-1]["epoch"]) if rows else 0
        self._columns[trial.trial_id] = None

    def log_trial_restore(self, trial) -> None:
        self.log_trial_start(trial)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        if "epoch" not in result:
            return
        if trial.trial_id not in self._last_epoch:
            self.log_trial_start(trial)
        folder = Path(trial.local_path)
        epoch = int(result["epoch"])
        row = json.dumps(result, default=_json_fallback)
        with _guarded(self.guard):
            if epoch <= self._last_epoch[trial.trial_id]:
                kept = [r for r in read_history(folder / RESULT_FILE) if int(r["epoch"]) < epoch]
                lines = "".join(json.dumps(r, default=_json_fallback) + "\n" for r in kept)
                write_atomic(folder / RESULT_FILE, lambda f: f.write(lines + row + "\n"))
                columns = _write_progress_csv(folder / PROGRESS_FILE, [*kept, result], rewrite=True)
            else:
                _append(folder / RESULT_FILE, row + "\n")
                columns = _write_progress_csv(folder / PROGRESS_FILE, [result], rewrite=False,
                                              columns=self._columns[trial.trial_id])
            self._columns[trial.trial_id] = columns
        self._last_epoch[trial.trial_id] = epoch


PROGRESS_FILE = "progress.csv"


def _json_fallback(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else repr(value)


def _append(path: Path, text: str) -> None:
    # A crash mid-append leaves at most a partial last line, which read_history skips.
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
    except OSError as err:
        raise write_error(err, path) from None


def _write_progress_csv(path: Path, rows: list[dict], rewrite: bool,
                        columns: Optional[list[str]] = None) -> list[str]:
    """progress.csv for spreadsheet users: nested keys flattened with "/", as Ray names them.

    Appends `rows` (rewrite: replaces the file with them) under the header `columns`, read from
    the file if not given; returns the header, for the next append."""
    import csv
    import io

    from ray.tune.utils import flatten_dict

    flat = [flatten_dict(dict(r), delimiter="/") for r in rows]
    new_file = rewrite or (columns is None and not path.is_file())
    if new_file:
        columns = list(flat[0])
    elif columns is None:
        columns = _csv_header(path)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    if new_file:
        writer.writeheader()
    writer.writerows(flat)
    if rewrite:
        write_atomic(path, lambda f: f.write(buffer.getvalue()))
    else:
        _append(path, buffer.getvalue())
    return columns


def _csv_header(path: Path) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


class TrialStatusCallback(Callback):
    """Marks each trial that really ended with `ended.json` ("TERMINATED" or "ERROR").

    Trials without it were cut off by an interruption. Ray's own end-of-run statuses cannot tell:
    an interrupted run marks every trial TERMINATED, and a crashed-then-recovered trial keeps its
    error.txt. The mark lives in the trial's folder because Tune re-uploads a stale copy of the
    experiment folder's top level after a restore.
    """

    def __init__(self, guard: Optional[DiskSpaceGuard] = None) -> None:
        self.guard = guard

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._mark(trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._mark(trial, "ERROR")

    def _mark(self, trial, status: str) -> None:
        trial.init_local_path()
        with _guarded(self.guard):
            write_json_atomic(os.path.join(trial.local_path, ENDED_FILE), {"status": status})


class SchedulerStateCallback(Callback):
    """Carries the scheduler's state (ASHA's rungs) across `--resume`.

    Tune snapshots the searcher and the callbacks' state with the experiment, but not the
    scheduler's; without this a resumed search would judge its trials against empty rungs.
    The callback and the scheduler are pickled together in the tuner state, so after a
    restore `self.scheduler` is the scheduler Tune uses. The state is plain data (numbers and
    trial ids) that the scheduler's entry (tuner/schedulers.py) writes and reads, never a pickle
    of Ray's objects: restoring it runs no code of the file.
    """

    def __init__(self, scheduler, name: str = "asha") -> None:
        self.scheduler, self.name = scheduler, name

    def get_state(self) -> dict | None:
        if self.scheduler is None:
            return None
        state = SCHEDULERS[self.name].state(self.scheduler)
        return None if state is None else {self.name: state}

    def set_state(self, state: dict) -> None:
        if self.scheduler is not None and state and self.name in state:
            SCHEDULERS[self.name].restore(self.scheduler, state[self.name])

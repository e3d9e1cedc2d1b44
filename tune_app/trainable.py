"""The thin Ray Tune adapter around `training.train`, and the driver-side TensorBoard logger.

A trial's config is `{"hp": {"train.lr": ..., "model.groups": ...}}`: only the searched
values travel through Ray; the rest of the TrialConfig is bound once with `with_parameters`,
as is the prepared dataset (Ray's object store shares its pages between trials on a node).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import ray
import torch
from ray import tune
from ray.tune import Callback
from ray.tune.logger import LoggerCallback

from tune_app.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from tune_app.config import TrialConfig
from tune_app.data import DataBundle
from tune_app.experiment import ENDED_FILE, RESULT_FILE, best_value, read_history
from tune_app.judge import Judge
from tune_app.metric_names import judged_column
from tune_app.fileio import DISK_RESERVE, DiskFull, free_bytes, write_atomic, write_error, write_json_atomic
from tune_app.integrity import on_local_disk
from tune_app.tb import TrialWriter
from tune_app.training import limit_threads, train

HP_KEY = "hp"


def quiet_exit_hook(unraisable, fallback=sys.__unraisablehook__) -> None:
    """`sys.unraisablehook` for trial workers: drop a SystemExit raised where Python cannot raise.

    Ray stops idle workers at the end of a search with SIGTERM, and its handler raises
    SystemExit in whatever the main thread runs; inside a garbage-collector callback Python
    ignores it anyway, but prints "Exception ignored ... SystemExit: 1" with a traceback under a
    search that succeeded. Anything else still goes to the default hook.
    """
    if isinstance(unraisable.exc_value, SystemExit):
        return
    fallback(unraisable)


def run_trial(config: dict[str, Any], *, base: dict[str, Any], data: DataBundle, cpus: float,
              results_dir: Optional[str] = None, judge: Optional[dict[str, Any]] = None) -> None:
    """results_dir: the experiment folder when it is on a local (or mounted) disk, whose free
    space decides whether a checkpoint is written; None for object stores.
    judge: {"metric", "mode", "kind", "ema"}: adds the judged_<metric> column ASHA compares."""
    sys.unraisablehook = quiet_exit_hook
    cfg = TrialConfig.from_dict(base).with_overrides(config[HP_KEY])
    limit_threads(cfg.train, cpus)  # several trials share the node's cores
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume = load_checkpoint(directory)
    judge = judge or {"metric": "val_accuracy", "mode": "max", "kind": "last", "ema": 0.5}
    judged = Judge(judge["kind"], judge["mode"], judge["ema"])
    judged.restore((resume or {}).get("judge"))

    node = ray.get_runtime_context().get_node_id()
    # Ray logs a line per persisted checkpoint, i.e. per epoch per trial: noise on the console.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)

    def on_epoch_end(metrics: dict[str, Any], state) -> None:
        # node_id: on a cluster, which machine ran the epoch (node_ip alone can repeat).
        metrics = {**metrics, "node_id": node,
                   judged_column(judge["metric"]): judged.update(metrics.get(judge["metric"]))}
        with tempfile.TemporaryDirectory() as directory:
            size = save_checkpoint(directory, {**state(), "judge": judged.state()}, staging=True).stat().st_size
            free = free_bytes(results_dir) if results_dir else None
            if free is not None and free < size + DISK_RESERVE // 2:
                # The driver is stopping the search for lack of space (DiskSpaceGuard); a copy
                # that cannot fit would fail half-written. The epoch still counts for the
                # scheduler and is simply re-run from the previous checkpoint on --resume.
                tune.report({**metrics, "checkpoint_skipped": "disk nearly full"})
                return
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    with explain_out_of_memory(tune.get_context().get_trial_name(), cfg):
        train(cfg, on_epoch_end, data=data, resume=resume)


class TrialOutOfMemory(RuntimeError):
    pass


@contextlib.contextmanager
def explain_out_of_memory(trial: str, cfg: TrialConfig):
    """Turn CUDA's out-of-memory error into one that names the trial and the two fixes."""
    try:
        yield
    except torch.OutOfMemoryError:
        raise TrialOutOfMemory(
            f"{trial} ran out of GPU memory (batch_size {cfg.train.batch_size}, model "
            f"{cfg.model.stage_channels} x {cfg.model.stage_blocks}); fix: lower train.batch_size, or raise "
            "resources.gpus_per_trial so fewer trials share a GPU") from None


def make_trainable(base: TrialConfig, data: DataBundle, cpus: float, gpus: float,
                   results_dir: Optional[str] = None, judge: Optional[dict[str, Any]] = None):
    fn = tune.with_parameters(run_trial, base=base.to_dict(), data=data, cpus=cpus, results_dir=results_dir,
                              judge=judge)
    return tune.with_resources(fn, {"cpu": cpus, "gpu": gpus})


def trial_dirname(trial) -> str:
    # "trial_00007": short, sortable, and stable when a search is resumed.
    return "trial_" + trial.trial_id.rsplit("_", 1)[-1]


def trial_folder(trial) -> Path:
    """Where the driver writes a trial's own files (params.json, result.json, progress.csv,
    tb/, ended.json).

    Results on a local (or mounted) disk: the trial's folder in the experiment itself. Tune's
    place for them, its staging folder, is copied into the experiment whole at each snapshot of
    the experiment state - every file of every trial, each time, and with num_to_keep the
    snapshot is forced about once an epoch: 20 ms of the driver's time per snapshot for the
    quickstart's 12 trials, growing with the trials. Written in place, an epoch's row also
    reaches the results at once. Results in an object store: the staging folder, which Tune
    uploads.
    """
    if not on_local_disk(trial.storage.storage_filesystem):
        trial.init_local_path()
        return Path(trial.local_path)
    folder = Path(trial.path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(err, folder / RESULT_FILE) from None
    return folder


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
        folder = trial_folder(trial)
        hparams = {k.split(".", 1)[-1]: v for k, v in trial.config.get(HP_KEY, {}).items()}
        hparams["trial"] = folder.name  # trial_00003, race_00001
        if self.stage:
            hparams["stage"] = self.stage
        # A resumed trial keeps its best-so-far from the epochs before the interruption.
        best = best_value(read_history(folder / RESULT_FILE), self.metric, self.mode)
        self._writers[trial.trial_id] = TrialWriter(str(folder / "tb"), hparams, best,
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
        self._folders: dict[str, Path] = {}
        # progress.csv's header per trial, read once rather than at every epoch's append.
        self._columns: dict[str, Optional[list[str]]] = {}

    def log_trial_start(self, trial) -> None:
        with _guarded(self.guard):
            folder = trial_folder(trial)
            if not on_local_disk(trial.storage.storage_filesystem):
                # Staged for an object store: after a resume the staging copy starts empty.
                self._restore_from_remote(RESULT_FILE, trial)
            write_json_atomic(folder / "params.json", trial.config, indent=2)
            # Created now, empty: Ray's end-of-run analysis warns about trials without one.
            _append(folder / RESULT_FILE, "")
        rows = read_history(folder / RESULT_FILE)
        self._folders[trial.trial_id] = folder
        self._last_epoch[trial.trial_id] = int(rows[-1]["epoch"]) if rows else 0
        self._columns[trial.trial_id] = None

    def log_trial_restore(self, trial) -> None:
        self.log_trial_start(trial)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        if "epoch" not in result:
            return
        if trial.trial_id not in self._last_epoch:
            self.log_trial_start(trial)
        folder = self._folders[trial.trial_id]
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
        with _guarded(self.guard):
            write_json_atomic(trial_folder(trial) / ENDED_FILE, {"status": status})


class SchedulerStateCallback(Callback):
    """Carries the scheduler's state (ASHA's rungs) across `--resume`.

    Tune snapshots the searcher and the callbacks' state with the experiment, but not the
    scheduler's; without this a resumed search would judge its trials against empty rungs.
    The callback and the scheduler are pickled together in the tuner state, so after a
    restore `self.scheduler` is the scheduler Tune uses. The state is plain data (numbers and
    trial ids), never a pickle of Ray's objects: restoring it runs no code of the file.
    """

    def __init__(self, scheduler) -> None:
        self.scheduler = scheduler

    def get_state(self) -> dict | None:
        if self.scheduler is None:
            return None
        return {"asha": asha_state(self.scheduler)}

    def set_state(self, state: dict) -> None:
        if self.scheduler is not None and state and "asha" in state:
            set_asha_state(self.scheduler, state["asha"])


def asha_state(scheduler) -> dict[str, Any]:
    """What AsyncHyperBandScheduler learned so far (ray==2.60 attribute names; pinned)."""
    return {
        "brackets": [[[milestone, {trial: float(value) for trial, value in recorded.items()}]
                      for milestone, recorded in bracket._rungs] for bracket in scheduler._brackets],
        "trial_bracket": {trial: scheduler._brackets.index(bracket)
                          for trial, bracket in scheduler._trial_info.items()},
        "counter": int(scheduler._counter),
        "num_stopped": int(scheduler._num_stopped),
    }


def set_asha_state(scheduler, state: dict[str, Any]) -> None:
    brackets = state["brackets"]
    if [[m for m, _ in rungs] for rungs in brackets] != [[m for m, _ in b._rungs] for b in scheduler._brackets]:
        raise ValueError("saved ASHA rungs do not match the scheduler's: was the spec's scheduler changed?")
    for bracket, rungs in zip(scheduler._brackets, brackets):
        bracket._rungs = [(milestone, {str(t): float(v) for t, v in recorded.items()})
                          for (milestone, _), (_, recorded) in zip(bracket._rungs, rungs)]
    scheduler._trial_info = {str(t): scheduler._brackets[int(i)] for t, i in state["trial_bracket"].items()}
    scheduler._counter = int(state["counter"])
    scheduler._num_stopped = int(state["num_stopped"])

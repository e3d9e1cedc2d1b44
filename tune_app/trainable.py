"""The thin Ray Tune adapter around `training.train`, and the driver-side TensorBoard logger.

A trial's config is `{"hp": {"train.lr": ..., "model.groups": ...}}`: only the searched
values travel through Ray; the rest of the TrialConfig is bound once with `with_parameters`,
as is the prepared dataset (Ray's object store shares its pages between trials on a node).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune
from ray.tune import Callback
from ray.tune.logger import LoggerCallback

from tune_app.checkpoint import load_checkpoint, save_checkpoint
from tune_app.config import TrialConfig
from tune_app.data import DataBundle
from tune_app.experiment import ENDED_FILE, best_value, read_history, write_json_atomic
from tune_app.tb import TrialWriter
from tune_app.training import train

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


def run_trial(config: dict[str, Any], *, base: dict[str, Any], data: DataBundle, cpus: float) -> None:
    sys.unraisablehook = quiet_exit_hook
    cfg = TrialConfig.from_dict(base).with_overrides(config[HP_KEY])
    # Several trials share the node's cores: more torch threads than our share only thrashes.
    torch.set_num_threads(cfg.train.threads or max(1, int(cpus)))
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume = load_checkpoint(directory)

    node = ray.get_runtime_context().get_node_id()
    # Ray logs a line per persisted checkpoint, i.e. per epoch per trial: noise on the console.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)

    def on_epoch_end(metrics: dict[str, Any], state) -> None:
        with tempfile.TemporaryDirectory() as directory:
            save_checkpoint(directory, state())
            # node_id: on a cluster, which machine ran the epoch (node_ip alone can repeat).
            tune.report({**metrics, "node_id": node}, checkpoint=tune.Checkpoint.from_directory(directory))

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


def make_trainable(base: TrialConfig, data: DataBundle, cpus: float, gpus: float):
    fn = tune.with_parameters(run_trial, base=base.to_dict(), data=data, cpus=cpus)
    return tune.with_resources(fn, {"cpu": cpus, "gpu": gpus})


def trial_dirname(trial) -> str:
    # "trial_00007": short, sortable, and stable when a search is resumed.
    return "trial_" + trial.trial_id.rsplit("_", 1)[-1]


class TensorBoardCallback(LoggerCallback):
    """Writes each trial's scalars and HParams session into the trial's own folder.

    Runs in the driver, so it sees trials ASHA stops as well as the ones still running.
    """

    def __init__(self) -> None:
        self._writers: dict[str, TrialWriter] = {}

    def log_trial_start(self, trial) -> None:
        if trial.trial_id in self._writers:
            return
        trial.init_local_path()
        hparams = {k.split(".", 1)[-1]: v for k, v in trial.config.get(HP_KEY, {}).items()}
        hparams["trial"] = trial_dirname(trial)
        # A resumed trial keeps its best-so-far from the epochs before the interruption.
        best = best_value(read_history(Path(trial.local_path) / "result.json"), "val_accuracy", "max")
        self._writers[trial.trial_id] = TrialWriter(os.path.join(trial.local_path, "tb"), hparams,
                                                    -math.inf if best is None else best)

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


class TrialStatusCallback(Callback):
    """Marks each trial that really ended with `ended.json` ("TERMINATED" or "ERROR").

    Trials without it were cut off by an interruption. Ray's own end-of-run statuses cannot tell:
    an interrupted run marks every trial TERMINATED, and a crashed-then-recovered trial keeps its
    error.txt. The mark lives in the trial's folder because Tune re-uploads a stale copy of the
    experiment folder's top level after a restore.
    """

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._mark(trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._mark(trial, "ERROR")

    @staticmethod
    def _mark(trial, status: str) -> None:
        trial.init_local_path()
        write_json_atomic(os.path.join(trial.local_path, ENDED_FILE), {"status": status})


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

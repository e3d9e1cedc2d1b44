"""The thin Ray Tune adapter around `training.train`: what runs inside a trial's worker.

Only the searched values travel through Ray (`tune_app.hparams`); the rest of the TrialConfig
is bound once with `with_parameters`, as is the prepared dataset (Ray's object store shares
its pages between trials on a node).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Any, Optional

import ray
import torch
from ray import tune

from tune_app.checkpoint import load_checkpoint, save_checkpoint
from tune_app.config import TrialConfig
from tune_app.costs import measure
from tune_app.data import DataBundle
from tune_app.errors import UsageError
from tune_app.fileio import DISK_RESERVE, free_bytes
from tune_app.hparams import decode, unwrap
from tune_app.judge import Judge
from tune_app.metric_names import judged_column
from tune_app.training import limit_threads, pick_device, train


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
              results_dir: Optional[str] = None, judge: Optional[dict[str, Any]] = None,
              costs: tuple[str, ...] = ()) -> None:
    """results_dir: the experiment folder when it is on a local (or mounted) disk, whose free
    space decides whether a checkpoint is written; None for object stores.
    judge: {"metric", "mode", "kind", "ema"}: adds the judged_<metric> column ASHA compares.
    costs: the model's costs to report with every epoch (search.objectives' cost; tune_app.costs)."""
    sys.unraisablehook = quiet_exit_hook
    # Before this worker takes over another trial (reuse_actors), Ray waits this long for the
    # paused trial's thread to unwind, then fails the new trial ("reset_config() ... return
    # True"). PBT and the median rule pause trials; 2 s, Ray's default, was too short on a
    # loaded machine. Read by the worker at each reuse, so set in the worker.
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "60")
    cfg = TrialConfig.from_dict(base).with_overrides(decode(unwrap(config)))
    limit_threads(cfg.train, cpus)  # several trials share the node's cores
    # Measured here, in the trial: only it knows its device (and latency is timed under its thread
    # share). Once per architecture in this worker process.
    measured = measure(cfg.model, data.num_classes, data.image_shape, pick_device(cfg.train), costs,
                       cfg.train.amp) if costs else {}
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume = load_checkpoint(directory)
    name = tune.get_context().get_trial_name()
    # PBT's exploit restarts a trial from another trial's checkpoint: its next epoch says so
    # (plain data in result.json, the report's lineage). A trial's own checkpoint says nothing.
    lineage = cloned_from(resume, name)
    judge = judge or {"metric": "val_accuracy", "mode": "max", "kind": "last", "ema": 0.5}
    judged = Judge(judge["kind"], judge["mode"], judge["ema"])
    judged.restore((resume or {}).get("judge"))

    node = ray.get_runtime_context().get_node_id()
    # Ray logs a line per persisted checkpoint, i.e. per epoch per trial: noise on the console.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)

    staged_size = 0

    def on_epoch_end(metrics: dict[str, Any], state) -> None:
        nonlocal lineage, staged_size
        # node_id: on a cluster, which machine ran the epoch (node_ip alone can repeat).
        metrics = {**metrics, **measured, **lineage, "node_id": node,
                   judged_column(judge["metric"]): judged.update(metrics.get(judge["metric"]))}
        lineage = {}
        # "trial": which trial wrote it, so that one cloned from it can tell.
        checkpoint = {**state(), "judge": judged.state(), "trial": name}
        with staged_checkpoint(checkpoint, staged_size) as (directory, size):
            staged_size = size
            free = free_bytes(results_dir) if results_dir else None
            if free is not None and free < size + DISK_RESERVE // 2:
                # The driver is stopping the search for lack of space (DiskSpaceGuard); a copy
                # that cannot fit would fail half-written. The epoch still counts for the
                # scheduler and is simply re-run from the previous checkpoint on --resume.
                tune.report({**metrics, "checkpoint_skipped": "disk nearly full"})
                return
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    with explain_out_of_memory(name, cfg):
        train(cfg, on_epoch_end, data=data, resume=resume)


# A RAM-backed folder for the staged copy of each checkpoint: Tune copies the staged file into
# the experiment at once and deletes it, so writing it to disk first only cost time (on this
# machine's disk, 20 ms for the quickstart's 2 MB checkpoint against 11 ms in /dev/shm).
SHM = "/dev/shm"
# Left free in SHM: Docker gives containers a 64 MB /dev/shm by default, and other processes
# (PyTorch's DataLoader workers, Ray's object store fallback) use it too.
SHM_MARGIN = 32 * 2**20


@contextlib.contextmanager
def staged_checkpoint(state: dict[str, Any], expected: int):
    """A temporary folder holding `state` as a checkpoint, and its size in bytes.

    Staged in SHM when it is a writable folder with room for 2 checkpoints of the last size
    (`expected`) beside SHM_MARGIN; elsewhere, or if SHM filled up meanwhile, in the default
    temporary folder."""
    roots = [None]
    free = free_bytes(SHM) if os.path.isdir(SHM) and os.access(SHM, os.W_OK) else None
    if free is not None and free > 2 * expected + SHM_MARGIN:
        roots.insert(0, SHM)
    for root in roots:
        with tempfile.TemporaryDirectory(dir=root) as directory:
            try:
                size = save_checkpoint(directory, state, staging=True).stat().st_size
            except UsageError:
                if root is None:
                    raise
                continue  # SHM filled up since it was measured: the disk, as without it
            yield directory, size
            return


def cloned_from(resume: Optional[dict[str, Any]], trial: str) -> dict[str, Any]:
    """The lineage fields of the first epoch after restoring `resume` into `trial`: which trial
    wrote the checkpoint and at which epoch, when it was another one; else nothing."""
    writer = (resume or {}).get("trial")
    if not writer or writer == trial:
        return {}
    return {"cloned_from": writer, "cloned_from_epoch": int(resume["epoch"])}


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
                   results_dir: Optional[str] = None, judge: Optional[dict[str, Any]] = None,
                   costs: tuple[str, ...] = ()):
    fn = tune.with_parameters(run_trial, base=base.to_dict(), data=data, cpus=cpus, results_dir=results_dir,
                              judge=judge, costs=tuple(costs))
    return tune.with_resources(fn, {"cpu": cpus, "gpu": gpus})


def trial_dirname(trial) -> str:
    # "trial_00007": short, sortable, and stable when a search is resumed.
    return "trial_" + trial.trial_id.rsplit("_", 1)[-1]



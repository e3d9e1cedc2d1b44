"""The Tuner of a search, of its resume and of its race: the one place that calls Tune.

The experiment folder, its signing filesystem and the trainable come from search.py; what the
Tuner runs (param space, searcher, scheduler, callbacks, reporter) is assembled here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from ray import tune

from tune_app.hparams import wrap
from tune_app.judge import judge_settings
from tune_app.tuner.callbacks import (DiskSpaceGuard, ResultFileCallback, SchedulerStateCallback,
                                      TensorBoardCallback, TrialStatusCallback)
from tune_app.tuner.reporter import make_reporter
from tune_app.tuner.schedulers import SCHEDULERS
from tune_app.tuner.searchers import SEARCHERS
from tune_app.tuner.space import param_space
from tune_app.tuner.trainable import trial_dirname

if TYPE_CHECKING:
    from tune_app.spec import ExperimentSpec
    from tune_app.warm import WarmStart


def callbacks(spec: "ExperimentSpec", guard: DiskSpaceGuard, stage: Optional[str] = None) -> list:
    """The driver-side callbacks of a search (stage None) or its race (stage "race")."""
    return [guard, ResultFileCallback(guard), TensorBoardCallback(spec.search.metric, spec.search.mode, stage=stage),
            TrialStatusCallback(guard)]


def _run_config(spec: "ExperimentSpec", destination: tuple[str, str, Any], extra: list, reporter,
                stop: Optional[dict] = None) -> tune.RunConfig:
    storage_path, name, fs = destination
    return tune.RunConfig(
        storage_path=storage_path, name=name, storage_filesystem=fs, stop=stop,
        failure_config=tune.FailureConfig(max_failures=spec.search.max_failures),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=None if SCHEDULERS[spec.scheduler.name].keeps_every_checkpoint else spec.output.keep_checkpoints,
            checkpoint_score_attribute=spec.search.metric,
            checkpoint_score_order=spec.search.mode),
        callbacks=extra, progress_reporter=reporter, verbose=1)


def search_tuner(spec: "ExperimentSpec", trainable, destination: tuple[str, str, Any], experiment_dir: Path,
                 guard: DiskSpaceGuard, warm: "Optional[WarmStart]" = None) -> tune.Tuner:
    """destination: (storage_path, name, storage_filesystem) of the folder tune_app claimed.
    warm: the earlier trials the searcher took over (--warm-start)."""
    scheduler = SCHEDULERS[spec.scheduler.name].build(spec)
    searcher = SEARCHERS[spec.search.algorithm]
    return tune.Tuner(
        trainable,
        param_space=param_space(spec, warm.skipped if warm else frozenset()),
        tune_config=tune.TuneConfig(
            # Schedulers (and Optuna) compare the judged column (scheduler.judge); checkpoints
            # and the ranking keep the metric itself.
            metric=judge_settings(spec)["column"], mode=spec.search.mode,
            search_alg=searcher.build(spec, experiment_dir, warm), scheduler=scheduler,
            num_samples=searcher.num_samples(spec),
            # A new trial takes over a finished trial's worker process when their resources
            # match: no torch import and dataset fetch per trial (Ray 2.60 defaults to False).
            reuse_actors=True,
            max_concurrent_trials=spec.search.max_concurrent or None,
            trial_dirname_creator=trial_dirname, trial_name_creator=trial_dirname),
        run_config=_run_config(spec, destination, [*callbacks(spec, guard),
                                                   SchedulerStateCallback(scheduler, spec.scheduler.name)],
                               make_reporter(spec), SCHEDULERS[spec.scheduler.name].stop(spec)),
    )


def restored_tuner(path: str, trainable, fs) -> tune.Tuner:
    """The interrupted search at `path`, with its searcher, callbacks and scheduler state."""
    return tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True, storage_filesystem=fs)


def race_tuner(spec: "ExperimentSpec", trainable, runs: list[dict[str, Any]], names: Callable,
               destination: tuple[str, str, Any], guard: DiskSpaceGuard) -> tune.Tuner:
    """The race's runs (each a trial's searched values): every one trained out, no scheduler."""
    return tune.Tuner(
        trainable,
        param_space=wrap(tune.grid_search(runs)),
        tune_config=tune.TuneConfig(
            metric=spec.search.metric, mode=spec.search.mode, reuse_actors=True,
            max_concurrent_trials=spec.search.max_concurrent or None,
            trial_dirname_creator=names, trial_name_creator=names),
        run_config=_run_config(spec, destination, callbacks(spec, guard, stage="race"), make_reporter(spec)),
    )


def restored_checkpoints(path: str, fs) -> list[tuple[str, str]]:
    """(trial folder, checkpoint path) of each trial in the newest experiment state that has a
    checkpoint: what `Tuner.restore` hands that trial. Call only after verify_experiment."""
    from ray.tune import ExperimentAnalysis

    # It warns about trials that have no results yet (pending ones): none of our business here,
    # and a refusal must stay one line.
    log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        analysis = ExperimentAnalysis(path, storage_filesystem=fs)
    except ValueError:  # no experiment state yet: Tune has nothing to restore a trial from
        return []
    finally:
        log.setLevel(level)
    return [(t.storage.trial_dir_name, t.checkpoint.path.rstrip("/")) for t in analysis.trials
            if t.checkpoint is not None]

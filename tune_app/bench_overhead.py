"""`python -m tune_app.bench --overhead [SPEC]`: what an epoch costs outside training.

Runs the search of SPEC (default: the quickstart) through its command line into a temporary
results folder, the race left out (select.finalists: 0) so that only the search's epochs count,
and reads back each trial's result.json. Per epoch, Ray's `time_this_iter_s` (from one report
to the next, in the worker) holds the training and validation (`epoch_time_s`, timed inside
training.train) plus everything between them: building the checkpoint, reporting it, the
driver's processing of the result and, for a trial's first epoch, the trial's start (and, on a
fresh worker process, that process's first-use costs). The overhead is the difference.
"""

from __future__ import annotations

import copy
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import yaml

from tune_app.errors import UsageError
from tune_app.experiment import Experiment, load_experiment

QUICKSTART = Path(__file__).resolve().parents[1] / "search_spaces" / "quickstart.yaml"
# The summary line search prints: the seconds from building the Tuner to the end of the search.
SUMMARY = re.compile(r"^(\d+) trials, (\d+) epochs trained in ([0-9.]+) s", re.M)


def overhead_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's search alone: the race after it trains through the same path, but its epochs
    would not be the search's."""
    out = copy.deepcopy(spec)
    out["select"] = {"finalists": 0}
    return out


def figures(experiment: Experiment, search_s: float, ray_cpus: float) -> dict[str, Any]:
    """The overhead figures of a finished search.

    search_s: its wall time (search's summary line); ray_cpus: CPUs of the Ray instance it ran
    on. Core-seconds spent training = sum of epoch_time_s x the CPUs a trial reserves.
    """
    cpus_per_trial = float(experiment.meta["resources"]["cpus_per_trial"])
    trials = [trial for trial in experiment.trials if trial.history]
    if not trials:
        raise UsageError("the search recorded no epochs", file=str(experiment.path),
                         fix="see the search's log")
    # Tune starts trials in the order of their ids and a worker runs one trial at a time, so
    # the first trial seen on a worker process started that process.
    first_on_worker: dict[Any, str] = {}
    for trial in sorted(trials, key=lambda t: t.name):
        first_on_worker.setdefault(trial.history[0].get("pid"), trial.name)
    kinds: dict[str, list[float]] = {"worker_start": [], "trial_start": [], "later": []}
    iteration = training = 0.0
    for trial in trials:
        for index, row in enumerate(trial.history):
            iteration += float(row["time_this_iter_s"])
            training += float(row["epoch_time_s"])
            kind = "later" if index else ("worker_start" if first_on_worker[row.get("pid")] == trial.name
                                          else "trial_start")
            kinds[kind].append(float(row["time_this_iter_s"]) - float(row["epoch_time_s"]))
    epochs = sum(len(values) for values in kinds.values())

    def mean_ms(values: list[float]) -> Optional[float]:
        return 1000 * statistics.fmean(values) if values else None

    return {
        "trials": len(trials),
        "epochs": epochs,
        "worker_processes": len(first_on_worker),
        "iteration_s": iteration,
        "training_s": training,
        "overhead_ms_per_epoch": 1000 * (iteration - training) / epochs,
        # The first epoch of a worker process's first trial carries the process's first-use
        # costs (torch's lazy imports); a later trial's first epoch, the switch between trials.
        "overhead_ms_worker_start": mean_ms(kinds["worker_start"]),
        "overhead_ms_trial_start": mean_ms(kinds["trial_start"]),
        "overhead_ms_later_epochs": mean_ms(kinds["later"]),
        "overhead_ms_later_epochs_median": 1000 * statistics.median(kinds["later"]) if kinds["later"] else None,
        "overhead_ms_per_epoch_after_worker_start": 1000 * statistics.fmean(kinds["trial_start"] + kinds["later"])
        if kinds["trial_start"] or kinds["later"] else None,
        "search_s": search_s,
        "ray_cpus": ray_cpus,
        "training_share_of_core_s": training * cpus_per_trial / (search_s * ray_cpus),
    }


def run_search(spec: dict[str, Any], storage: Path, name: str, ray_cpus: float) -> dict[str, Any]:
    """One search through its command line; its figures, wall times and the machine's load."""
    path = storage / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    log = storage / f"{name}.log"
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run([sys.executable, "-m", "tune_app.search", "--space", str(path), "--storage",
                               str(storage), "--name", name, "--num-cpus", f"{ray_cpus:g}"],
                              stdout=out, stderr=subprocess.STDOUT)
    command_s = time.perf_counter() - began
    text = log.read_text(errors="replace")
    summary = SUMMARY.search(text)
    if done.returncode != 0 or summary is None:
        tail = "\n".join(text.splitlines()[-15:])
        raise RuntimeError(f"the search failed (exit {done.returncode}):\n{tail}")
    result = figures(load_experiment(storage / name), float(summary.group(3)), ray_cpus)
    return {**result, "command_s": command_s, "load_1m_before": load_before, "load_1m_after": os.getloadavg()[0]}


MEDIAN_KEYS = ("epochs", "iteration_s", "training_s", "overhead_ms_per_epoch", "overhead_ms_worker_start",
               "overhead_ms_trial_start", "overhead_ms_later_epochs", "overhead_ms_later_epochs_median",
               "overhead_ms_per_epoch_after_worker_start", "search_s", "command_s", "training_share_of_core_s")


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the runs (the machine is shared: one run can be unlucky)."""
    return {key: statistics.median(run[key] for run in runs) for key in MEDIAN_KEYS
            if all(run.get(key) is not None for run in runs)}


def measure_overhead(spec_path: str, repeats: int, storage: Path, ray_cpus: float) -> dict[str, Any]:
    if repeats < 1:
        raise UsageError(f"must be >= 1, got {repeats}", key="--repeats", fix="e.g. --repeats 3")
    try:
        spec = yaml.safe_load(Path(spec_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise UsageError(f"cannot read the spec ({err})", file=spec_path, fix="pass a spec that search accepts") from None
    runs = [run_search(overhead_spec(spec), storage, f"overhead-{repeat + 1}", ray_cpus) for repeat in range(repeats)]
    return {"spec": spec_path, "repeats": repeats, "median": summarise(runs), "runs": runs}


def table(measured: dict[str, Any]) -> str:
    columns = [("epochs", "epochs", "{:.0f}"), ("iteration_s", "iter s", "{:.1f}"),
               ("training_s", "train s", "{:.1f}"), ("overhead_ms_per_epoch", "ovh ms/ep", "{:.1f}"),
               ("overhead_ms_worker_start", "worker ms", "{:.0f}"),
               ("overhead_ms_trial_start", "trial ms", "{:.1f}"),
               ("overhead_ms_later_epochs", "later ms", "{:.1f}"),
               ("overhead_ms_per_epoch_after_worker_start", "w/o worker", "{:.1f}"),
               ("search_s", "search s", "{:.1f}"), ("command_s", "command s", "{:.1f}"),
               ("training_share_of_core_s", "train share", "{:.0%}")]
    lines = [f"epoch overhead on {measured['spec']} (search only, no race), {measured['repeats']} run(s)",
             f"{'run':<8}" + "".join(f"{label:>12}" for _, label, _ in columns) + f"{'load':>12}"]

    def row(label: str, values: dict[str, Any], load: str) -> str:
        cells = "".join(f"{fmt.format(values[key]) if values.get(key) is not None else '-':>12}"
                        for key, _, fmt in columns)
        return f"{label:<8}{cells}{load:>12}"

    for number, run in enumerate(measured["runs"], 1):
        lines.append(row(str(number), run, f"{run['load_1m_before']:.1f}->{run['load_1m_after']:.1f}"))
    lines.append(row("median", measured["median"], ""))
    lines.append("ovh ms/ep: (iteration - training) / epochs, split into a worker process's first epoch "
                 "(worker), a later trial's first epoch (trial) and the other epochs (later); w/o worker: "
                 "the mean over all but the workers' first epochs; train share: training core-s / "
                 "(search s x Ray CPUs)")
    return "\n".join(lines)

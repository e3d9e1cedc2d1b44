"""The race after the search: the best few configurations trained again over several seeds.

A search ranks each configuration on one run (or a few), partly by luck, and ASHA cut most
runs short. The race trains the top `select.finalists` configurations (distinct, seeds
collapsed) for `select.epochs` with `select.seeds` seeds each, reusing any search trial that
already is such a run, and `tune_app.selection` decides. It is a second Tune experiment in
`<experiment>/race/` (trial folders race_00000, ...), so it runs, logs and resumes as the search
does; `race/plan.json` records the planned runs before anything trains, and experiment.json's
"stage" says the race is on, so `--resume` after a kill trains the runs the race still lacks.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from tune_app.experiment import (EXPERIMENT_FILE, RESULT_FILE, Experiment, best_value, format_table,
                                 read_history, read_meta, read_trial_params, trial_dir)
from tune_app.fileio import read_json, write_json_atomic
from tune_app.selection import Decision, Finalist, decide, mean_interval
from tune_app.hparams import decode, point_key, unwrap
from tune_app.spec import SEED_KEY

if TYPE_CHECKING:
    from tune_app.data import DataBundle
    from tune_app.spec import ExperimentSpec
    from tune_app.storage import Location

RACE_DIR = "race"
PLAN_FILE = "plan.json"
RUN_PREFIX = "race_"


def race_epochs(spec: "ExperimentSpec") -> int:
    return spec.select.epochs or spec.base.train.epochs


def configurations_in(spec: "ExperimentSpec") -> int:
    return spec.grid.size() if spec.search.algorithm == "grid" else spec.search.num_samples


def budget_line(spec: "ExperimentSpec") -> str:
    """The race's share of the epoch budget, for --dry-run."""
    finalists = min(spec.select.finalists, configurations_in(spec))
    if spec.search.objectives:  # spec_objectives refuses a race there
        return "race: none (two objectives): retrain_best picks from the Pareto front (--pick smallest-within 0.01)"
    if spec.scheduler.name == "pbt":
        return "race: none (pbt: a trial's values change mid-run); retrain_best takes the best trial's values " \
               "at its best epoch"
    if finalists < 2:
        return "race: none (select.finalists < 2 configurations): retrain_best takes the search's best"
    epochs = race_epochs(spec)
    reuse = " (a search trial that already is one of these runs is reused)" \
        if epochs == spec.base.train.epochs else ""
    return (f"race: top {finalists} configurations x {spec.select.seeds} seeds x {epochs} epochs = at most "
            f"{finalists * spec.select.seeds * epochs} epochs{reuse}")


def label(hparams: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in hparams.items()) or "base configuration"


# --------------------------------------------------------------------------- plan


def plan(experiment: Experiment, spec: "ExperimentSpec", num_classes: int, channels: int) -> Optional[dict[str, Any]]:
    """The race's runs, or None when fewer than two configurations qualify."""
    from tune_app.models import build_model, count_parameters

    metric, mode = experiment.metric, experiment.mode
    ranked = [c for c in experiment.configurations() if c.bests(metric, mode)]
    finalists = [(rank, c) for rank, c in enumerate(ranked, 1) if not c.diverged][:spec.select.finalists]
    if len(finalists) < 2:
        return None
    epochs = race_epochs(spec)
    seeds = [spec.base.train.seed + i for i in range(spec.select.seeds)]
    entries = []
    for rank, config in finalists:
        cfg = experiment.base_config().with_overrides(decode(config.hparams))
        runs = []
        for seed in seeds:
            hp = {**config.hparams, SEED_KEY: seed}
            if cfg.train.epochs != epochs:
                hp["train.epochs"] = epochs
            # Same configuration, seed and epochs (and an LR schedule over those epochs): the
            # search already trained this exact run.
            reuse = next((t.name for t in config.trials
                          if t.hparams.get(SEED_KEY, spec.base.train.seed) == seed and cfg.train.epochs == epochs
                          and t.epochs_run >= epochs and not t.diverged), None)
            runs.append({"seed": seed, "hp": hp, "reuse": reuse})
        entries.append({"hparams": config.hparams, "label": label(config.hparams), "search_rank": rank,
                        "parameters": count_parameters(build_model(cfg.model, num_classes, channels)),
                        "runs": runs})
    return {"metric": metric, "mode": mode, "epochs": epochs, "seeds": seeds, "finalists": entries}


# --------------------------------------------------------------------------- results


@dataclass
class RaceResult:
    plan: dict[str, Any]
    histories: dict[str, list[dict[str, Any]]]  # run key -> history
    run_names: dict[str, str]  # run key -> folder name (race_00001, or the reused trial_00003)

    def finalists(self) -> list[Finalist]:
        metric, mode, epochs = self.plan["metric"], self.plan["mode"], self.plan["epochs"]
        out = []
        for entry in self.plan["finalists"]:
            finals, bests = [], []
            for run in entry["runs"]:
                history = self.histories.get(point_key(run["hp"]), [])
                last = history[-1] if history else {}
                done = int(last.get("epoch", 0)) >= epochs and not any(h.get("diverged") for h in history)
                finals.append(last.get(metric) if done else None)
                bests.append(best_value(history, metric, mode))
            out.append(Finalist(entry["label"], entry["parameters"], entry["search_rank"], finals, bests))
        return out

    def missing(self) -> int:
        """Planned runs without a final epoch (interrupted, or never started)."""
        return sum(v is None for f in self.finalists() for v in f.finals)

    def decision(self) -> Optional[Decision]:
        finalists = self.finalists()
        if not any(f.complete for f in finalists):
            return None
        return decide(finalists, self.plan["metric"], self.plan["mode"])

    def run_of(self, entry: dict[str, Any], seed_index: int) -> str:
        return self.run_names.get(point_key(entry["runs"][seed_index]["hp"]), "-")

    def trained_epochs(self) -> int:
        """Epochs the race itself trained (reused search runs cost nothing)."""
        return sum(int(h[-1]["epoch"]) for k, h in self.histories.items()
                   if h and self.run_names.get(k, "").startswith(RUN_PREFIX))


def load_race(experiment_dir: Path) -> Optional[RaceResult]:
    """The race of an experiment folder, or None if it had none."""
    race_dir = experiment_dir / RACE_DIR
    planned = read_json(race_dir / PLAN_FILE, what="the race's plan", missing_ok=True,
                        fix="run the search again with --resume to plan the race again")
    if planned is None:
        return None
    histories: dict[str, list] = {}
    names: dict[str, str] = {}
    for entry in planned["finalists"]:
        for run in entry["runs"]:
            if run["reuse"]:
                # A warm-started search's trial may have run in an earlier experiment's folder.
                folder = trial_dir(experiment_dir, run["reuse"])
                histories[point_key(run["hp"])] = read_history(folder / RESULT_FILE)
                names[point_key(run["hp"])] = run["reuse"]
    for run_dir in _run_dirs(race_dir):
        history = read_history(run_dir / RESULT_FILE)
        if history:
            hp = read_trial_params(run_dir, required=True)
            histories[point_key(hp)] = history
            names[point_key(hp)] = run_dir.name
    return RaceResult(planned, histories, names)


# --------------------------------------------------------------------------- stage in experiment.json


def mark_stage(experiment_dir: Path, stage: str, status: str, planned: dict[str, Any]) -> None:
    """experiment.json says the race is on (status running, this pid), so `--resume` and a
    second search see it, and lists the race's planned runs (the search's own write_meta
    rewrites the file when it starts; the race marks it again)."""
    import os
    import time

    meta = read_meta(experiment_dir)
    names = RunNames(planned)
    runs = [run["reuse"] or f"{RACE_DIR}/{names.of(run['hp'])}" for e in planned["finalists"] for run in e["runs"]]
    meta.update({"stage": stage, "status": status, "pid": os.getpid(),
                 "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 "race": {"plan": f"{RACE_DIR}/{PLAN_FILE}", "epochs": planned["epochs"], "runs": runs}})
    write_json_atomic(experiment_dir / EXPERIMENT_FILE, meta)


# --------------------------------------------------------------------------- run


def run_race(spec: "ExperimentSpec", location: "Location", experiment_dir: Path, data: "DataBundle",
             interrupts: Any, guard: Any, storage: tuple[str, Any],
             before_training: Optional[Callable[[], None]] = None) -> int:
    """Plan (or reload the plan of) the race and run its unfinished runs through Tune; print the
    race table and the decision. interrupts: search._Interrupts (its count says Ctrl-C/SIGTERM).
    storage: (experiment path, filesystem) as the search gives them to Ray, so the race's
    pickles and checkpoints are signed like the search's (tune_app.integrity).
    before_training: called before the race trains anything (search.py starts Ray there when
    the search itself trained nothing: a warm-started grid whose every point had run).
    0 = decided (or no race), 1 = a run failed, 130 = interrupted."""
    from tune_app.experiment import load_experiment
    from tune_app.tuner.build import race_tuner
    from tune_app.tuner.trainable import make_trainable

    race_dir = experiment_dir / RACE_DIR
    planned = read_json(race_dir / PLAN_FILE, what="the race's plan", missing_ok=True,
                        fix="delete race/ to plan the race again")
    if planned is None:
        planned = plan(load_experiment(experiment_dir), spec, data.num_classes, data.image_shape[0])
        if planned is None:
            return 0
        race_dir.mkdir(exist_ok=True)
        write_json_atomic(race_dir / PLAN_FILE, planned, indent=2)
        location.push(f"{RACE_DIR}/{PLAN_FILE}")
    result = load_race(experiment_dir)
    todo = [run["hp"] for e in planned["finalists"] for run in e["runs"]
            if not run["reuse"] and not _run_done(result, run["hp"], planned["epochs"])]
    reused = sum(bool(r["reuse"]) for e in planned["finalists"] for r in e["runs"])
    print(f"\nrace: {len(planned['finalists'])} finalists x {len(planned['seeds'])} seeds x {planned['epochs']} "
          f"epochs ({reused} run(s) reused from the search, {len(todo)} to train)", flush=True)
    mark_stage(experiment_dir, "race", "running", planned)
    location.push(EXPERIMENT_FILE)
    if todo:
        if before_training is not None:
            before_training()
        trainable = make_trainable(spec.base, data, spec.resources.cpus_per_trial, spec.resources.gpus_per_trial,
                                   results_dir=None if location.remote else str(experiment_dir))
        # An unfinished run restarts from its first epoch, in a fresh Tune experiment for the
        # runs left: after a kill, Tune's last snapshot can name a checkpoint that num_to_keep
        # has deleted since, and Tuner.restore then fails that run. Race runs are short.
        names = RunNames(planned)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for hp in todo:
            unfinished = race_dir / names.of(hp)
            if read_history(unfinished / RESULT_FILE):
                # Set aside, never deleted: the cut run's curves stay readable in TensorBoard.
                unfinished.rename(race_dir / f"{unfinished.name}.interrupted-{stamp}")
            elif unfinished.exists():
                shutil.rmtree(unfinished)  # a folder Tune made for a run that never reported
        # The race is a Tune experiment of its own, in the search's folder: race/.
        tuner = race_tuner(spec, trainable, todo, names, (storage[0], RACE_DIR, storage[1]), guard)
        try:
            with interrupts.fitting():
                tuner.fit()
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop at once (search._Interrupts)
        location.pull()
        result = load_race(experiment_dir)
    left = [hp for hp in todo if not _run_done(result, hp, planned["epochs"])]
    failed = _failed_runs(race_dir)
    if left and failed and not interrupts.count:
        mark_stage(experiment_dir, "race", "interrupted", planned)
        location.push(EXPERIMENT_FILE)
        print(f"{len(failed)} race run(s) failed: " + ", ".join(f"{d.name} (see {d / 'error.txt'})" for d in failed)
              + f"\nfix the cause, then rerun them: python -m tune_app.search --resume {location}", flush=True)
        return 1
    if interrupts.count or left:
        mark_stage(experiment_dir, "race", "interrupted", planned)
        location.push(EXPERIMENT_FILE)
        print(f"race interrupted ({len(left)} run(s) unfinished); resume it with:\n"
              f"  python -m tune_app.search --resume {location}", flush=True)
        return 130
    print(race_report(result))
    mark_stage(experiment_dir, "race finished", "finished", planned)
    location.push(EXPERIMENT_FILE)
    return 0


def _run_done(result: Optional[RaceResult], hp: dict[str, Any], epochs: int) -> bool:
    """A run is done when it reached its last epoch, or diverged (running it again would too)."""
    history = result.histories.get(point_key(hp), []) if result else []
    return bool(history) and (int(history[-1]["epoch"]) >= epochs or any(h.get("diverged") for h in history))


def _failed_runs(race_dir: Path) -> list[Path]:
    from tune_app.experiment import read_ended

    return [d for d in _run_dirs(race_dir) if read_ended(d) == "ERROR"]


def _run_dirs(race_dir: Path) -> list[Path]:
    """The race's run folders; a cut run set aside on resume (race_00003.interrupted-...) is not one."""
    return [d for d in sorted(race_dir.glob(f"{RUN_PREFIX}*")) if d.is_dir() and d.name[len(RUN_PREFIX):].isdigit()]


class RunNames:
    """Tune's trial_dirname_creator / trial_name_creator for the race: "race_00003" is the
    plan's fourth run whichever Tune experiment trains it, so a restarted run keeps its folder,
    and the name tells it apart from the search's trial_ folders wherever it is shown."""

    def __init__(self, planned: dict[str, Any]) -> None:
        runs = [run["hp"] for entry in planned["finalists"] for run in entry["runs"]]
        self.index = {point_key(hp): i for i, hp in enumerate(runs)}

    def of(self, hp: dict[str, Any]) -> str:
        return f"{RUN_PREFIX}{self.index[point_key(hp)]:05d}"

    def __call__(self, trial) -> str:
        return self.of(unwrap(trial.config))


# --------------------------------------------------------------------------- table


def race_rows(result: RaceResult) -> list[dict[str, Any]]:
    """One row per finalist, in race order: what search prints and report renders."""
    decision = result.decision()
    finalists = decision.ranked if decision else result.finalists()
    by_label = {e["label"]: e for e in result.plan["finalists"]}
    comparisons = {c.other.label: c for c in decision.comparisons} if decision else {}
    metric = result.plan["metric"]
    rows = []
    for rank, f in enumerate(finalists, 1):
        entry = by_label[f.label]
        interval = mean_interval([v for v in f.finals if v is not None])
        comparison = comparisons.get(f.label)
        bests = [b for b in f.bests if b is not None]
        rows.append({
            "race": rank if f.complete else None,
            "search": f.search_rank,
            "configuration": f.label,
            f"mean_final_{metric}": f.mean,
            "95% interval": None if interval is None else f"[{interval[0]:.4f}, {interval[1]:.4f}]",
            f"mean_best_{metric}": sum(bests) / len(bests) if bests else None,
            "per seed": " ".join("-" if v is None else f"{v:.4f}" for v in f.finals),
            "vs leader": None if comparison is None or comparison.interval is None else
            f"{comparison.difference:+.4f} [{comparison.interval[0]:+.4f}, {comparison.interval[1]:+.4f}]"
            + (" tied" if comparison.tied else ""),
            "parameters": f.parameters,
            "runs": " ".join(result.run_of(entry, i) for i in range(len(entry["runs"]))),
        })
    return rows


def race_report(result: RaceResult) -> str:
    decision = result.decision()
    p = result.plan
    lines = [f"\nrace over seeds {', '.join(map(str, p['seeds']))}, {p['epochs']} epochs, by {p['metric']} at the "
             f"final epoch (vs leader: how far the leader is ahead, 95% interval; tied = includes 0):",
             format_table(race_rows(result))]
    lines.append(decision.sentence if decision else "no finalist finished every run: no pick")
    return "\n".join(lines)

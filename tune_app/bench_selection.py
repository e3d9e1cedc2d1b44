"""`python -m tune_app.bench --compare-selection SPEC`: does tune_app hand back a better model
than the hand procedure, for no more epochs?

The hand procedure is the reference projects' own: every grid point trained for a fixed 3
epochs one after the other (no scheduler), the best validation accuracy picks one, it is
retrained for 10 epochs and tested once. tune_app's procedure is the spec as written (ASHA,
the race, retrain_best). Both run the real commands on the same data, with the same grid,
repeated with train.seed, +1, ...; what is compared is each procedure's test accuracy, its
epochs (search + race + retraining) and its wall time. One run is 10-20 minutes on a laptop, so
each finished run is written to a JSON file at once: a killed comparison keeps its rows, and
one procedure can be (re)run alone.
"""

from __future__ import annotations

import copy
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from tune_app.errors import UsageError
from tune_app.fileio import read_json
from tune_app.hparams import shown

HAND_EPOCHS = 3  # every grid point, as the reference projects trained them
HAND_RETRAIN_EPOCHS = 10
PROCEDURES = ("hand", "tune_app")
MAX_RESUMES = 2


def hand_spec(spec: dict[str, Any], seed: int) -> dict[str, Any]:
    """The same grid and data, run the way the reference projects ran it by hand."""
    out = copy.deepcopy(spec)
    out.setdefault("train", {}).update({"epochs": HAND_EPOCHS, "seed": seed})
    out["scheduler"] = {"name": "none"}
    out["search"] = {**out.get("search", {}), "algorithm": "grid", "num_samples": 1}
    out["select"] = {"finalists": 0}
    # train_on pinned: the spec's own retraining may learn from the validation images too, the
    # reference projects' never did.
    out["retrain"] = {**out.get("retrain", {}), "epochs": HAND_RETRAIN_EPOCHS, "train_on": "train"}
    return out


def tune_app_spec(spec: dict[str, Any], seed: int) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    out.setdefault("train", {})["seed"] = seed
    return out


def run_procedure(spec: dict[str, Any], name: str, storage: Path) -> dict[str, Any]:
    """search + retrain_best through their command lines; the numbers retrain_best recorded."""
    experiment, log = storage / name, storage / f"{name}.log"
    began = time.perf_counter()
    with open(log, "w") as out:
        resumes = _search(spec, name, storage, out, log)
        best = _retrain(experiment, [], out, log, name)
    return _figures(best, log, time.perf_counter() - began, resumes)


def run_shared(specs: dict[str, dict[str, Any]], name: str, storage: Path) -> dict[str, dict[str, Any]]:
    """Procedures whose searches are the same runs (shared_search): the search once, then each
    procedure's own retraining of its pick. Each procedure's epochs and wall time count the
    search in full, as if it had run it alone."""
    first = next(iter(specs.values()))
    experiment, log = storage / name, storage / f"{name}.log"
    began = time.perf_counter()
    with open(log, "w") as out:
        resumes = _search(first, name, storage, out, log)
        searched = time.perf_counter() - began
        results = {}
        for procedure, spec in specs.items():
            began = time.perf_counter()
            retrain = spec.get("retrain") or {}
            options = [f"--{key.replace('_', '-')}={retrain[key]}" for key in ("epochs", "train_on") if key in retrain]
            best = _retrain(experiment, options, out, log, f"{procedure} ({name})")
            results[procedure] = {**_figures(best, log, searched + time.perf_counter() - began, resumes),
                                  "shared_search": name}
    return results


def shared_search(specs: dict[str, dict[str, Any]]) -> bool:
    """Whether the procedures' searches would train the very same runs: their specs differ in
    the retraining alone (read as the search reads them, defaults filled in)."""
    import tempfile

    from tune_app.spec import load_spec

    def search_part(spec: dict[str, Any]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "spec.yaml"
            path.write_text(yaml.safe_dump(spec, sort_keys=False))
            loaded = load_spec(str(path))
        return {"base": loaded.base.to_dict(), "space": loaded.space, "search": loaded.search,
                "scheduler": loaded.scheduler, "resources": loaded.resources, "select": loaded.select}

    parts = [search_part(spec) for spec in specs.values()]
    return len(parts) > 1 and all(part == parts[0] for part in parts[1:])


def _search(spec: dict[str, Any], name: str, storage: Path, out, log: Path) -> int:
    """The search, started again or resumed on failure; how many times it was.

    A search that fails on a loaded machine (Ray's start-up times out, or its raylet misses its
    heartbeats and takes every trial down) is started again, or resumed as a user would once
    it has a folder, up to MAX_RESUMES times: each epoch is seeded, so a resumed trial trains
    exactly as an uninterrupted one, and the epochs counted are the trials' own (the wall time
    includes the lost work).
    """
    path = storage / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    experiment = storage / name
    search = ["tune_app.search", "--space", str(path), "--storage", str(storage), "--name", name]
    resumes = 0
    code = _run(search, out)
    while code != 0 and resumes < MAX_RESUMES:
        if (experiment / "experiment.json").is_file():
            again = ["tune_app.search", "--resume", str(experiment)]
        elif not experiment.exists():  # Ray did not even start: nothing was trained yet
            again = search
        else:
            break
        resumes += 1
        print(f"bench: search exited {code}; {again[1]} again ({resumes}/{MAX_RESUMES})", file=out, flush=True)
        code = _run(again, out)
    if code != 0:
        _failed("tune_app.search", name, log)
    return resumes


def _retrain(experiment: Path, options: list[str], out, log: Path, name: str) -> Path:
    """retrain_best on the experiment; the folder it wrote (best/, then best-2/, ...)."""
    before = {p.name for p in experiment.glob("best*")}
    if _run(["tune_app.retrain_best", "--experiment", str(experiment), *options], out) != 0:
        _failed("tune_app.retrain_best", name, log)
    written = sorted((p for p in experiment.glob("best*") if p.name not in before),
                     key=lambda p: p.stat().st_mtime)
    return written[-1] if written else experiment / "best"


def _run(command: list[str], out) -> int:
    out.flush()
    return subprocess.run([sys.executable, "-m", *command], stdout=out, stderr=subprocess.STDOUT).returncode


def _failed(command: str, name: str, log: Path) -> None:
    tail = "\n".join(log.read_text().splitlines()[-15:])
    raise RuntimeError(f"{command} failed for {name}:\n{tail}")


def _figures(best: Path, log: Path, seconds: float, resumes: int) -> dict[str, Any]:
    metrics = read_json(best / "metrics.json", what="retrain-best's metrics", fix=f"see {log}")
    return {"test_accuracy": metrics["test"]["accuracy"], "epochs": metrics["procedure_epochs"]["total"],
            "epochs_by_stage": metrics["procedure_epochs"], "seconds": seconds,
            "picked": shown(metrics["hparams"]),
            "chosen_by": metrics.get("chosen_by", {}).get("stage"), "search_resumes": resumes}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    accuracies = [r["test_accuracy"] for r in runs]
    return {"test_accuracy_mean": statistics.fmean(accuracies),
            "test_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
            "test_accuracy_min": min(accuracies), "test_accuracy_max": max(accuracies),
            "epochs_mean": statistics.fmean(r["epochs"] for r in runs), "epochs_max": max(r["epochs"] for r in runs),
            "seconds_mean": statistics.fmean(r["seconds"] for r in runs), "runs": runs}


def compare_selection(spec_path: str, repeats: int, storage: Path,
                      procedures: tuple[str, ...] = PROCEDURES,
                      on_run: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """on_run: called with the comparison so far after every finished run (to save it)."""
    if repeats < 1:
        raise UsageError(f"must be >= 1, got {repeats}", key="--repeats", fix="e.g. --repeats 3")
    try:
        spec = yaml.safe_load(Path(spec_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise UsageError(f"cannot read the spec ({err})", file=spec_path, fix="pass a spec that search accepts") from None
    if (spec.get("search") or {}).get("algorithm", "grid") != "grid":
        raise UsageError("the comparison needs a grid spec (the hand procedure runs every point)", file=spec_path,
                         key="search.algorithm", fix="pass e.g. search_spaces/tiny_imagenet_cpu.yaml")
    first_seed = int((spec.get("train") or {}).get("seed", 0))
    make_spec = {"hand": hand_spec, "tune_app": tune_app_spec}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in procedures}

    def so_far() -> dict[str, Any]:
        return {"spec": spec_path, "repeats": repeats, "storage": str(storage),
                **{k: summarise(v) for k, v in results.items() if v}}

    for repeat in range(repeats):
        seed = first_seed + repeat
        specs = {name: make_spec[name](spec, seed) for name in procedures}
        if shared_search(specs):
            # The spec searches exactly as the hand procedure does (same grid, epochs, seed, no
            # scheduler, no race): the same runs would be trained twice, only the retraining differs.
            for name, run in run_shared(specs, f"search-{seed}", storage).items():
                results[name].append({"seed": seed, **run})
            if on_run is not None:
                on_run(so_far())
            continue
        for name in procedures:
            run = run_procedure(specs[name], f"{name}-{seed}", storage)
            results[name].append({"seed": seed, **run})
            if on_run is not None:
                on_run(so_far())
    return so_far()


def table(comparison: dict[str, Any]) -> str:
    lines = [f"selection on {comparison['spec']}, {comparison['repeats']} repetitions (train.seed varied)",
             f"{'procedure':<46} {'test acc mean':>13} {'std':>7} {'min..max':>15} {'epochs':>7} {'seconds':>8}"]
    labels = {"hand": f"hand: grid x {HAND_EPOCHS} epochs, best val, retrain {HAND_RETRAIN_EPOCHS}",
              "tune_app": "tune_app: the spec as written"}
    labels = {key: label for key, label in labels.items() if key in comparison}
    for key, label in labels.items():
        s = comparison[key]
        std = f"{s['test_accuracy_std']:.4f}" if s["test_accuracy_std"] is not None else "-"
        lines.append(f"{label:<46} {s['test_accuracy_mean']:>13.4f} {std:>7} "
                     f"{s['test_accuracy_min']:>7.4f}..{s['test_accuracy_max']:.4f} {s['epochs_mean']:>7.1f} "
                     f"{s['seconds_mean']:>8.1f}")
    for key in labels:
        for run in comparison[key]["runs"]:
            lines.append(f"  {key} seed {run['seed']}: test {run['test_accuracy']:.4f}, {run['epochs']} epochs "
                         f"({run['epochs_by_stage']}), picked {run['picked']}")
    shared = sorted({run["shared_search"] for key in labels for run in comparison[key]["runs"]
                     if run.get("shared_search")})
    if shared:
        lines.append(f"the spec searches as the hand procedure does: each seed's search ran once ({', '.join(shared)}) "
                     "and both procedures retrained their pick from it; each counts the search's epochs and time")
    if len(labels) == 2:
        difference = comparison["tune_app"]["test_accuracy_mean"] - comparison["hand"]["test_accuracy_mean"]
        lines.append(f"tune_app - hand: {100 * difference:+.2f} points of test accuracy")
    return "\n".join(lines)

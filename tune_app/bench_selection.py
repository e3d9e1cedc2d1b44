"""`python -m tune_app.bench --compare-selection SPEC`: does tune_app hand back a better model
than the hand procedure, for no more epochs?

The hand procedure is the reference projects' own: every grid point trained for a fixed 3
epochs one after the other (no scheduler), the best validation accuracy picks one, it is
retrained for 10 epochs and tested once. tune_app's procedure is the spec as written (ASHA,
the race, retrain_best). Both run the real commands on the same data, with the same grid,
repeated with train.seed, +1, ...; what is compared is each procedure's test accuracy, its
epochs (search + race + retraining) and its wall time.
"""

from __future__ import annotations

import copy
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tune_app.errors import UsageError
from tune_app.fileio import read_json
from tune_app.hparams import shown

HAND_EPOCHS = 3  # every grid point, as the reference projects trained them
HAND_RETRAIN_EPOCHS = 10


def hand_spec(spec: dict[str, Any], seed: int) -> dict[str, Any]:
    """The same grid and data, run the way the reference projects ran it by hand."""
    out = copy.deepcopy(spec)
    out.setdefault("train", {}).update({"epochs": HAND_EPOCHS, "seed": seed})
    out["scheduler"] = {"name": "none"}
    out["search"] = {**out.get("search", {}), "algorithm": "grid", "num_samples": 1}
    out["select"] = {"finalists": 0}
    out["retrain"] = {**out.get("retrain", {}), "epochs": HAND_RETRAIN_EPOCHS}
    return out


def tune_app_spec(spec: dict[str, Any], seed: int) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    out.setdefault("train", {})["seed"] = seed
    return out


def run_procedure(spec: dict[str, Any], name: str, storage: Path) -> dict[str, Any]:
    """search + retrain_best through their command lines; the numbers retrain_best recorded."""
    path = storage / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    log = storage / f"{name}.log"
    began = time.perf_counter()
    with open(log, "w") as out:
        for command in (["tune_app.search", "--space", str(path), "--storage", str(storage), "--name", name],
                        ["tune_app.retrain_best", "--experiment", str(storage / name)]):
            done = subprocess.run([sys.executable, "-m", *command], stdout=out, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                tail = "\n".join(log.read_text().splitlines()[-15:])
                raise RuntimeError(f"{' '.join(command[:1])} failed for {name}:\n{tail}")
    seconds = time.perf_counter() - began
    metrics = read_json(storage / name / "best" / "metrics.json", what="retrain-best's metrics",
                        fix=f"see {log}")
    return {"test_accuracy": metrics["test"]["accuracy"], "epochs": metrics["procedure_epochs"]["total"],
            "epochs_by_stage": metrics["procedure_epochs"], "seconds": seconds,
            "picked": shown(metrics["hparams"]),
            "chosen_by": metrics.get("chosen_by", {}).get("stage")}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    accuracies = [r["test_accuracy"] for r in runs]
    return {"test_accuracy_mean": statistics.fmean(accuracies),
            "test_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
            "test_accuracy_min": min(accuracies), "test_accuracy_max": max(accuracies),
            "epochs_mean": statistics.fmean(r["epochs"] for r in runs), "epochs_max": max(r["epochs"] for r in runs),
            "seconds_mean": statistics.fmean(r["seconds"] for r in runs), "runs": runs}


def compare_selection(spec_path: str, repeats: int, storage: Path) -> dict[str, Any]:
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
    results: dict[str, list[dict[str, Any]]] = {"hand": [], "tune_app": []}
    for repeat in range(repeats):
        seed = first_seed + repeat
        results["hand"].append({"seed": seed, **run_procedure(hand_spec(spec, seed), f"hand-{seed}", storage)})
        results["tune_app"].append({"seed": seed, **run_procedure(tune_app_spec(spec, seed), f"tune_app-{seed}",
                                                                   storage)})
    return {"spec": spec_path, "repeats": repeats, **{k: summarise(v) for k, v in results.items()}}


def table(comparison: dict[str, Any]) -> str:
    lines = [f"selection on {comparison['spec']}, {comparison['repeats']} repetitions (train.seed varied)",
             f"{'procedure':<40} {'test acc mean':>13} {'std':>7} {'min..max':>15} {'epochs':>7} {'seconds':>8}"]
    labels = {"hand": f"hand: grid x {HAND_EPOCHS} epochs, best val, retrain {HAND_RETRAIN_EPOCHS}",
              "tune_app": "tune_app: the spec (ASHA, race, retrain)"}
    for key, label in labels.items():
        s = comparison[key]
        std = f"{s['test_accuracy_std']:.4f}" if s["test_accuracy_std"] is not None else "-"
        lines.append(f"{label:<40} {s['test_accuracy_mean']:>13.4f} {std:>7} "
                     f"{s['test_accuracy_min']:>7.4f}..{s['test_accuracy_max']:.4f} {s['epochs_mean']:>7.1f} "
                     f"{s['seconds_mean']:>8.1f}")
    for key in labels:
        for run in comparison[key]["runs"]:
            lines.append(f"  {key} seed {run['seed']}: test {run['test_accuracy']:.4f}, {run['epochs']} epochs "
                         f"({run['epochs_by_stage']}), picked {run['picked']}")
    difference = comparison["tune_app"]["test_accuracy_mean"] - comparison["hand"]["test_accuracy_mean"]
    lines.append(f"tune_app - hand: {100 * difference:+.2f} points of test accuracy")
    return "\n".join(lines)

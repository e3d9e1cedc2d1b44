"""`python -m tune_app.retrain_best`: retrain the best trial's configuration from scratch and
evaluate it once on the untouched test split.

The search only ever saw train and val; this is the single place the test split is read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from tune_app.errors import UsageError, cli_entry
from tune_app.metric_names import test_key

if TYPE_CHECKING:
    from tune_app.config import TrialConfig
    from tune_app.data import DataBundle, Split
    from tune_app.pick import Choice, PickRule


def build_parser() -> argparse.ArgumentParser:
    # The docstring's first paragraph, whole: its first line alone stops mid-sentence.
    description = " ".join(__doc__.split("\n\n", 1)[0].split())
    p = argparse.ArgumentParser(prog="python -m tune_app.retrain_best", description=description)
    p.add_argument("--experiment", metavar="DIR", help="experiment folder (default: the newest under --results)")
    p.add_argument("--results", default="results", help="where to look for the newest experiment")
    p.add_argument("--epochs", type=int, help="final epochs (default: retrain.epochs of the spec; if 0, the "
                                              "epochs the pick was judged at: the race's, else train.epochs)")
    p.add_argument("--train-on", choices=["train", "train+val"], help="data to retrain on (default: the spec's)")
    p.add_argument("--force", action="store_true",
                   help="retrain even while the search is still running (its current leader, however few "
                   "epochs it has run)")
    p.add_argument("--seeds", type=int, default=1,
                   help="retrain with this many seeds (train.seed, +1, ...) and report the test mean and spread; "
                        "the first seed's model is the one saved (default 1)")
    p.add_argument("--pick", nargs="+", metavar="RULE",
                   help="how to pick: `best` (the race's pick, else the search's best), or `smallest-within "
                        "POINTS`: with search.objectives, the cheapest model on the Pareto front whose metric is "
                        "within POINTS of the front's best, in the metric's units (0.01 = 1 point of accuracy); "
                        "default: smallest-within 0.01 with two objectives, else best")
    return p


def output_dir(experiment: Path) -> Path:
    """best/, or best-2/, best-3/...: an earlier retraining is never overwritten."""
    path, n = experiment / "best", 2
    while path.exists():
        path, n = experiment / f"best-{n}", n + 1
    path.mkdir()
    return path


class EpochProgress:
    """A progress bar on a terminal; one line per epoch otherwise (a log file, CI, a pipe),
    where a bar's carriage returns pile up into one line of kilobytes."""

    def __init__(self, total: int, desc: str, stream=None) -> None:
        self.total, self.desc = total, desc
        self.stream = stream or sys.stdout
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="epoch", file=self.stream)

    def update(self, metrics: dict[str, Any]) -> None:
        values = {"loss": metrics["train_loss"], "acc": metrics["train_accuracy"],
                  "val_acc": metrics["val_accuracy"]}
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()})
            self.bar.update(1)
            return
        shown = "  ".join(f"{k} {v:.4f}" for k, v in values.items())
        print(f"{self.desc}: epoch {metrics['epoch']}/{self.total}  {shown}  ({metrics['epoch_time_s']:.1f} s)",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def retrain(experiment_dir: Path, epochs: int | None = None, train_on: str | None = None,
            seeds: int = 1, pick: "PickRule | None" = None) -> dict[str, Any]:
    """pick: how to choose the configuration; None = pick.default_rule."""
    from tune_app.checkpoint import save_checkpoint
    from tune_app.data import Split, load_dataset
    from tune_app.experiment import load_experiment
    from tune_app.fileio import write_json_atomic, write_text_atomic
    from tune_app.metrics import baselines
    from tune_app.pick import choose
    from tune_app.training import limit_threads

    experiment = load_experiment(experiment_dir)
    choice = choose(experiment, pick)
    metric, mode = experiment.metric, experiment.mode
    # retrain.epochs when the spec sets it (a final model may deserve more epochs than any
    # comparison could afford); 0 = the length the pick was judged at: the race's epochs, or
    # the search's train.epochs.
    epochs = epochs or experiment.meta["retrain"]["epochs"] or choice.epochs
    first_seed = choice.details["seeds"][0] if choice.stage == "race" else choice.details["seed"]
    cfg = choice.config(experiment, first_seed)
    train_on = train_on or experiment.meta["retrain"]["train_on"]
    # The CPU share each trial had, so the final run trains as its search did.
    threads = limit_threads(cfg.train, experiment.meta.get("resources", {}).get("cpus_per_trial", 1))
    data = load_dataset(cfg.dataset)
    train_split = data.train
    if train_on == "train+val":
        train_split = Split(np.concatenate([data.train.images, data.val.images]),
                            np.concatenate([data.train.labels, data.val.labels]))

    out = output_dir(experiment.path)
    runs = [_train_and_test(choice.config(experiment, first_seed + i), data, train_split, epochs, out, choice,
                            metric, mode, i) for i in range(seeds)]
    model, result, test, report = runs[0]
    last = result.history[-1]
    search_trial = next((t for t in experiment.trials if t.name == choice.run), None)
    metrics = {
        "experiment": str(experiment.path),
        "trial": choice.run,
        # The trial's own values (with its seed) when the pick is a search trial; under PBT the
        # values it had at its best epoch (pick.py), not its last ones.
        "hparams": choice.hparams if choice.stage == "race" or "pbt" in choice.details else search_trial.hparams,
        "config": cfg.to_dict(),
        "epochs": epochs,
        "train_on": train_on,
        "threads": threads,
        "metric": metric,
        "mode": mode,
        "chosen_by": {"stage": choice.stage, "rule": choice.rule, "sentence": choice.sentence,
                      "judged_epochs": choice.epochs, "value": choice.value, **choice.details},
        f"search_best_{metric}": search_trial.best(metric, mode) if search_trial else choice.value,
        "search_epochs": search_trial.epochs_run if search_trial else choice.epochs,
        "search_seeds": _seed_summary(experiment, search_trial) if search_trial else None,
        # With train+val the final val number is no longer held out; it is kept for the curve only.
        f"final_{metric}": last[metric],
        "final_val_accuracy": last["val_accuracy"],
        "val_held_out": train_on == "train",
        "test": _test_entry(test, report, data),
        "test_seeds": _test_spread([(first_seed + i, r[2], r[3]) for i, r in enumerate(runs)]) if seeds > 1 else None,
        "baselines": baselines(data.train.labels, data.test.labels, data.num_classes),
        # Readable names key per_class_accuracy and label the report; class_ids are the source's
        # own labels in the same order (Tiny ImageNet's wnids), for finding a class in the data.
        "class_names": list(data.class_names),
        "class_ids": list(data.class_ids),
        "history": result.history,
        "diverged": result.diverged,
        "procedure_epochs": procedure_epochs(experiment, epochs * seeds),
    }
    save_checkpoint(out, {"model": model.state_dict(), "config": cfg.to_dict(), "epoch": epochs,
                          "class_names": list(data.class_names), "class_ids": list(data.class_ids)})
    write_json_atomic(out / "metrics.json", metrics, indent=2)
    write_text_atomic(out / "summary.md", summary_markdown(metrics))
    metrics["output_dir"] = str(out)
    return metrics


def _train_and_test(cfg: "TrialConfig", data: "DataBundle", train_split: "Split", epochs: int, out: Path,
                    choice: "Choice", metric: str, mode: str, index: int) -> tuple[Any, Any, dict, dict]:
    """One retraining (seed cfg.train.seed) and its single evaluation on the test split:
    (model, TrainResult, evaluate's numbers, classification_metrics of the predictions)."""
    from tune_app.hparams import shown
    from tune_app.metrics import classification_metrics
    from tune_app.tb import TrialWriter
    from tune_app.training import DeviceSplit, Normalize, evaluate, train

    hparams = shown(choice.hparams)
    suffix = f" seed {cfg.train.seed}" if index else ""
    writer = TrialWriter(str(out / ("tb" if not index else f"tb-seed{cfg.train.seed}")),
                         {**hparams, "trial": f"retrain of {choice.run}{suffix}"}, metric=metric, mode=mode)
    bar = EpochProgress(epochs, f"retrain {choice.run}{suffix}")

    def on_epoch_end(metrics: dict[str, Any], state) -> None:
        writer.epoch(metrics)
        bar.update(metrics)

    result = train(cfg, on_epoch_end, data=data, train_split=train_split, epochs=epochs)
    bar.close()
    writer.close()
    model = result.model
    device = next(model.parameters()).device
    normalize = Normalize(data.mean, data.std).to(device)
    test = evaluate(model, DeviceSplit.from_split(data.test, device), normalize,
                    cfg.train.eval_batch_size, cfg.train.amp, return_predictions=True)
    return model, result, test, classification_metrics(data.test.labels, test["predictions"], data.num_classes)


def _test_entry(test: dict[str, Any], report: dict[str, Any], data: "DataBundle") -> dict[str, Any]:
    return {"accuracy": report["accuracy"], "top5_accuracy": test["top5_accuracy"],
            "loss": test["loss"], "macro_f1": report["macro_f1"],
            "per_class_accuracy": dict(zip(data.class_names, report["per_class_accuracy"])),
            "confusion_matrix": report["confusion_matrix"]}


def _test_spread(runs: list[tuple[int, dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """Test numbers over the retraining seeds: mean, standard deviation, 95% interval of the mean."""
    import statistics

    from tune_app.selection import mean_interval

    out: dict[str, Any] = {"seeds": [seed for seed, _, _ in runs]}
    for key in ("accuracy", "top5_accuracy", "macro_f1", "loss"):
        values = [report[key] if key in ("accuracy", "macro_f1") else test[key] for _, test, report in runs]
        out[key] = {"values": values, "mean": statistics.fmean(values), "std": statistics.stdev(values),
                    "interval": mean_interval(values)}
    return out


def procedure_epochs(experiment: Any, retrain_epochs: int) -> dict[str, int]:
    """Epochs of the whole procedure: search, race (runs it trained itself) and retraining."""
    from tune_app.race import load_race

    race = load_race(experiment.path)
    search = sum(t.epochs_run for t in experiment.trials)
    raced = race.trained_epochs() if race is not None else 0
    return {"search": search, "race": raced, "retrain": retrain_epochs, "total": search + raced + retrain_epochs}


def _seed_summary(experiment, best) -> Optional[dict[str, Any]]:
    """The picked configuration's runs over seeds (seeded grids only): its mean is the less
    optimistic estimate, since the best of several runs is partly luck."""
    if not experiment.seeded:
        return None
    config = next(c for c in experiment.configurations() if best in c.trials)
    metric, mode = experiment.metric, experiment.mode
    return {"runs": len(config.trials), f"mean_best_{metric}": config.mean(metric, mode),
            "std": config.std(metric, mode), "trials": [t.name for t in config.trials]}


def summary_markdown(m: dict[str, Any]) -> str:
    t, b = m["test"], m["baselines"]
    metric = m.get("metric", "val_accuracy")
    name = metric.replace("_", " ")  # "val accuracy"
    searched = m[f"search_best_{metric}"]
    hp = ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in m["hparams"].items()) or "(no searched fields)"
    gap = t[test_key(metric)] - searched
    chosen = m.get("chosen_by") or {}
    spread = m.get("test_seeds")
    rows = [
        "| metric | value |", "| --- | --- |",
        f"| best {name} in the search ({m['search_epochs']} epochs) | {searched:.4f} |",
        *([f"| mean final {name} over the race's {len(chosen['seeds'])} seeds ({chosen['judged_epochs']} epochs) "
           f"| {chosen['value']:.4f} |"] if chosen.get("stage") == "race" else []),
        f"| {name} after retraining ({m['epochs']} epochs){'' if m['val_held_out'] else ' (val was trained on)'} "
        f"| {m[f'final_{metric}']:.4f} |",
        *([f"| mean best {name} over its {m['search_seeds']['runs']} seeds "
           f"| {m['search_seeds'][f'mean_best_{metric}']:.4f} |"] if m.get("search_seeds") else []),
        f"| **test accuracy** | **{t['accuracy']:.4f}** |",
        *([f"| test accuracy over {len(spread['seeds'])} retraining seeds: mean (std) | "
           f"{spread['accuracy']['mean']:.4f} ({spread['accuracy']['std']:.4f}) |"] if spread else []),
        f"| test top-5 accuracy | {t['top5_accuracy']:.4f} |",
        f"| test macro-F1 | {t['macro_f1']:.4f} |",
        f"| val-to-test gap (test - search best {name}) | {gap:+.4f} |",
        f"| baseline: majority class | {b['majority_class_accuracy']:.4f} |",
        f"| baseline: uniform random | {b['uniform_random_accuracy']:.4f} |",
    ]
    how = [f"How it was chosen ({chosen['stage']}): {chosen['rule']}.", "", f"Decision: {chosen['sentence']}.", ""] \
        if chosen else []
    how += front_markdown(chosen, m["trial"])
    worst = sorted(((v, k) for k, v in t["per_class_accuracy"].items() if v is not None))[:5]
    return "\n".join([
        f"# Best configuration of `{Path(m['experiment']).name}`", "",
        f"Trial `{m['trial']}`: {hp}. Retrained from scratch on **{m['train_on']}** for {m['epochs']} epochs, "
        "then evaluated once on the untouched test split.", "", *how, *rows, "",
        "Hardest classes (test accuracy): " + ", ".join(f"{k} {v:.2f}" for v, k in worst), "",
    ])


def front_markdown(chosen: dict[str, Any], trial: str) -> list[str]:
    """The Pareto front retrain_best picked from (search.objectives), as a table; the pick in bold."""
    if not chosen.get("front"):
        return []
    from tune_app.pareto import cost_text

    metric, cost = chosen["objectives"]
    rows = ["| configuration | " + metric + " | " + cost + " | runs | trial |", "| --- | --- | --- | --- | --- |"]
    for row in chosen["front"]:
        cells = [row["configuration"], f"{row[metric]:.4f}", cost_text(cost, row[cost]), str(row["runs"]), row["trial"]]
        rows.append("| " + " | ".join(f"**{c}**" if row["trial"] == trial else c for c in cells) + " |")
    rule = chosen["pick_rule"]["rule"]
    if chosen["pick_rule"].get("tolerance") is not None:
        rule += f" {chosen['pick_rule']['tolerance']:g}"
    left_out = f" {chosen['left_out']}." if chosen.get("left_out") else ""
    return [f"Pareto front of {metric} and {cost}, cheapest first (pick rule: {rule}).{left_out}", "", *rows, ""]


def check_search_done(experiment_dir: Path, force: bool) -> None:
    """Retraining reads the test split, which should happen once, for the search's real winner:
    while the search runs, its leader may have trained two epochs of twelve."""
    from tune_app.experiment import EXPERIMENT_FILE, load_experiment, read_meta
    from tune_app.lock import holder

    meta_file = experiment_dir / EXPERIMENT_FILE
    if not meta_file.is_file():
        return  # retrain's load_experiment says what is wrong with the folder
    running = holder(read_meta(experiment_dir), meta_file)
    if running is None:
        return
    if not force:
        raise UsageError(f"the search is still running (pid {running.pid} on {running.host}); its leader may "
                         "have trained only a few epochs", file=str(experiment_dir),
                         fix="wait for it to finish (or stop it and --resume later), or pass --force to "
                         "retrain the current leader now")
    experiment = load_experiment(experiment_dir)
    best = experiment.best_trial()
    print(f"--force: the search (pid {running.pid}) is still running; retraining its current leader "
          f"{best.name} ({best.epochs_run} of {experiment.max_epochs} epochs run so far)", flush=True)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"must be >= 1, got {args.epochs}", key="--epochs",
                         fix="pass a positive number of epochs, or leave it out for the spec's retrain.epochs")
    from tune_app.pick import parse_pick

    pick = parse_pick(args.pick)
    from tune_app.experiment import newest_experiment
    from tune_app.storage import Location

    location = Location(args.experiment if args.experiment else newest_experiment(args.results))
    if args.seeds < 1:
        raise UsageError(f"must be >= 1, got {args.seeds}", key="--seeds", fix="pass e.g. --seeds 3, or leave it out")
    experiment_dir = location.pull()
    check_search_done(experiment_dir, args.force)
    m = retrain(experiment_dir, args.epochs, args.train_on, args.seeds, pick)
    out = Path(m["output_dir"]).name
    location.push(out)
    t, metric = m["test"], m["metric"]
    print(f"test accuracy {t['accuracy']:.4f}  top-5 {t['top5_accuracy']:.4f}  macro-F1 {t['macro_f1']:.4f}  "
          f"(search best {metric} {m[f'search_best_{metric}']:.4f}; "
          f"majority-class baseline {m['baselines']['majority_class_accuracy']:.4f})")
    if m["test_seeds"]:
        acc = m["test_seeds"]["accuracy"]
        print(f"test accuracy over {len(acc['values'])} seeds: mean {acc['mean']:.4f}, std {acc['std']:.4f}")
    print(f"chosen by the {m['chosen_by']['stage']}: {m['chosen_by']['sentence']}")
    e = m["procedure_epochs"]
    print(f"whole procedure: {e['total']} epochs (search {e['search']} + race {e['race']} + retrain {e['retrain']})")
    print(f"written: {location.child(out)}/ (checkpoint.pt, metrics.json, summary.md, tb/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m tune_app.retrain_best`: retrain the best trial's configuration from scratch and
evaluate it once on the untouched test split.

The search only ever saw train and val; this is the single place the test split is read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tune_app.errors import UsageError, cli_entry


def build_parser() -> argparse.ArgumentParser:
    # The docstring's first paragraph, whole: its first line alone stops mid-sentence.
    description = " ".join(__doc__.split("\n\n", 1)[0].split())
    p = argparse.ArgumentParser(prog="python -m tune_app.retrain_best", description=description)
    p.add_argument("--experiment", metavar="DIR", help="experiment folder (default: the newest under --results)")
    p.add_argument("--results", default="results", help="where to look for the newest experiment")
    p.add_argument("--epochs", type=int, help="final epochs (default: retrain.epochs of the spec)")
    p.add_argument("--train-on", choices=["train", "train+val"], help="data to retrain on (default: the spec's)")
    p.add_argument("--force", action="store_true",
                   help="retrain even while the search is still running (its current leader, however few "
                   "epochs it has run)")
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


def retrain(experiment_dir: Path, epochs: int | None = None, train_on: str | None = None) -> dict[str, Any]:
    from tune_app.checkpoint import save_checkpoint
    from tune_app.data import Split, load_dataset
    from tune_app.experiment import load_experiment
    from tune_app.fileio import write_json_atomic, write_text_atomic
    from tune_app.metrics import baselines, classification_metrics
    from tune_app.tb import TrialWriter
    from tune_app.training import DeviceSplit, Normalize, evaluate, limit_threads, train

    experiment = load_experiment(experiment_dir)
    best = experiment.best_trial()
    cfg = experiment.trial_config(best)
    epochs = epochs or experiment.meta["retrain"]["epochs"] or cfg.train.epochs
    train_on = train_on or experiment.meta["retrain"]["train_on"]
    # The CPU share each trial had, so the final run trains as its search did.
    threads = limit_threads(cfg.train, experiment.meta.get("resources", {}).get("cpus_per_trial", 1))
    data = load_dataset(cfg.dataset)
    train_split = data.train
    if train_on == "train+val":
        train_split = Split(np.concatenate([data.train.images, data.val.images]),
                            np.concatenate([data.train.labels, data.val.labels]))

    out = output_dir(experiment.path)
    hparams = {k.split(".", 1)[-1]: v for k, v in best.hparams.items()}
    writer = TrialWriter(str(out / "tb"), {**hparams, "trial": f"retrain of {best.name}"})
    bar = EpochProgress(epochs, f"retrain {best.name}")

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
    report = classification_metrics(data.test.labels, test["predictions"], data.num_classes)
    last = result.history[-1]
    metrics = {
        "experiment": str(experiment.path),
        "trial": best.name,
        "hparams": best.hparams,
        "config": cfg.to_dict(),
        "epochs": epochs,
        "train_on": train_on,
        "threads": threads,
        "search_best_val_accuracy": best.best("val_accuracy", "max"),
        "search_epochs": best.epochs_run,
        "search_seeds": _seed_summary(experiment, best),
        # With train+val the final val number is no longer held out; it is kept for the curve only.
        "final_val_accuracy": last["val_accuracy"],
        "val_held_out": train_on == "train",
        "test": {"accuracy": report["accuracy"], "top5_accuracy": test["top5_accuracy"],
                 "loss": test["loss"], "macro_f1": report["macro_f1"],
                 "per_class_accuracy": dict(zip(data.class_names, report["per_class_accuracy"])),
                 "confusion_matrix": report["confusion_matrix"]},
        "baselines": baselines(data.train.labels, data.test.labels, data.num_classes),
        # Readable names key per_class_accuracy and label the report; class_ids are the source's
        # own labels in the same order (Tiny ImageNet's wnids), for finding a class in the data.
        "class_names": list(data.class_names),
        "class_ids": list(data.class_ids),
        "history": result.history,
        "diverged": result.diverged,
    }
    save_checkpoint(out, {"model": model.state_dict(), "config": cfg.to_dict(), "epoch": epochs,
                          "class_names": list(data.class_names), "class_ids": list(data.class_ids)})
    write_json_atomic(out / "metrics.json", metrics, indent=2)
    write_text_atomic(out / "summary.md", summary_markdown(metrics))
    metrics["output_dir"] = str(out)
    return metrics


def _seed_summary(experiment, best) -> Optional[dict[str, Any]]:
    """The picked configuration's runs over seeds (seeded grids only): its mean is the less
    optimistic estimate, since the best of several runs is partly luck."""
    if not experiment.seeded:
        return None
    config = next(c for c in experiment.configurations() if best in c.trials)
    return {"runs": len(config.trials), "mean_best_val_accuracy": config.mean("val_accuracy", "max"),
            "std": config.std("val_accuracy", "max"), "trials": [t.name for t in config.trials]}


def summary_markdown(m: dict[str, Any]) -> str:
    t, b = m["test"], m["baselines"]
    hp = ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in m["hparams"].items()) or "(no searched fields)"
    gap = t["accuracy"] - m["search_best_val_accuracy"]
    rows = [
        "| metric | value |", "| --- | --- |",
        f"| best val accuracy in the search ({m['search_epochs']} epochs) | {m['search_best_val_accuracy']:.4f} |",
        f"| val accuracy after retraining ({m['epochs']} epochs){'' if m['val_held_out'] else ' (val was trained on)'} "
        f"| {m['final_val_accuracy']:.4f} |",
        *([f"| mean best val accuracy over its {m['search_seeds']['runs']} seeds "
           f"| {m['search_seeds']['mean_best_val_accuracy']:.4f} |"] if m.get("search_seeds") else []),
        f"| **test accuracy** | **{t['accuracy']:.4f}** |",
        f"| test top-5 accuracy | {t['top5_accuracy']:.4f} |",
        f"| test macro-F1 | {t['macro_f1']:.4f} |",
        f"| val-to-test gap (test - search best val) | {gap:+.4f} |",
        f"| baseline: majority class | {b['majority_class_accuracy']:.4f} |",
        f"| baseline: uniform random | {b['uniform_random_accuracy']:.4f} |",
    ]
    worst = sorted(((v, k) for k, v in t["per_class_accuracy"].items() if v is not None))[:5]
    return "\n".join([
        f"# Best configuration of `{Path(m['experiment']).name}`", "",
        f"Trial `{m['trial']}`: {hp}. Retrained from scratch on **{m['train_on']}** for {m['epochs']} epochs, "
        "then evaluated once on the untouched test split.", "", *rows, "",
        "Hardest classes (test accuracy): " + ", ".join(f"{k} {v:.2f}" for v, k in worst), "",
    ])


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
    from tune_app.experiment import newest_experiment
    from tune_app.storage import Location

    location = Location(args.experiment if args.experiment else newest_experiment(args.results))
    experiment_dir = location.pull()
    check_search_done(experiment_dir, args.force)
    m = retrain(experiment_dir, args.epochs, args.train_on)
    out = Path(m["output_dir"]).name
    location.push(out)
    t = m["test"]
    print(f"test accuracy {t['accuracy']:.4f}  top-5 {t['top5_accuracy']:.4f}  macro-F1 {t['macro_f1']:.4f}  "
          f"(search best val {m['search_best_val_accuracy']:.4f}; majority-class baseline "
          f"{m['baselines']['majority_class_accuracy']:.4f})")
    print(f"written: {location.child(out)}/ (checkpoint.pt, metrics.json, summary.md, tb/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

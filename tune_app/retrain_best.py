"""`python -m tune_app.retrain_best`: retrain the best trial's configuration from scratch and
evaluate it once on the untouched test split.

The search only ever saw train and val; this is the single place the test split is read.
"""

from __future__ import annotations

import argparse
import json
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


def retrain(experiment_dir: Path, epochs: int | None = None, train_on: str | None = None) -> dict[str, Any]:
    from tqdm import tqdm

    from tune_app.checkpoint import save_checkpoint
    from tune_app.data import Split, load_dataset
    from tune_app.experiment import load_experiment
    from tune_app.metrics import baselines, classification_metrics
    from tune_app.tb import TrialWriter
    from tune_app.training import DeviceSplit, Normalize, evaluate, train

    experiment = load_experiment(experiment_dir)
    best = experiment.best_trial()
    cfg = experiment.trial_config(best)
    epochs = epochs or experiment.meta["retrain"]["epochs"] or cfg.train.epochs
    train_on = train_on or experiment.meta["retrain"]["train_on"]
    data = load_dataset(cfg.dataset)
    train_split = data.train
    if train_on == "train+val":
        train_split = Split(np.concatenate([data.train.images, data.val.images]),
                            np.concatenate([data.train.labels, data.val.labels]))

    out = output_dir(experiment.path)
    hparams = {k.split(".", 1)[-1]: v for k, v in best.hparams.items()}
    writer = TrialWriter(str(out / "tb"), {**hparams, "trial": f"retrain of {best.name}"})
    bar = tqdm(total=epochs, desc=f"retrain {best.name}", unit="epoch")

    def on_epoch_end(metrics: dict[str, Any], state) -> None:
        writer.epoch(metrics)
        bar.set_postfix(loss=f"{metrics['train_loss']:.3f}", acc=f"{metrics['train_accuracy']:.3f}",
                        val_acc=f"{metrics['val_accuracy']:.3f}")
        bar.update(1)

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
        "class_names": list(data.class_names),
        "history": result.history,
        "diverged": result.diverged,
    }
    save_checkpoint(out, {"model": model.state_dict(), "config": cfg.to_dict(), "epoch": epochs,
                          "class_names": list(data.class_names)})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "summary.md").write_text(summary_markdown(metrics))
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
    from tune_app.experiment import EXPERIMENT_FILE, load_experiment
    from tune_app.lock import holder

    meta_file = experiment_dir / EXPERIMENT_FILE
    if not meta_file.is_file():
        return  # retrain's load_experiment says what is wrong with the folder
    running = holder(json.loads(meta_file.read_text()), meta_file)
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

"""`python -m tune_app.check --space FILE`: three cheap checks before a long search.

1. loss at initialisation: the first training batch of the spec's first configuration should
   cost about ln(number of classes); far off means a broken head, labels or normalisation.
2. overfit a tiny subset: 16 training images, no augmentation, no regularisation; a model
   that cannot drive their loss to ~0 has a bug (or a learning rate far too low).
3. learning-rate range test: an exponential lr sweep over training batches; the smoothed
   loss falls, bottoms out and blows up, which brackets the learning rates worth searching.

Results go to <output.results_dir>/checks/<output.name>/ (checks.json, lr_range.png), where
`python -m tune_app.report` finds them for every experiment run from the same spec.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tune_app.errors import UsageError, cli_entry
from tune_app.fileio import save_figure_atomic, write_json_atomic

CHECKS_DIR = "checks"
CHECKS_FILE = "checks.json"
LR_FIGURE = "lr_range.png"
INIT_LOSS_TOLERANCE = 0.15  # relative distance from ln(classes) still counted as a pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tune_app.check", description=__doc__.splitlines()[0])
    p.add_argument("--space", metavar="FILE", required=True, help="experiment spec (YAML) the search will run")
    p.add_argument("--out", metavar="DIR", help="output folder (default: <results_dir>/checks/<name>/)")
    p.add_argument("--overfit-images", type=int, default=16, help="training images to overfit (default 16)")
    p.add_argument("--overfit-steps", type=int, default=500, help="most optimiser steps on them (default 500)")
    p.add_argument("--overfit-loss", type=float, default=0.05, help="loss that counts as overfitted (default 0.05)")
    p.add_argument("--lr-start", type=float, default=1e-6, help="first lr of the range test (default 1e-6)")
    p.add_argument("--lr-end", type=float, default=1.0, help="last lr of the range test (default 1)")
    p.add_argument("--lr-steps", type=int, default=100, help="steps of the range test (default 100)")
    return p


def checks_dir(results_dir: str | Path, name: str) -> Path:
    return Path(results_dir) / CHECKS_DIR / name


# --------------------------------------------------------------------------- setup


def checked_config(spec) -> tuple[Any, dict[str, Any]]:
    """The spec's base config with its first configuration: first grid point / first choice
    values; continuous optuna domains take their (geometric) middle."""
    points = spec.grid_points()
    point = dict(points[0]) if points else {}
    for key, dom in spec.space.items():
        if key in point:
            continue
        lo, hi = dom.values
        if dom.kind == "loguniform":
            point[key] = math.sqrt(lo * hi)
        elif dom.kind == "randint":
            point[key] = int((lo + hi) // 2)
        else:
            point[key] = (lo + hi) / 2
    return spec.base.with_overrides(point), point


@dataclass
class Setup:
    """What every check needs, built once: data on the device and the input transforms."""

    cfg: Any
    train: Any  # DeviceSplit
    num_classes: int
    channels: int
    normalize: Any
    device: Any

    def model(self):
        import torch

        from tune_app.models import build_model

        torch.manual_seed(self.cfg.train.seed)  # every check starts from the same weights
        return build_model(self.cfg.model, self.num_classes, self.channels).to(self.device)

    def batch_order(self, seed: int):
        import torch

        generator = torch.Generator().manual_seed(seed)
        return torch.randperm(len(self.train), generator=generator).to(self.device)


def prepare(cfg) -> Setup:
    import torch

    from tune_app.data import load_dataset
    from tune_app.training import DeviceSplit, Normalize, pick_device

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    # Driving a loss to ~0 fills gradients and Adam's moments with denormal floats, which
    # slow a CPU down by orders of magnitude; flushing them to zero changes nothing else.
    torch.set_flush_denormal(True)
    data = load_dataset(cfg.dataset)
    device = pick_device(cfg.train)
    return Setup(cfg=cfg, train=DeviceSplit.from_split(data.train, device), num_classes=data.num_classes,
                 channels=data.image_shape[0], normalize=Normalize(data.mean, data.std).to(device), device=device)


# --------------------------------------------------------------------------- the checks


def initial_loss(s: Setup) -> dict[str, Any]:
    import torch
    from torch import nn

    from tune_app.augment import Augment

    model = s.model()
    model.train()  # BatchNorm on batch statistics, exactly as the first training step sees it
    index = s.batch_order(s.cfg.train.seed)[:s.cfg.train.batch_size]
    augment = Augment(s.cfg.augment, s.channels).to(s.device)
    with torch.no_grad():
        logits = model(s.normalize(augment(s.train.images[index]))).float()
        loss = nn.functional.cross_entropy(logits, s.train.labels[index]).item()
    expected = math.log(s.num_classes)
    return {"loss": loss, "expected": expected, "relative_error": loss / expected - 1,
            "tolerance": INIT_LOSS_TOLERANCE, "batch_size": int(index.numel()),
            "passed": bool(abs(loss / expected - 1) <= INIT_LOSS_TOLERANCE)}


def overfit(s: Setup, images: int, max_steps: int, target: float) -> dict[str, Any]:
    import torch
    from torch import nn

    from tune_app.augment import Augment
    from tune_app.config import AugmentConfig
    from tune_app.training import make_optimizer, train_step

    model = s.model()
    model.train()
    # Regularisers fight memorisation, and label smoothing alone keeps the loss above ~0.5.
    tc = replace(s.cfg.train, weight_decay=0.0, label_smoothing=0.0)
    optimizer = make_optimizer(model, tc)
    index = s.batch_order(s.cfg.train.seed)[:images]
    x = s.normalize(Augment(AugmentConfig(), s.channels).to(s.device)(s.train.images[index]))
    y = s.train.labels[index]
    loss_fn = nn.CrossEntropyLoss()
    losses: list[float] = []

    def keep_going(logits, loss) -> bool:
        if not torch.isfinite(loss):
            return False
        losses.append(loss.item())
        return losses[-1] >= target

    for _ in range(max_steps):
        if not train_step(model, optimizer, loss_fn, x, y, s.cfg.train.amp, keep_going)[2]:
            break
    with torch.no_grad():
        logits = model(x).float()
        final_loss = loss_fn(logits, y).item()
        accuracy = (logits.argmax(1) == y).float().mean().item()
    return {"images": int(index.numel()), "steps": len(losses), "max_steps": max_steps, "target_loss": target,
            "optimizer": tc.optimizer, "lr": tc.lr, "final_loss": final_loss, "final_accuracy": accuracy,
            "losses": losses, "passed": bool(math.isfinite(final_loss) and final_loss < target)}


def lr_range_test(s: Setup, start: float, end: float, steps: int, beta: float = 0.9,
                  stop_factor: float = 4.0) -> dict[str, Any]:
    import torch
    from torch import nn

    from tune_app.augment import Augment
    from tune_app.training import make_optimizer, train_step

    model = s.model()
    model.train()
    optimizer = make_optimizer(model, replace(s.cfg.train, lr=start))
    augment = Augment(s.cfg.augment, s.channels).to(s.device)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=s.cfg.train.label_smoothing)
    batch = s.cfg.train.batch_size
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    average, lowest, stopped = 0.0, math.inf, "end of sweep"
    order, position, epoch = s.batch_order(s.cfg.train.seed), 0, 0
    for step in range(steps):
        lr = start * (end / start) ** (step / max(steps - 1, 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        if position + min(batch, len(order)) > len(order):  # a short last batch is noisier: reshuffle
            epoch += 1
            order, position = s.batch_order(s.cfg.train.seed + epoch), 0
        index = order[position:position + batch]
        position += batch
        _, loss, updated = train_step(model, optimizer, loss_fn, s.normalize(augment(s.train.images[index])),
                                      s.train.labels[index], s.cfg.train.amp, lambda _, loss: bool(torch.isfinite(loss)))
        if not updated:
            stopped = "loss not finite"
            break
        # Bias-corrected exponential moving average, so the first steps are not pulled to 0.
        # beta 0.9 lags ~10 steps (0.6 decades of lr over 100 steps); fastai's 0.98 lags
        # ~50 steps, which moves the minimum, and so the suggestion, several times too high.
        average = beta * average + (1 - beta) * loss.item()
        value = average / (1 - beta ** (step + 1))
        lrs.append(lr)
        losses.append(loss.item())
        smoothed.append(value)
        lowest = min(lowest, value)
        if step > 10 and value > stop_factor * lowest:
            stopped = f"smoothed loss > {stop_factor:g}x its minimum"
            break
    return {"start": start, "end": end, "steps": steps, "beta": beta, "stopped": stopped,
            "lrs": lrs, "losses": losses, "smoothed": smoothed,
            **suggest_lr(lrs, smoothed, s.cfg.train.optimizer)}


# Where the working lr sits below the range test's minimum, in decades. Smith's rule for SGD
# takes the decade just below it. Adam normalises each step by the gradient's running scale,
# so a sweep of 100 steps tolerates lrs that diverge over many epochs: on the quickstart the
# minimum lies at 0.07 while the search's winner is 3e-3, a decade and a half lower. Hence a
# decade lower still for adam/adamw.
WINDOW_DECADES = {"sgd": (1, 0), "adam": (2, 1), "adamw": (2, 1)}


def suggest_lr(lrs: list[float], smoothed: list[float], optimizer: str = "sgd") -> dict[str, Any]:
    """lr at the smoothed-loss minimum, lr of steepest descent before it, and a window of
    learning rates to search: one decade wide, WINDOW_DECADES below the minimum."""
    if len(smoothed) < 3:
        return {"lr_at_min_loss": None, "lr_steepest": None, "window": None}
    i_min = min(range(len(smoothed)), key=smoothed.__getitem__)
    slopes = [(smoothed[i + 1] - smoothed[i]) / (math.log10(lrs[i + 1]) - math.log10(lrs[i]))
              for i in range(max(i_min, 1))]
    i_steep = min(range(len(slopes)), key=slopes.__getitem__)
    lr_min = lrs[i_min]
    low, high = WINDOW_DECADES[optimizer]
    return {"lr_at_min_loss": lr_min, "min_smoothed_loss": smoothed[i_min], "lr_steepest": lrs[i_steep],
            "window": [lr_min / 10 ** low, lr_min / 10 ** high],
            "window_rule": f"{optimizer}: [min / {10 ** low:g}, min / {10 ** high:g}]"}


def searched_lrs(spec) -> dict[str, Any]:
    dom = spec.space.get("train.lr")
    if dom is None:
        return {"kind": "fixed", "values": [spec.base.train.lr]}
    return {"kind": dom.kind, "values": list(dom.values)}


def lr_position(lr: float, window: list[float] | None) -> str:
    if not window:
        return "unknown"
    return "below" if lr < window[0] else "above" if lr > window[1] else "inside"


# --------------------------------------------------------------------------- output


def plot_lr_range(result: dict[str, Any], searched: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    lrs, smoothed = result["lrs"], result["smoothed"]
    ax.plot(lrs, result["losses"], color="tab:blue", alpha=0.3, lw=1, label="loss per batch")
    ax.plot(lrs, smoothed, color="tab:blue", lw=2, label=f"smoothed (EMA {result['beta']})")
    if result["window"]:
        lo, hi = result["window"]
        ax.axvspan(lo, hi, color="tab:green", alpha=0.15, label=f"suggested window [{lo:.2g}, {hi:.2g}]")
        ax.axvline(result["lr_at_min_loss"], color="tab:red", ls="--", lw=1,
                   label=f"min smoothed loss at lr {result['lr_at_min_loss']:.2g}")
        ax.axvline(result["lr_steepest"], color="tab:green", ls=":", lw=1.5,
                   label=f"steepest descent at lr {result['lr_steepest']:.2g}")
    values = searched["values"]
    if searched["kind"] in ("uniform", "loguniform"):
        ax.axvspan(values[0], values[1], color="tab:gray", alpha=0.12, hatch="//", label="searched lr range")
    else:
        for i, lr in enumerate(values):
            ax.axvline(lr, color="tab:gray", lw=1, label=("searched lr" if searched["kind"] != "fixed"
                                                          else "spec's lr") if i == 0 else None)
    if smoothed:
        # The last steps explode by design; keep the interesting part readable.
        top = max(smoothed[0], max(smoothed[: smoothed.index(min(smoothed)) + 1])) * 1.3
        ax.set_ylim(0, top)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(f"Learning-rate range test ({len(lrs)} steps, stopped: {result['stopped']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    save_figure_atomic(fig, path, dpi=120)


def run_checks(spec, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    cfg, point = checked_config(spec)
    setup = prepare(cfg)
    began = time.perf_counter()
    lr_range = lr_range_test(setup, args.lr_start, args.lr_end, args.lr_steps)
    searched = searched_lrs(spec)
    searched["position"] = [lr_position(v, lr_range["window"]) for v in searched["values"]]
    result = {
        "spec": str(spec.path),
        "name": spec.output.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "dataset": cfg.dataset.name,
        "num_classes": setup.num_classes,
        "device": str(setup.device),
        "checked_point": point,
        # The spec's base config, so report can tell whether these checks match its experiment.
        "base": spec.base.to_dict(),
        "initial_loss": initial_loss(setup),
        "overfit": overfit(setup, args.overfit_images, args.overfit_steps, args.overfit_loss),
        "lr_range": lr_range,
        "searched_lr": searched,
    }
    result["seconds"] = time.perf_counter() - began
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / CHECKS_FILE, result, indent=2)
    plot_lr_range(lr_range, searched, out / LR_FIGURE)
    return result


def summary_lines(r: dict[str, Any]) -> list[str]:
    """Human-readable results; `report` renders the same lines into report.md."""
    init, fit, lr = r["initial_loss"], r["overfit"], r["lr_range"]
    verdict = {True: "pass", False: "FAIL"}
    lines = [
        f"loss at init: {init['loss']:.4f} vs ln({r['num_classes']}) = {init['expected']:.4f} "
        f"({init['relative_error']:+.1%}, tolerance {init['tolerance']:.0%}): {verdict[init['passed']]}",
        f"overfit {fit['images']} images ({fit['optimizer']}, lr {fit['lr']:g}, no augmentation or decay): "
        f"loss {fit['final_loss']:.4f}, accuracy {fit['final_accuracy']:.3f} after {fit['steps']} steps "
        f"(target < {fit['target_loss']:g} within {fit['max_steps']}): {verdict[fit['passed']]}",
    ]
    if lr["window"]:
        lo, hi = lr["window"]
        searched = r["searched_lr"]
        where = ", ".join(f"{v:g} {p}" for v, p in zip(searched["values"], searched["position"]))
        lines.append(f"lr range test: smoothed loss lowest at lr {lr['lr_at_min_loss']:.3g}, steepest descent at "
                     f"lr {lr['lr_steepest']:.3g}; suggested lr window [{lo:.3g}, {hi:.3g}] "
                     f"({lr.get('window_rule', 'sgd: [min / 10, min]')}); searched lr ({searched['kind']}): {where}")
        lines.append(f"  read it as: lrs above {lr['lr_at_min_loss']:.3g} made the loss climb within "
                     f"{len(lr['lrs'])} steps (solid evidence against them); the window is a starting "
                     "range from one short sweep, not a verdict: the search decides")
    else:
        lines.append(f"lr range test: no suggestion ({len(lr['lrs'])} steps before '{lr['stopped']}')")
    return lines


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tune_app.spec import load_spec

    if args.overfit_images < 2:
        raise UsageError("needs at least 2 images (BatchNorm)", key="--overfit-images", fix="pass e.g. 16")
    if not 0 < args.lr_start < args.lr_end:
        raise UsageError(f"needs 0 < --lr-start < --lr-end, got {args.lr_start:g} and {args.lr_end:g}",
                         key="--lr-start", fix="e.g. --lr-start 1e-6 --lr-end 1")
    if args.lr_steps < 3 or args.overfit_steps < 1:
        raise UsageError("too few steps", key="--lr-steps/--overfit-steps", fix="use the defaults")
    spec = load_spec(args.space)
    out = Path(args.out) if args.out else checks_dir(spec.output.results_dir, spec.output.name)
    result = run_checks(spec, out, args)
    point = ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in result["checked_point"].items())
    print(f"checks of {spec.path} ({result['dataset']}, {result['num_classes']} classes, {result['device']}; "
          f"first configuration: {point or 'no searched fields'})")
    for line in summary_lines(result):
        print("  " + line)
    print(f"written: {out}/ ({CHECKS_FILE}, {LR_FIGURE}); `python -m tune_app.report` includes them")
    return 0 if result["initial_loss"]["passed"] and result["overfit"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

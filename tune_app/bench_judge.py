"""`python -m tune_app.bench --judge-ranking DIR [DIR ...]`: which `scheduler.judge` ranks better?

ASHA stops a trial on one comparison at a rung. What matters is whether the judged value at
that rung (last, best so far, or ema) orders the configurations as their end of training does.
Read from searches whose trials all ran to the final epoch (a grid without a scheduler), so
every trial's value at every rung is known: for each judge kind and each rung a trial could
be cut at, the Spearman rank correlation between the judged values and the final-epoch
values, and whether the configuration best at the final epoch is still in the top
1/reduction_factor there (what ASHA keeps). The arithmetic is tune_app.judge's own.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Optional, Sequence

from tune_app.errors import UsageError
from tune_app.experiment import Experiment, load_experiment
from tune_app.judge import Judge
from tune_app.selection import mean_interval

KINDS = ("last", "best", "ema")
EMA = 0.5  # scheduler.ema's default
KEEP_FRACTION_OF = 3  # ASHA's reduction_factor: it keeps the top third at a rung


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, smallest first; tied values share the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start:end + 1]:
            out[i] = (start + end) / 2 + 1
        start = end + 1
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Pearson correlation of the ranks; None when either side has a single value throughout."""
    if len(x) != len(y):
        raise ValueError("x and y need the same length")
    rx, ry = ranks(x), ranks(y)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def judged_at(values: Sequence[float], kind: str, mode: str, rung: int, ema: float = EMA) -> float:
    """The judged value after `rung` epochs whose metric was `values` (epoch 1 first)."""
    judge = Judge(kind=kind, mode=mode, ema=ema)
    value = None
    for metric in values[:rung]:
        value = judge.update(metric)
    return value


def top_kept(judged: Sequence[float], final: Sequence[float], mode: str, keep_of: int = KEEP_FRACTION_OF) -> bool:
    """Is the configuration best at the final epoch among the top len/keep_of by judged value?

    A tie at the cut keeps it: fewer than len/keep_of configurations must judge strictly better.
    """
    better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
    winner = max(range(len(final)), key=lambda i: final[i] if mode == "max" else -final[i])
    ahead = sum(1 for v in judged if better(v, judged[winner]))
    return ahead < len(judged) / keep_of


def curves(experiment: Experiment) -> tuple[list[list[float]], int]:
    """Per trial, the metric at epochs 1..E, where E is the experiment's train.epochs; only trials
    that reached it with a finite value each epoch (a stopped trial has no final value)."""
    final = experiment.max_epochs
    out = []
    for trial in experiment.trials:
        by_epoch = {int(h["epoch"]): h.get(experiment.metric) for h in trial.history}
        values = [by_epoch.get(e) for e in range(1, final + 1)]
        if all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            out.append([float(v) for v in values])
    return out, final


def judge_ranking(experiment: Experiment, ema: float = EMA) -> dict[str, Any]:
    """Spearman and top-kept for every judge kind at every rung before the final epoch."""
    values, final = curves(experiment)
    if final < 2 or len(values) < 3:
        raise UsageError(f"needs at least 3 trials that ran all of {final} epochs (>= 2), found {len(values)}",
                         file=str(experiment.path),
                         fix="pass searches without a scheduler (every trial trains train.epochs)")
    mode = experiment.mode
    finals = [v[-1] for v in values]
    rows = []
    for rung in range(1, final):
        for kind in KINDS:
            judged = [judged_at(v, kind, mode, rung, ema) for v in values]
            rows.append({"rung": rung, "kind": kind, "spearman": spearman(judged, finals),
                         "top_kept": top_kept(judged, finals, mode)})
    return {"experiment": str(experiment.path), "metric": experiment.metric, "trials": len(values),
            "final_epoch": final, "rows": rows}


def compare_judges(paths: Sequence[str | Path], ema: float = EMA) -> dict[str, Any]:
    """judge_ranking over several searches: per (rung, kind) the mean Spearman and how often the
    final winner was kept, and which kind ranks better than `last`."""
    per_experiment = [judge_ranking(load_experiment(p), ema) for p in paths]
    summary = []
    for rung, kind in sorted({(r["rung"], r["kind"]) for e in per_experiment for r in e["rows"]},
                             key=lambda rk: (rk[0], KINDS.index(rk[1]))):
        cells = [r for e in per_experiment for r in e["rows"] if (r["rung"], r["kind"]) == (rung, kind)]
        rhos = [c["spearman"] for c in cells if c["spearman"] is not None]
        summary.append({"rung": rung, "kind": kind, "spearman_mean": statistics.fmean(rhos) if rhos else None,
                        "top_kept": sum(c["top_kept"] for c in cells), "searches": len(cells)})
    return {"ema": ema, "experiments": per_experiment, "summary": summary, "better": better_judge(per_experiment)}


def better_judge(per_experiment: list[dict[str, Any]]) -> dict[str, Any]:
    """Each kind against `last` (what ASHA compared before the option existed), search by search
    like the race compares finalists seed by seed: the mean over searches of how much higher its
    Spearman is, with a 95% interval. A kind ranks better only when the whole interval is above
    0; otherwise it is tied with `last`, which stays. Only rungs from 2 count: after one epoch
    last, best and ema are the same number."""
    against_last = {}
    for kind in KINDS[1:]:
        diffs = []
        for e in per_experiment:
            rows = {(r["rung"], r["kind"]): r["spearman"] for r in e["rows"] if r["rung"] >= 2}
            pairs = [(rows[(rung, kind)], rho) for (rung, k), rho in rows.items()
                     if k == "last" and rho is not None and rows.get((rung, kind)) is not None]
            if pairs:
                diffs.append(statistics.fmean(a - b for a, b in pairs))
        against_last[kind] = {"difference": statistics.fmean(diffs) if diffs else None,
                              "interval": mean_interval(diffs), "searches": len(diffs)}
    winners = [k for k, c in against_last.items() if c["interval"] is not None and c["interval"][0] > 0]
    kind = max(winners, key=lambda k: against_last[k]["difference"]) if winners else "last"
    return {"kind": kind, "tie": not winners, "against_last": against_last}


def table(result: dict[str, Any]) -> str:
    lines = [f"judge ranking (ema {result['ema']}): Spearman of the judged value at a rung vs the final epoch's "
             f"value; kept = the final winner in the top 1/{KEEP_FRACTION_OF} there"]
    kinds = "  ".join(f"{k:>12}" for k in KINDS)
    lines.append(f"{'search':<36} {'trials':>6} {'rung':>4}  {kinds}")
    for e in result["experiments"]:
        name = Path(e["experiment"]).name
        for rung in sorted({r["rung"] for r in e["rows"]}):
            cells = {r["kind"]: r for r in e["rows"] if r["rung"] == rung}
            text = "  ".join(f"{_rho(cells[k]['spearman']):>7} {'kept' if cells[k]['top_kept'] else 'cut':>4}"
                             for k in KINDS)
            lines.append(f"{name:<36} {e['trials']:>6} {rung:>4}  {text}")
    for rung in sorted({s["rung"] for s in result["summary"]}):
        cells = {s["kind"]: s for s in result["summary"] if s["rung"] == rung}
        text = "  ".join(f"{_rho(cells[k]['spearman_mean']):>7} {cells[k]['top_kept']:>2}/{cells[k]['searches']}"
                         for k in KINDS)
        lines.append(f"{'mean over searches':<36} {'':>6} {rung:>4}  {text}")
    better = result["better"]
    for kind, c in better["against_last"].items():
        interval = "no interval (one search)" if c["interval"] is None else \
            f"95% interval [{c['interval'][0]:+.3f}, {c['interval'][1]:+.3f}]"
        difference = "-" if c["difference"] is None else f"{c['difference']:+.3f}"
        lines.append(f"{kind} - last, Spearman from rung 2, over {c['searches']} searches: {difference}, {interval}")
    lines.append(f"ranks better: {better['kind']}" if not better["tie"] else
                 "ranks better: none (every interval includes 0): last stays")
    return "\n".join(lines)


def _rho(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:+.3f}"

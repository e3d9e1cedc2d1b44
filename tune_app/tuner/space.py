"""The spec's search space as Ray Tune's param_space (and PBT's mutations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tune_app.hparams import encode_choice, unwrap, wrap

if TYPE_CHECKING:
    from tune_app.spec import Domain, ExperimentSpec


def tune_domain(dom: "Domain"):
    from ray import tune

    if dom.kind in ("choice", "grid"):
        return tune.choice([encode_choice(v) for v in dom.values])
    return {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}[dom.kind](*dom.values)


def param_space(spec: "ExperimentSpec", skipped: frozenset = frozenset()) -> dict[str, Any]:
    """skipped: point keys (hparams.point_key) a warm-started grid already has results for."""
    from ray import tune

    from tune_app.hparams import point_key
    from tune_app.tuner.searchers import enumerates

    if enumerates(spec):
        # Tune's own grid expansion, over the points left after dropping unbuildable models
        # (and those an earlier experiment already ran).
        return wrap(tune.grid_search([p for p in spec.trial_points() if point_key(p) not in skipped]))
    return wrap({key: tune_domain(dom) for key, dom in spec.space.items()})


def mutation(dom: "Domain"):
    """What PBT draws a mutated value from: a list (it steps to a neighbouring value) for a
    grid or choice, the domain itself for a range."""
    if dom.kind in ("choice", "grid"):
        return [encode_choice(v) for v in dom.values]
    return tune_domain(dom)


def mutation_bounds(domains: dict[str, "Domain"]) -> dict[str, tuple[Any, Any]]:
    """(lowest, highest) value of each range domain among `domains` (lists need none: PBT steps
    between their values)."""
    out = {}
    for key, dom in domains.items():
        if dom.kind in ("uniform", "loguniform"):
            out[key] = (dom.values[0], dom.values[1])
        elif dom.kind == "randint":
            out[key] = (dom.values[0], dom.values[1] - 1)  # tune.randint excludes its upper bound
    return out


def within_bounds(bounds: dict[str, tuple[Any, Any]], config: dict[str, Any]) -> dict[str, Any]:
    """PBT's custom_explore_fn: its mutated trial config, each range value clipped into bounds."""
    hparams = unwrap(config) or {}
    for key, (lo, hi) in bounds.items():
        if key in hparams:
            hparams[key] = min(max(hparams[key], lo), hi)
    return config

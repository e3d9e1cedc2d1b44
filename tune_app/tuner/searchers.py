"""Search algorithms: name -> entry (`search.algorithm`), each one decorated class.

An entry says which domains its spec may use, checks the spec before Ray starts, builds the
Ray search algorithm, says what it makes of earlier trials (--warm-start) and describes itself
in --dry-run. Ray and Optuna are imported only when a searcher is built, so the spec can be
checked without them.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from tune_app.errors import UsageError
from tune_app.registry import Registry

if TYPE_CHECKING:
    from tune_app.spec import ExperimentSpec
    from tune_app.warm import WarmStart

SEARCHERS: Registry[type] = Registry("search algorithm", "search.algorithm")
SAMPLING_DOMAINS = ("choice", "uniform", "loguniform", "randint")
Error = Callable[..., UsageError]  # spec's error(key, message, fix) with the YAML line


class Searcher:
    """The base of every entry: a sampler over the spec's domains."""

    domains: tuple[str, ...] = SAMPLING_DOMAINS
    # Whether every configuration is enumerated up front (and an unbuildable one can be dropped);
    # a sampler may draw any combination, so one unbuildable combination is fatal for it.
    enumerates = False

    @staticmethod
    def domain_error(kind: str) -> tuple[str, str]:
        """(message, fix) for a domain this searcher cannot use."""
        return (f"this search algorithm samples values; it cannot use '{kind}'",
                "write 'choice: [...]' or set search.algorithm: grid")

    @staticmethod
    def check(spec: "ExperimentSpec", error: Error) -> None:
        pass

    @staticmethod
    def build(spec: "ExperimentSpec", experiment_dir: Path, warm: "Optional[WarmStart]" = None):
        """Ray's search algorithm; None = Tune's own grid/random variant generator."""
        return None

    @staticmethod
    def warm_start(spec: "ExperimentSpec", warm: "WarmStart") -> "WarmStart":
        """What this searcher takes over of the earlier trials (tune_app.warm), before Ray starts.
        A searcher that cannot learn from them, nor skip them, refuses: a warm start that
        silently changed nothing would be worse."""
        raise UsageError(f"search.algorithm {spec.search.algorithm} draws its configurations without looking at "
                         "results, so earlier trials cannot steer it", file=spec.path, key="--warm-start",
                         fix="set search.algorithm: optuna (its study learns from them) or grid (it skips the "
                             "points already run), or leave out --warm-start")

    @staticmethod
    def num_samples(spec: "ExperimentSpec") -> int:
        return spec.search.num_samples


def _no_sampler(spec: "ExperimentSpec", error: Error) -> None:
    if spec.search.sampler is not None:
        raise error("search.sampler", f"only applies to search.algorithm: optuna, not {spec.search.algorithm}",
                    "remove search.sampler, or set search.algorithm: optuna")


@SEARCHERS.register("grid")
class Grid(Searcher):
    domains = ("grid",)
    enumerates = True

    @staticmethod
    def domain_error(kind):
        return (f"search.algorithm grid needs 'grid:' lists, got '{kind}'",
                "write 'grid: [...]' or set search.algorithm: optuna (or random)")

    @staticmethod
    def check(spec, error):
        from tune_app.spec import SEED_KEY

        _no_sampler(spec, error)
        if spec.search.num_samples > 1 and SEED_KEY in spec.space:
            raise error("search.num_samples", "with a grid, num_samples runs each configuration with "
                        "seeds train.seed, +1, ...; train.seed is also searched",
                        "set search.num_samples: 1 to keep the train.seed grid, or drop the train.seed grid")

    @staticmethod
    def num_samples(spec):
        return 1  # a grid's runs per configuration are already in its points (one per seed)

    @staticmethod
    def warm_start(spec, warm):
        from dataclasses import replace

        from tune_app.hparams import point_key

        # One earlier run per point (warm.trials lists completed runs first), as the grid
        # itself runs each point once per seed.
        points = {point_key(p) for p in spec.trial_points()}
        taken: dict[str, object] = {}
        for trial in warm.trials:
            key = point_key(trial.hparams)
            if key in points:
                taken.setdefault(key, trial)
        left = len(warm.trials) - len(taken)
        notes = [f"warm start: {left} earlier trial(s) not taken over: not a point of this grid, or their "
                 "point has another earlier run already"] if left else []
        return replace(warm, trials=list(taken.values()), notes=warm.notes + notes, skipped=frozenset(taken))

    @staticmethod
    def describe(spec):
        seeds = spec.seeds
        return (f"grid: {spec.grid.size()} configurations x {len(seeds)} seed(s) "
                f"(train.seed {', '.join(map(str, seeds))}) = {spec.trial_count()} trials")


@SEARCHERS.register("random")
class Random(Searcher):
    @staticmethod
    def check(spec, error):
        _no_sampler(spec, error)

    @staticmethod
    def build(spec, experiment_dir, warm=None):
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # Seeded: the same spec draws the same configurations.
        return BasicVariantGenerator(random_state=spec.search.seed)

    @staticmethod
    def describe(spec):
        return f"random search (seed {spec.search.seed}): {spec.trial_count()} trials over"


# search.sampler -> Optuna's sampler class; every one is seeded by search.seed.
OPTUNA_SAMPLERS = {"tpe": "TPESampler", "gp": "GPSampler", "cmaes": "CmaEsSampler", "random": "RandomSampler",
                   "qmc": "QMCSampler"}


@SEARCHERS.register("optuna")
class Optuna(Searcher):
    @staticmethod
    def domain_error(kind):
        return ("optuna samples values; it cannot run a grid", "write 'choice: [...]' or set search.algorithm: grid")

    @staticmethod
    def sampler_name(spec) -> str:
        return spec.search.sampler or "tpe"

    @staticmethod
    def build(spec, experiment_dir, warm=None):
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        from tune_app.hparams import ray_column

        with warnings.catch_warnings():
            # QMC (and GP in some Optuna releases) warn that their interface may change: noise
            # on the console of a user who picked the sampler in the spec.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = getattr(optuna.samplers, OPTUNA_SAMPLERS[Optuna.sampler_name(spec)])(seed=spec.search.seed)
        # The study lives next to the trials so that `optuna-dashboard sqlite:///...` can open it.
        storage = optuna.storages.RDBStorage(f"sqlite:///{(Path(experiment_dir) / 'optuna.db').resolve()}")
        if spec.search.objectives:
            from tune_app.judge import judge_settings
            from tune_app.metric_names import natural_mode
            from tune_app.tuner.optuna_objectives import TwoObjectiveOptunaSearch

            # The study sees what the scheduler sees (the judged column), then the cost, lower better.
            cost = spec.search.objectives[1]
            return TwoObjectiveOptunaSearch(metric=[judge_settings(spec)["column"], cost],
                                            mode=[spec.search.mode, natural_mode(cost)], sampler=sampler,
                                            storage=storage, study_name=Path(experiment_dir).name)
        earlier = warm.trials if warm else []
        # Ray adds these to the study as COMPLETE trials once the Tuner hands it the space; its
        # parameter names are the flattened config's ("hp/train.lr").
        return OptunaSearch(sampler=sampler, storage=storage, study_name=Path(experiment_dir).name,
                            points_to_evaluate=[{ray_column(k): v for k, v in t.hparams.items()}
                                                for t in earlier] or None,
                            evaluated_rewards=[t.value for t in earlier] or None)

    @staticmethod
    def warm_start(spec, warm):
        from dataclasses import replace

        from tune_app.hparams import encode_choice
        from tune_app.judge import Judge

        if spec.search.objectives:
            # A two-direction study needs each earlier trial's cost as well, which a one-objective
            # search never measured: refused rather than silently dropped.
            raise UsageError("a two-objective Optuna study cannot take earlier trials as evaluated points",
                             file=spec.path, key="--warm-start",
                             fix="leave out --warm-start, or drop search.objectives")
        taken, outside, no_value = [], [], 0
        for trial in warm.trials:
            hp = {k: encode_choice(v) for k, v in trial.hparams.items()}
            key = next((k for k, v in hp.items() if not in_domain(spec.space[k], v)), None)
            if key is not None:
                outside.append(f"{key}={trial.hparams[key]}")
                continue
            # The value the study would have been told had the trial run here: the judged
            # column (scheduler.judge) at its last epoch, as Ray tells Optuna of its own trials,
            # so earlier and new trials stand on one scale.
            judge = Judge(spec.scheduler.judge, spec.search.mode, spec.scheduler.ema)
            value = None
            for row in trial.record.history:
                value = judge.update(row.get(spec.search.metric))
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                no_value += 1
                continue
            taken.append(replace(trial, hparams=hp, value=float(value)))
        notes = []
        if outside:
            notes.append(f"warm start: {len(outside)} earlier trial(s) left out of the study: outside this "
                         f"search's domains ({', '.join(outside[:3])}{', ...' if len(outside) > 3 else ''})")
        if no_value:
            notes.append(f"warm start: {no_value} earlier trial(s) left out of the study: no finite "
                         f"{spec.search.metric} at their last epoch")
        return replace(warm, trials=taken, notes=warm.notes + notes)

    @staticmethod
    def describe(spec):
        return f"optuna {Optuna.sampler_name(spec)} sampler (seed {spec.search.seed}): {spec.trial_count()} trials over"


def in_domain(dom, value) -> bool:
    """Whether a search over `dom` (a spec Domain) could propose `value` (choices encoded)."""
    from tune_app.hparams import encode_choice

    if dom.kind in ("choice", "grid"):
        return value in [encode_choice(v) for v in dom.values]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    lo, hi = dom.values
    if dom.kind == "randint":  # Ray's randint excludes hi
        return isinstance(value, int) and lo <= value < hi
    return lo <= value <= hi


def warm_start(spec: "ExperimentSpec", warm: "WarmStart") -> "WarmStart":
    """The searcher's take on the earlier trials (raises when it cannot use them)."""
    return SEARCHERS[spec.search.algorithm].warm_start(spec, warm)


def check_searcher(spec: "ExperimentSpec", error: Error) -> None:
    """The searcher's rules: its domains and its own checks (called by load_spec)."""
    searcher = SEARCHERS[spec.search.algorithm]
    for key, dom in spec.space.items():
        if dom.kind not in searcher.domains:
            message, fix = searcher.domain_error(dom.kind)
            raise error(f"{key}.{dom.kind}", message, fix)
    searcher.check(spec, error)


def describe(spec: "ExperimentSpec") -> str:
    """--dry-run's line for the searcher."""
    return SEARCHERS[spec.search.algorithm].describe(spec)


def enumerates(spec: "ExperimentSpec") -> bool:
    return SEARCHERS[spec.search.algorithm].enumerates


def describe_budget(spec: "ExperimentSpec") -> str:
    """--dry-run's words for what the scheduler may spend or stop."""
    from tune_app.tuner.schedulers import SCHEDULERS

    return SCHEDULERS[spec.scheduler.name].budget(spec)

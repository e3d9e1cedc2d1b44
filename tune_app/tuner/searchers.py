"""Search algorithms: name -> entry (`search.algorithm`), each one decorated class.

An entry says which domains its spec may use, checks the spec before Ray starts, builds the
Ray search algorithm and describes itself in --dry-run. Ray and Optuna are imported only when a
searcher is built, so the spec can be checked without them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from tune_app.errors import UsageError
from tune_app.registry import Registry

if TYPE_CHECKING:
    from tune_app.spec import ExperimentSpec

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
    def build(spec: "ExperimentSpec", experiment_dir: Path):
        """Ray's search algorithm; None = Tune's own grid/random variant generator."""
        return None

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
                "write 'grid: [...]' or set search.algorithm: random or optuna")

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
    def build(spec, experiment_dir):
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
    def build(spec, experiment_dir):
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        with warnings.catch_warnings():
            # QMC (and GP in some Optuna releases) warn that their interface may change: noise
            # on the console of a user who picked the sampler in the spec.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = getattr(optuna.samplers, OPTUNA_SAMPLERS[Optuna.sampler_name(spec)])(seed=spec.search.seed)
        # The study lives next to the trials so that `optuna-dashboard sqlite:///...` can open it.
        storage = optuna.storages.RDBStorage(f"sqlite:///{(Path(experiment_dir) / 'optuna.db').resolve()}")
        return OptunaSearch(sampler=sampler, storage=storage, study_name=Path(experiment_dir).name)

    @staticmethod
    def describe(spec):
        return f"optuna {Optuna.sampler_name(spec)} sampler (seed {spec.search.seed}): {spec.trial_count()} trials over"


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

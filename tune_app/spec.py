"""The experiment spec: one YAML file, checked completely before Ray starts.

Every fixed value and every search domain is type-checked against the dataclasses in
`config.py`; errors name the file, the YAML line, the dotted key and the fix, so a typo is
caught at start-up instead of inside trial 17.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union


from tune_app.config import (
    SEARCHABLE_SECTIONS,
    SECTIONS,
    OutputConfig,
    ResourcesConfig,
    RetrainConfig,
    SchedulerConfig,
    SearchConfig,
    SelectConfig,
    TrialConfig,
)
from tune_app.errors import UsageError, did_you_mean
from tune_app.grid import Grid, build_grid
from tune_app.names import check_name
from tune_app.spec_yaml import read_yaml

DOMAIN_KINDS = ("grid", "choice", "uniform", "loguniform", "randint")
SEED_KEY = "train.seed"  # grid runs of one configuration differ only in this field


@dataclass(frozen=True)
class Domain:
    """A searched field: `grid`/`choice` hold values, the others a (lo, hi) range."""

    kind: str
    values: tuple

    def describe(self) -> str:
        if self.kind in ("grid", "choice"):
            return f"{self.kind} {list(self.values)}"
        return f"{self.kind} [{self.values[0]}, {self.values[1]}]"


@dataclass
class ExperimentSpec:
    path: str
    base: TrialConfig
    space: dict[str, Domain]
    search: SearchConfig
    scheduler: SchedulerConfig
    resources: ResourcesConfig
    output: OutputConfig
    retrain: RetrainConfig
    grid: Grid = field(default_factory=lambda: Grid({}, {}))  # the discrete domains, checked by load_spec
    select: SelectConfig = field(default_factory=SelectConfig)

    def grid_points(self) -> list[dict[str, Any]]:
        """Valid grid points (dotted key -> value); invalid ones are in `self.dropped`."""
        return list(self.grid.points())

    @property
    def dropped(self) -> list[tuple[dict[str, Any], str]]:
        """Every grid point left out, with the reason (see `grid.dropped_architectures` for a summary)."""
        return list(self.grid.dropped_points())

    def trial_count(self) -> int:
        """Trials this search launches, counted without listing them."""
        if self.search.algorithm == "grid":
            return self.grid.size() * len(self.seeds)
        return self.search.num_samples

    @property
    def seeds(self) -> list[int]:
        """train.seed of each run of a grid configuration (search.num_samples of them)."""
        if self.search.algorithm != "grid":
            return [self.base.train.seed]
        return [self.base.train.seed + i for i in range(self.search.num_samples)]

    def trial_points(self) -> list[dict[str, Any]]:
        """One entry per grid trial: each configuration once per seed.

        A repeat with the same seed would train the same weights on the same batches, so the
        runs of a configuration differ in train.seed; the ranking averages them.
        """
        points = self.grid_points()
        if len(self.seeds) == 1:
            return points
        return [{**point, SEED_KEY: seed} for point in points for seed in self.seeds]

    def final_epochs(self) -> int:
        return self.retrain.epochs or self.base.train.epochs


# --------------------------------------------------------------------------- type checking


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    if origin is Union:
        return " or ".join(_type_name(a) for a in typing.get_args(hint) if a is not type(None))
    if origin is list:
        return f"list of {_type_name(typing.get_args(hint)[0])}"
    return getattr(hint, "__name__", str(hint))


class _BadValue(Exception):
    pass


def coerce(value: Any, hint: Any) -> Any:
    """Return `value` as type `hint` or raise _BadValue (bool is never an int here)."""
    origin = typing.get_origin(hint)
    if origin is Union:
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg)
            except _BadValue:
                pass
        raise _BadValue
    if origin is Literal:
        if value in typing.get_args(hint):
            return value
        raise _BadValue
    if origin is list:
        if not isinstance(value, list):
            raise _BadValue
        (item,) = typing.get_args(hint)
        return [coerce(v, item) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _BadValue
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _BadValue
    if hint is float:
        # PyYAML reads 1e-3 (no dot) as a string; accept it as the number everyone means.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise _BadValue from None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise _BadValue
    if hint is str:
        if isinstance(value, str):
            return value
        raise _BadValue
    raise TypeError(f"unsupported field type {hint!r}")



# --------------------------------------------------------------------------- semantic checks

# (dotted key, predicate on the value, message, fix): checked on fixed values and every
# value a domain can produce, so a bad learning rate in a grid fails at start-up.
_VALUE_RULES: list[tuple[str, typing.Callable[[Any], bool], str, str]] = [
    ("train.lr", lambda v: v > 0, "must be > 0", "use a positive learning rate such as 1e-3"),
    ("train.weight_decay", lambda v: v >= 0, "must be >= 0", "use 0 to disable weight decay"),
    ("train.epochs", lambda v: v >= 1, "must be >= 1", "train at least one epoch"),
    ("train.batch_size", lambda v: v >= 1, "must be >= 1", "use a positive batch size"),
    ("train.eval_batch_size", lambda v: v >= 1, "must be >= 1", "use a positive batch size"),
    ("train.momentum", lambda v: 0 <= v < 1, "must be in [0, 1)", "use e.g. 0.9"),
    ("train.label_smoothing", lambda v: 0 <= v < 1, "must be in [0, 1)", "use e.g. 0.1"),
    ("train.threads", lambda v: v >= 0, "must be >= 0", "use 0 for the trial's CPU share"),
    ("model.groups", lambda v: v >= 1, "must be >= 1", "use 1 for ordinary convolutions"),
    ("model.stem_channels", lambda v: v >= 0, "must be >= 0", "use 0 for no stem"),
    ("model.dropout", lambda v: 0 <= v < 1, "must be in [0, 1)", "use e.g. 0.1"),
    ("model.stage_channels", lambda v: len(v) >= 1 and all(c >= 1 for c in v),
     "must be a non-empty list of positive ints", "e.g. [64, 128, 256]"),
    ("model.stage_blocks", lambda v: (v >= 1) if isinstance(v, int) else (len(v) >= 1 and all(b >= 1 for b in v)),
     "must be >= 1 (or a list of such)", "e.g. 2 or [2, 2, 2]"),
    ("augment.hflip", lambda v: 0 <= v <= 1, "is a probability in [0, 1]", "e.g. 0.5"),
    ("augment.crop_padding", lambda v: v >= 0, "must be >= 0", "e.g. 4"),
    ("augment.brightness", lambda v: v >= 0, "must be >= 0", "e.g. 0.2"),
    ("augment.contrast", lambda v: v >= 0, "must be >= 0", "e.g. 0.2"),
    ("augment.saturation", lambda v: v >= 0, "must be >= 0", "e.g. 0.2"),
    ("augment.hue", lambda v: 0 <= v <= 0.5, "must be in [0, 0.5]", "e.g. 0.05"),
    ("dataset.val_fraction", lambda v: 0 < v < 1, "must be in (0, 1)", "e.g. 0.2"),
    ("dataset.test_fraction", lambda v: 0 < v < 1, "must be in (0, 1)", "e.g. 0.2"),
    # One image a class to train on and one to validate; plan_splits asks for a third when
    # test is held out of train too.
    ("dataset.subset_per_class", lambda v: v == 0 or v >= 2, "must be 0 (every image) or >= 2",
     "e.g. 20 for a quick run on real data"),
    # 1024 is 3 MiB per decoded image, so 10,000 images already take 30 GiB of cache and page
    # cache; these small CNNs are trained from scratch at 32-224 px, and a slip such as 22400
    # would otherwise ask for terabytes and decode for hours before anything fails.
    ("dataset.image_size", lambda v: v is None or 1 <= v <= 1024, "must be in [1, 1024]", "e.g. 64 or 224"),
    ("search.num_samples", lambda v: v >= 1, "must be >= 1", "e.g. 1"),
    ("search.max_concurrent", lambda v: v >= 0, "must be >= 0", "use 0 for no limit"),
    ("search.max_failures", lambda v: v >= 0, "must be >= 0", "use 0 to never retry"),
    ("scheduler.grace_period", lambda v: v >= 1, "must be >= 1", "e.g. 1"),
    ("scheduler.reduction_factor", lambda v: v > 1, "must be > 1", "e.g. 2 or 3"),
    ("scheduler.perturbation_interval", lambda v: v >= 1, "must be >= 1", "e.g. 2"),
    ("scheduler.quantile_fraction", lambda v: 0 < v <= 0.5, "must be in (0, 0.5]", "e.g. 0.25"),
    ("resources.cpus_per_trial", lambda v: v > 0, "must be > 0", "e.g. 1"),
    ("resources.gpus_per_trial", lambda v: v >= 0, "must be >= 0", "e.g. 0.5"),
    ("output.keep_checkpoints", lambda v: v >= 1, "must be >= 1", "e.g. 2"),
    ("retrain.epochs", lambda v: v >= 0, "must be >= 0", "use 0 for the search's train.epochs"),
]
_RULES_BY_KEY = {rule[0]: rule for rule in _VALUE_RULES}


# --------------------------------------------------------------------------- parsing


class _Parser:
    def __init__(self, file: str, lines: dict[str, int]):
        self.file, self.lines = file, lines

    def error(self, key: str, message: str, fix: str | None = None) -> UsageError:
        # A key inside a domain ("train.lr.grid") reports the line of the deepest known key.
        line, probe = None, key
        while probe and line is None:
            line = self.lines.get(probe)
            probe = probe.rpartition(".")[0]
        return UsageError(message, file=self.file, key=key, line=line, fix=fix)

    def value(self, key: str, raw: Any, hint: Any) -> Any:
        try:
            value = coerce(raw, hint)
        except _BadValue:
            fix = f"write a value of type {_type_name(hint)}"
            # An optional name (search.sampler) is a Literal inside Optional: it gets one too.
            options = typing.get_args(hint) if typing.get_origin(hint) is Union else (hint,)
            literal = next((a for a in options if typing.get_origin(a) is Literal), None)
            if literal is not None and isinstance(raw, str):
                fix = did_you_mean(raw, [str(a) for a in typing.get_args(literal)])
            raise self.error(key, f"expected {_type_name(hint)}, got {raw!r}", fix) from None
        rule = _RULES_BY_KEY.get(key)
        if rule and not rule[1](value):
            raise self.error(key, f"{value!r} {rule[2]}", rule[3])
        return value

    def domain(self, key: str, raw: dict, hint: Any) -> Domain:
        if len(raw) != 1:
            raise self.error(key, f"a search domain has exactly one of {', '.join(DOMAIN_KINDS)}",
                             "write e.g. 'lr: {grid: [1e-3, 2e-3]}'")
        kind, arg = next(iter(raw.items()))
        dkey = f"{key}.{kind}"
        if kind not in DOMAIN_KINDS:
            raise self.error(dkey, f"unknown search domain '{kind}'", did_you_mean(kind, DOMAIN_KINDS))
        if not isinstance(arg, list) or not arg:
            raise self.error(dkey, f"'{kind}' needs a non-empty list", f"write '{kind}: [...]'")
        if kind in ("grid", "choice"):
            values = tuple(self.value(key, v, hint) for v in arg)
            if len(set(map(repr, values))) != len(values):
                raise self.error(dkey, f"'{kind}' lists a value twice", "remove the duplicate")
            return Domain(kind, values)
        base = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        want = int if kind == "randint" else float
        if want not in base:
            raise self.error(dkey, f"'{kind}' does not fit a field of type {_type_name(hint)}",
                             "use grid: or choice: with explicit values")
        if len(arg) != 2:
            raise self.error(dkey, f"'{kind}' takes [lo, hi]", f"write '{kind}: [lo, hi]'")
        lo, hi = (self.value(key, v, want) for v in arg)
        if lo >= hi:
            raise self.error(dkey, f"lo {lo} must be < hi {hi}", "swap or widen the bounds")
        if kind == "loguniform" and lo <= 0:
            raise self.error(dkey, "loguniform needs lo > 0", "use a positive lower bound")
        return Domain(kind, (lo, hi))

    def section(self, name: str, raw: Any, cls: type, space: dict[str, Domain] | None) -> Any:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise self.error(name, "expected a mapping of keys", f"write '{name}:' then indented 'key: value' lines")
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, item in raw.items():
            dotted = f"{name}.{key}"
            if key not in fields:
                raise self.error(dotted, f"unknown key '{key}'", did_you_mean(key, fields))
            is_domain = isinstance(item, dict) and typing.get_origin(hints[key]) is not dict
            if is_domain:
                if space is None:
                    raise self.error(dotted, f"section '{name}' cannot be searched",
                                     f"search only {', '.join(SEARCHABLE_SECTIONS)} fields")
                space[dotted] = self.domain(dotted, item, hints[key])
            else:
                values[key] = self.value(dotted, item, hints[key])
        return cls(**values)


def load_spec(path: str | Path) -> ExperimentSpec:
    """Parse and check a spec file; raise UsageError on the first mistake."""
    data, lines = read_yaml(path)
    file = str(path)
    parser = _Parser(file, lines)
    for name in data:
        if name not in SECTIONS:
            raise parser.error(str(name), f"unknown section '{name}'", did_you_mean(name, SECTIONS))
    space: dict[str, Domain] = {}
    parsed = {
        name: parser.section(name, data.get(name), cls, space if name in SEARCHABLE_SECTIONS else None)
        for name, cls in SECTIONS.items()
    }
    if "name" not in (data.get("output") or {}):
        parsed["output"].name = Path(path).stem
    # The name becomes a folder under results_dir: a path here would write into another experiment.
    check_name(parsed["output"].name, key="output.name", file=file, line=lines.get("output.name"))
    spec = ExperimentSpec(
        path=file,
        base=TrialConfig(dataset=parsed["dataset"], augment=parsed["augment"],
                         model=parsed["model"], train=parsed["train"]),
        space=space,
        search=parsed["search"],
        scheduler=parsed["scheduler"],
        resources=parsed["resources"],
        output=parsed["output"],
        retrain=parsed["retrain"],
        select=parsed["select"],
    )
    _check_registries(spec, parser)
    _check_search(spec, parser)
    from tune_app.spec_objectives import check_objectives
    from tune_app.spec_select import check_selection

    check_objectives(spec, parser, data)  # first: the objectives set the metric check_selection checks
    check_selection(spec, parser, data)
    return spec


def _check_registries(spec: ExperimentSpec, parser: _Parser) -> None:
    from tune_app.data import DATASETS
    from tune_app.models import MODELS

    def check(registry, key: str, names) -> None:
        for name in names:
            if name not in registry:
                raise parser.error(key, f"unknown {registry.kind} '{name}'", did_you_mean(name, registry))

    check(DATASETS, "dataset.name", [spec.base.dataset.name])
    check(MODELS, "model.name", spec.space["model.name"].values if "model.name" in spec.space else [spec.base.model.name])


def _check_search(spec: ExperimentSpec, parser: _Parser) -> None:
    # Each searcher and scheduler states its own rules (tune_app/tuner: no Ray imported here).
    from tune_app.tuner.schedulers import check_scheduler
    from tune_app.tuner.searchers import check_searcher

    check_searcher(spec, parser.error)
    spec.grid = _checked_grid(spec)
    if not spec.grid.architectures:
        dropped = spec.grid.dropped_architectures()
        first = dropped[0][1] if dropped else "no configuration"
        raise parser.error("model", f"no valid configuration is left in the search space ({first})",
                           "make model.groups divide every stage's channels")
    check_scheduler(spec, parser.error)


def _checked_grid(spec: ExperimentSpec) -> Grid:
    """The discrete domains, each combination of model fields checked once for buildability.

    For a sampling search (random, optuna) only the categorical fields are enumerated: a continuous lr cannot make a
    model unbuildable, and sampling cannot skip a combination, so any invalid one is fatal.
    """
    from tune_app.models import model_problem

    grid = build_grid(spec.base.model, {k: d.values for k, d in spec.space.items() if d.kind in ("grid", "choice")},
                      model_problem)
    dropped = grid.dropped_architectures()
    from tune_app.tuner.searchers import enumerates

    if not enumerates(spec) and dropped and grid.architectures:
        point, problem = dropped[0]
        raise UsageError(f"{spec.search.algorithm} could sample an invalid model: {point} ({problem})", file=spec.path,
                         key=", ".join(point), fix="restrict the choices so every combination is valid")
    return grid

"""Trial schedulers: name -> entry (`scheduler.name`), each one decorated class.

An entry checks the spec (before Ray starts), builds Ray's scheduler, says in --dry-run what it
may spend, and carries its state across --resume when Ray does not. Ray is imported only when
a scheduler is built, so the spec can be checked without it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Optional

from tune_app.errors import UsageError
from tune_app.registry import Registry

if TYPE_CHECKING:
    from tune_app.spec import ExperimentSpec

SCHEDULERS: Registry[type] = Registry("scheduler", "scheduler.name")
TIME_ATTR = "training_iteration"  # one iteration = one epoch: every trial reports once per epoch
Error = Callable[..., UsageError]  # spec's error(key, message, fix) with the YAML line


class Scheduler:
    """No early stopping; the base of every entry."""

    # True: output.keep_checkpoints does not apply (a checkpoint may be needed by another trial).
    keeps_every_checkpoint = False

    @staticmethod
    def check(spec: "ExperimentSpec", error: Error) -> None:
        pass

    @staticmethod
    def build(spec: "ExperimentSpec"):
        return None

    @staticmethod
    def budget(spec: "ExperimentSpec") -> str:
        return ""

    @staticmethod
    def summary(settings: dict[str, Any], stopped: int) -> str:
        """What it did, for the report and the end of a search (settings: as experiment.json
        recorded the scheduler section)."""
        return "no early stopping"

    @staticmethod
    def stop(spec: "ExperimentSpec") -> Optional[dict[str, Any]]:
        """RunConfig's stop criteria, decided before the scheduler sees a result."""
        return None

    @staticmethod
    def state(scheduler) -> Optional[dict[str, Any]]:
        return None

    @staticmethod
    def restore(scheduler, state: dict[str, Any]) -> None:
        pass


def check_scheduler(spec: "ExperimentSpec", error: Error) -> None:
    """The scheduler's rules (called by load_spec once the grid is known)."""
    SCHEDULERS[spec.scheduler.name].check(spec, error)


def summary(settings: dict[str, Any], stopped: int) -> str:
    """What the recorded scheduler did; an experiment of a name no longer registered says so."""
    name = settings.get("name", "none")
    return SCHEDULERS[name].summary(settings, stopped) if name in SCHEDULERS else f"scheduler {name}"


def _epochs_fixed(spec: "ExperimentSpec", error: Error, what: str) -> None:
    if "train.epochs" in spec.space:
        raise error("train.epochs", f"cannot be searched while {what} uses it as max_t",
                    "fix train.epochs or set scheduler.name: none")


def _grace_fits(spec: "ExperimentSpec", error: Error) -> None:
    if spec.scheduler.grace_period > spec.base.train.epochs:
        raise error("scheduler.grace_period",
                    f"{spec.scheduler.grace_period} exceeds train.epochs ({spec.base.train.epochs})",
                    "use a grace period <= train.epochs")


@SCHEDULERS.register("none")
class NoScheduler(Scheduler):
    pass


@SCHEDULERS.register("asha")
class Asha(Scheduler):
    """Asynchronous successive halving: a trial is judged at each rung as soon as it gets there."""

    @staticmethod
    def check(spec, error):
        _epochs_fixed(spec, error, "ASHA")
        _grace_fits(spec, error)

    @staticmethod
    def build(spec):
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(time_attr=TIME_ATTR, max_t=spec.base.train.epochs,
                             grace_period=spec.scheduler.grace_period,
                             reduction_factor=spec.scheduler.reduction_factor)

    @staticmethod
    def summary(settings, stopped):
        return (f"ASHA (grace period {settings['grace_period']}, reduction factor "
                f"{settings['reduction_factor']:g}) stopped {stopped} early")

    @staticmethod
    def budget(spec):
        return (f"ASHA may stop a trial after {spec.scheduler.rungs(spec.base.train.epochs)} epochs "
                f"(keeps 1/{spec.scheduler.reduction_factor:g} each rung)")

    @staticmethod
    def state(scheduler):
        """What ASHA learned so far (ray==2.60 attribute names; pinned): plain numbers and
        trial ids, never a pickle of Ray's objects, so restoring it runs no code of the file."""
        return {
            "brackets": [[[milestone, {trial: float(value) for trial, value in recorded.items()}]
                          for milestone, recorded in bracket._rungs] for bracket in scheduler._brackets],
            "trial_bracket": {trial: scheduler._brackets.index(bracket)
                              for trial, bracket in scheduler._trial_info.items()},
            "counter": int(scheduler._counter),
            "num_stopped": int(scheduler._num_stopped),
        }

    @staticmethod
    def restore(scheduler, state):
        brackets = state["brackets"]
        if [[m for m, _ in rungs] for rungs in brackets] != [[m for m, _ in b._rungs] for b in scheduler._brackets]:
            raise ValueError("saved ASHA rungs do not match the scheduler's: was the spec's scheduler changed?")
        for bracket, rungs in zip(scheduler._brackets, brackets):
            bracket._rungs = [(milestone, {str(t): float(v) for t, v in recorded.items()})
                              for (milestone, _), (_, recorded) in zip(bracket._rungs, rungs)]
        scheduler._trial_info = {str(t): scheduler._brackets[int(i)] for t, i in state["trial_bracket"].items()}
        scheduler._counter = int(state["counter"])
        scheduler._num_stopped = int(state["num_stopped"])


@SCHEDULERS.register("hyperband")
class HyperBand(Scheduler):
    """Synchronous HyperBand: a bracket's trials all reach a milestone before the best
    1/reduction_factor go on, so the epochs it spends are known before it starts."""

    @staticmethod
    def check(spec, error):
        _epochs_fixed(spec, error, "HyperBand")
        if spec.base.train.epochs < spec.scheduler.reduction_factor:
            raise error("train.epochs", f"{spec.base.train.epochs} epochs leave HyperBand nothing to halve with "
                        f"reduction_factor {spec.scheduler.reduction_factor:g}",
                        f"train at least {math.ceil(spec.scheduler.reduction_factor)} epochs, or lower "
                        "scheduler.reduction_factor")

    @staticmethod
    def build(spec):
        from ray.tune.schedulers import HyperBandScheduler

        return HyperBandScheduler(time_attr=TIME_ATTR, max_t=spec.base.train.epochs,
                                  reduction_factor=spec.scheduler.reduction_factor, stop_last_trials=True)

    @staticmethod
    def summary(settings, stopped):
        return f"HyperBand (reduction factor {settings['reduction_factor']:g}) stopped {stopped} early"

    @staticmethod
    def budget(spec):
        brackets = hyperband_brackets(spec.trial_count(), spec.base.train.epochs, spec.scheduler.reduction_factor)
        total = sum(b["epochs"] for b in brackets)
        shown = "; ".join(f"{b['trials']} trial(s) from {b['milestones'][0]} epoch(s), milestones {b['milestones']}"
                          for b in brackets[:6])
        more = f"; ... {len(brackets) - 6} more brackets" if len(brackets) > 6 else ""
        return f"HyperBand trains at most {total} epochs in all ({shown}{more})"


def hyperband_brackets(trials: int, max_t: int, eta: float) -> list[dict[str, Any]]:
    """The brackets Ray's HyperBandScheduler (ray==2.60) fills with `trials` trials in order,
    and the epochs each spends if every trial reports every epoch: its own arithmetic
    (`_s_max_1`, `_get_n0`, `_get_r0`, `successive_halving`), replayed without Ray."""
    s_max_1 = int(round(math.log(max_t) / math.log(eta))) + 1
    out, band, left = [], 0, trials
    while left > 0:
        for s in range(s_max_1):
            if left <= 0:
                break
            r0 = int(max_t * eta ** (-s))
            if r0 == 0:
                continue  # Ray skips a bracket whose first milestone rounds to 0 epochs
            n0 = math.ceil(s_max_1 / (s + 1) * eta ** s)
            k = min(n0, left)
            left -= k
            n, r, live, epochs, milestones = n0, r0, k, k * r0, [r0]
            for _ in range(s):
                n = math.ceil(n / eta)
                new_r = int(min(r * eta, max_t))
                live = min(n, live)
                epochs += live * (new_r - r)
                r = new_r
                milestones.append(r)
            out.append({"band": band, "trials": k, "milestones": milestones, "epochs": epochs})
        band += 1
    return out


@SCHEDULERS.register("median")
class Median(Scheduler):
    """Median stopping rule: after the grace period, a trial whose best judged value so far is
    below the median of the other trials' running averages at the same epoch stops."""

    @staticmethod
    def check(spec, error):
        _grace_fits(spec, error)

    @staticmethod
    def build(spec):
        from ray.tune.schedulers import MedianStoppingRule

        return MedianStoppingRule(time_attr=TIME_ATTR, grace_period=spec.scheduler.grace_period,
                                  min_samples_required=3)

    @staticmethod
    def summary(settings, stopped):
        return f"the median stopping rule (grace period {settings['grace_period']}) stopped {stopped} early"

    @staticmethod
    def budget(spec):
        return (f"the median rule may stop a trial from epoch {spec.scheduler.grace_period} on, once 3 trials "
                "have reported")


# Train fields PBT may change mid-run: each takes effect at the trial's next step
# (training.follow_config). The optimiser (its state belongs to it), the schedule's shape, the
# epochs and the seed cannot change under a running trial; model fields would change the
# architecture the copied weights belong to.
PBT_MUTABLE = ("train.lr", "train.weight_decay", "train.momentum", "train.label_smoothing", "train.batch_size")


@SCHEDULERS.register("pbt")
class Pbt(Scheduler):
    """Population based training: every perturbation_interval epochs the worst quantile of the
    trials copies the weights of one of the best and continues with mutated train values.

    A trial it clones restarts later from the other trial's checkpoint, which that trial's
    own keep_checkpoints could delete first: under PBT every checkpoint is kept. Its
    bookkeeping is not carried across --resume (no state): it starts over from the restored
    trials, whose next report is a perturbation point.
    """

    keeps_every_checkpoint = True

    @staticmethod
    def mutated(spec: "ExperimentSpec") -> dict[str, Any]:
        """The searched fields of PBT_MUTABLE with more than one value to move to."""
        return {k: d for k, d in spec.space.items()
                if k in PBT_MUTABLE and (d.kind not in ("grid", "choice") or len(d.values) > 1)}

    @staticmethod
    def check(spec, error):
        _epochs_fixed(spec, error, "PBT")
        if not Pbt.mutated(spec):
            fields = ", ".join(k.split(".", 1)[1] for k in PBT_MUTABLE)
            raise error("scheduler.name", f"pbt mutates searched train values mid-run, but none of {fields} is "
                        "searched", "search e.g. train.lr: {loguniform: [1.0e-4, 1.0e-2]}")
        if spec.search.algorithm == "optuna":
            raise error("scheduler.name", "pbt changes a trial's values mid-run, so Optuna would learn from "
                        "results that the values it sampled did not produce", "set search.algorithm: random (or grid)")
        interval = spec.scheduler.perturbation_interval
        if interval >= spec.base.train.epochs:
            raise error("scheduler.perturbation_interval", f"{interval} is not below train.epochs "
                        f"({spec.base.train.epochs}): PBT would never perturb",
                        f"use at most {spec.base.train.epochs - 1}, e.g. 1 or 2" if spec.base.train.epochs > 1
                        else "train at least 2 epochs")
        if spec.trial_count() < 2:
            raise error("search.num_samples", "pbt needs a population of at least 2 trials",
                        "raise search.num_samples (e.g. 8)")

    @staticmethod
    def build(spec):
        import functools

        from ray.tune.schedulers import PopulationBasedTraining

        from tune_app.hparams import wrap
        from tune_app.tuner.space import mutation, mutation_bounds, within_bounds

        mutated = Pbt.mutated(spec)
        return PopulationBasedTraining(
            time_attr=TIME_ATTR, perturbation_interval=spec.scheduler.perturbation_interval,
            hyperparam_mutations=wrap({k: mutation(d) for k, d in mutated.items()}),
            quantile_fraction=spec.scheduler.quantile_fraction, resample_probability=0.25,
            # Ray scales a range's value by 0.8 or 1.2 without looking at its bounds: a momentum
            # of 0.9 would become 1.08. Mutations stay inside the spec's domains.
            custom_explore_fn=functools.partial(within_bounds, mutation_bounds(mutated)),
            synch=False, log_config=False)

    @staticmethod
    def summary(settings, stopped):
        return f"PBT (perturbation interval {settings.get('perturbation_interval')} epochs)"

    @staticmethod
    def stop(spec):
        # The last epoch's report would otherwise be a perturbation point too: a clone there
        # restarts the trial from a finished checkpoint, trains nothing, and leaves params.json
        # naming values no epoch trained with.
        return {"epoch": spec.base.train.epochs}

    @staticmethod
    def budget(spec):
        return (f"PBT runs every trial to {spec.base.train.epochs} epochs, perturbing the worst "
                f"{spec.scheduler.quantile_fraction:.0%} every {spec.scheduler.perturbation_interval} epoch(s) "
                f"(mutating {', '.join(Pbt.mutated(spec))}); it keeps every checkpoint")

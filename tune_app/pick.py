"""The configuration retrain_best trains: the race's pick, or the search's best without a race."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from tune_app.config import TrialConfig
from tune_app.experiment import Experiment
from tune_app.hparams import decode
from tune_app.spec import SEED_KEY


@dataclass
class Choice:
    stage: str  # "race" or "search": where the decision was made
    run: str  # the run it is named by (trial_00003, race_00001)
    hparams: dict[str, Any]  # searched values, without train.seed
    epochs: int  # epochs it was judged at
    value: Optional[float]  # the metric it was judged on (race: mean final over seeds; search: best)
    rule: str
    sentence: str
    details: dict[str, Any] = field(default_factory=dict)  # interval, runner-up, per-seed values

    def config(self, experiment: Experiment, seed: int) -> TrialConfig:
        return experiment.base_config().with_overrides({**decode(self.hparams), SEED_KEY: seed,
                                                        "train.epochs": self.epochs})


def choose(experiment: Experiment) -> Choice:
    from tune_app.race import load_race

    race = load_race(experiment.path)
    decision = race.decision() if race is not None and race.missing() == 0 else None
    if decision is None:
        choice = _search_choice(experiment)
        if race is not None:
            choice.sentence += (f"; the race has {race.missing()} unfinished run(s): resume the search "
                                "(--resume) to finish it and retrain its pick")
        return choice
    entry = next(e for e in race.plan["finalists"] if e["label"] == decision.pick.label)
    runner = decision.runner_up
    return Choice(
        stage="race", run=race.run_of(entry, 0), hparams=entry["hparams"], epochs=race.plan["epochs"],
        value=decision.pick.mean,
        rule=f"race of {len(decision.ranked)} finalists over seeds {race.plan['seeds']}: ranked by the mean "
             f"{decision.metric} at epoch {race.plan['epochs']}; a finalist whose paired 95% interval against "
             "the leader includes 0 is tied, and the smallest tied one is picked",
        sentence=decision.sentence,
        details={"leader": decision.leader.label, "pick": decision.pick.label,
                 "per_seed": decision.pick.finals, "parameters": decision.pick.parameters,
                 "runner_up": None if runner is None else runner.other.label,
                 "difference": None if runner is None else runner.difference,
                 "interval": None if runner is None else runner.interval,
                 "seeds": race.plan["seeds"]})


def _search_choice(experiment: Experiment) -> Choice:
    best = experiment.best_trial()
    metric, mode = experiment.metric, experiment.mode
    values = best.hparams
    sentence = f"picked {best.name}: the search's best by {metric} (no race)"
    details: dict[str, Any] = {}
    if experiment.meta.get("scheduler", {}).get("name") == "pbt":
        # A PBT trial trained with values that changed mid-run; a retraining from scratch can
        # hold only one set: the values it had when it reached its best epoch.
        from tune_app.experiment import best_row
        from tune_app.lineage import schedule_sentence, values_at

        row = best_row(best.history, metric, mode) or {}
        values = values_at(row) or best.hparams
        changes = schedule_sentence(best, row.get("epoch"))
        details["pbt"] = {"best_epoch": row.get("epoch"), "changes": changes}
        sentence += (f"; PBT changed its values during the search ({changes}), so it is retrained from scratch "
                     f"with the values it had at its best epoch ({row.get('epoch')}), held constant" if changes else
                     f"; PBT did not change its values before its best epoch ({row.get('epoch')}): it is retrained "
                     "with them")
    hparams = {k: v for k, v in values.items() if k != SEED_KEY}
    cfg = experiment.base_config().with_overrides(decode(values))
    rule = (f"best mean over seeds of each run's best {metric}, then that configuration's best run"
            if experiment.seeded else f"best {metric} of any epoch of any trial")
    return Choice(stage="search", run=best.name, hparams=hparams, epochs=cfg.train.epochs,
                  value=best.best(metric, mode), rule=rule, sentence=sentence,
                  details={"seed": cfg.train.seed, **details})

"""Warm start (tune_app.warm and the searchers' warm_start): which earlier trials a new search
takes over, how Optuna's study receives them, how the new experiment ranks them; and a real
warm-started grid that trains only the points the earlier search lacks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.test_bad_input import spec_text as _spec_text
from tune_app import search
from tune_app.experiment import load_experiment
from tune_app.spec import load_spec
from tune_app.tuner.searchers import warm_start
from tune_app.warm import load_warm_start

GRID = "  lr: {grid: [1.0e-3, 3.0e-3]}\n"


def spec_text(train: str = "") -> str:
    return _spec_text(train, "results")


def write_spec(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def earlier(root: Path, name: str, text: str, trials: list[tuple[dict, list[float], bool]],
            status: str = "finished") -> Path:
    """An earlier experiment as a search leaves it, without Ray: experiment.json written by the
    search's own write_meta from the spec `text`, and per trial (searched values, val_accuracy
    of each epoch, whether it ended) params.json, result.json and ended.json."""
    path = root / name
    spec_file = write_spec(path, text)
    search.write_meta(path, load_spec(spec_file), status)
    for index, (hp, accuracies, ended) in enumerate(trials):
        folder = path / f"trial_{index:05d}"
        folder.mkdir()
        (folder / "params.json").write_text(json.dumps({"hp": hp}))
        (folder / "result.json").write_text("".join(
            json.dumps({"epoch": e, "val_accuracy": a, "val_loss": 1 - a, "diverged": False}) + "\n"
            for e, a in enumerate(accuracies, 1)))
        if ended:
            (folder / "ended.json").write_text(json.dumps({"status": "TERMINATED"}))
    return path


def fingerprint(root: Path) -> dict[str, str]:
    """Every file's bytes (hashed): a source must be byte-identical after a warm start."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def a_experiment(tmp_path: Path) -> Path:
    """epochs 2, lr 1e-3 completed, lr 3e-3 interrupted after one epoch."""
    return earlier(tmp_path / "results", "A", spec_text(GRID).replace("epochs: 1", "epochs: 2"),
                   [({"train.lr": 1e-3}, [0.5, 0.7], True), ({"train.lr": 3e-3}, [0.6], False)])


def test_a_grid_takes_over_the_points_already_run_and_reruns_unfinished_ones(tmp_path):
    source = a_experiment(tmp_path)
    spec = load_spec(write_spec(tmp_path / "new", spec_text("  lr: {grid: [1.0e-3, 3.0e-3, 1.0e-2]}\n").replace(
        "epochs: 1", "epochs: 2")))
    warm = warm_start(spec, load_warm_start(spec, [str(source)]))
    assert [t.name for t in warm.trials] == ["A/trial_00000"]
    assert warm.trials[0].hparams == {"train.lr": 1e-3}
    assert search.expected_trials(spec, warm) == 2  # 3e-3 (interrupted there) and 1e-2 run
    assert "1 interrupted (its point runs again)" in warm.notes[0]
    from tune_app.tuner.space import param_space

    points = param_space(spec, warm.skipped)["hp"]["grid_search"]
    assert points == [{"train.lr": 3e-3}, {"train.lr": 1e-2}]


def test_a_field_one_search_varies_and_the_other_fixes_selects_trials(tmp_path):
    # The earlier search varied lr; this one fixes it at 3e-3 and varies dropout: only the
    # earlier trial with lr 3e-3 (and dropout 0, the earlier fixed value) is one of its points.
    source = earlier(tmp_path / "results", "A", spec_text(GRID), [
        ({"train.lr": 1e-3}, [0.5], True), ({"train.lr": 3e-3}, [0.6], True)])
    spec = load_spec(write_spec(tmp_path / "new", spec_text("  lr: 3.0e-3\n").replace(
        "  stage_blocks: 1\n", "  stage_blocks: 1\n  dropout: {grid: [0.0, 0.2]}\n")))
    warm = warm_start(spec, load_warm_start(spec, [str(source)]))
    assert [(t.name, t.hparams) for t in warm.trials] == [("A/trial_00001", {"model.dropout": 0.0})]
    assert "ran with another train.lr (this search fixes it at 0.003)" in warm.notes[0]


def test_seeded_grids_match_runs_by_seed(tmp_path):
    source = earlier(tmp_path / "results", "A", spec_text(GRID).replace("dataset:", "search:\n  num_samples: 2\n"
                                                                        "dataset:"), [
        ({"train.lr": 1e-3, "train.seed": 0}, [0.5], True), ({"train.lr": 1e-3, "train.seed": 1}, [0.6], True)])
    spec = load_spec(write_spec(tmp_path / "new", spec_text(GRID).replace("dataset:", "search:\n  num_samples: 3\n"
                                                                          "dataset:")))
    warm = warm_start(spec, load_warm_start(spec, [str(source)]))
    assert sorted(t.hparams["train.seed"] for t in warm.trials) == [0, 1]
    assert search.expected_trials(spec, warm) == 6 - 2


def test_an_optuna_study_holds_the_earlier_trials(tmp_path):
    """Without Ray: the searcher the Tuner would get, handed the space as the Tuner hands it."""
    import optuna

    from tune_app.tuner.searchers import SEARCHERS
    from tune_app.tuner.space import param_space

    source = earlier(tmp_path / "results", "A", spec_text(GRID), [
        ({"train.lr": 1e-3}, [0.5], True), ({"train.lr": 3e-3}, [0.6], True)])
    optuna_spec = ("search:\n  algorithm: optuna\n  num_samples: 4\nscheduler:\n  judge: best\n"
                   + spec_text("  lr: {loguniform: [2.0e-3, 1.0e-2]}\n"))
    spec = load_spec(write_spec(tmp_path / "new", optuna_spec))
    warm = warm_start(spec, load_warm_start(spec, [str(source)]))
    assert [t.name for t in warm.trials] == ["A/trial_00001"]  # lr 1e-3 lies outside [2e-3, 1e-2]
    assert any("outside this search's domains (train.lr=0.001)" in n for n in warm.notes)
    experiment_dir = tmp_path / "results" / "B"
    experiment_dir.mkdir()
    searcher = SEARCHERS["optuna"].build(spec, experiment_dir, warm)
    assert searcher.set_search_properties("judged_val_accuracy", "max", param_space(spec))
    study = optuna.load_study(study_name="B", storage=f"sqlite:///{experiment_dir / 'optuna.db'}")
    [trial] = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.params == {"hp/train.lr": 3e-3} and trial.value == 0.6
    assert searcher.suggest("t1")["hp"]["train.lr"] >= 2e-3  # and the study goes on from there


def test_the_optuna_value_is_the_judged_column_at_the_last_epoch(tmp_path):
    source = earlier(tmp_path / "results", "A", spec_text(GRID).replace("epochs: 1", "epochs: 3"), [
        ({"train.lr": 3e-3}, [0.6, 0.8, 0.7], True)])
    for judge, value in (("last", 0.7), ("best", 0.8)):
        spec = load_spec(write_spec(tmp_path / judge, f"search:\n  algorithm: optuna\nscheduler:\n  judge: {judge}\n"
                                    + spec_text("  lr: {loguniform: [1.0e-4, 1.0e-2]}\n").replace(
                                        "epochs: 1", "epochs: 3")))
        [trial] = warm_start(spec, load_warm_start(spec, [str(source)])).trials
        assert trial.value == pytest.approx(value)


def test_the_new_experiment_ranks_the_earlier_trials_and_says_where_they_ran(tmp_path):
    source = a_experiment(tmp_path)
    before = fingerprint(source)
    spec_file = write_spec(tmp_path / "new", spec_text("  lr: {grid: [1.0e-3, 3.0e-3]}\n").replace(
        "epochs: 1", "epochs: 2"))
    spec = load_spec(spec_file)
    warm = warm_start(spec, load_warm_start(spec, [str(source)]))
    new = tmp_path / "results" / "B"
    (new / "trial_00000").mkdir(parents=True)  # the one point it ran itself: lr 3e-3
    (new / "trial_00000" / "params.json").write_text(json.dumps({"hp": {"train.lr": 3e-3}}))
    (new / "trial_00000" / "result.json").write_text('{"epoch": 1, "val_accuracy": 0.9}\n'
                                                     '{"epoch": 2, "val_accuracy": 0.95}\n')
    search.write_meta(new, spec, "finished", warm.record(new))
    record = json.loads((new / "experiment.json").read_text())["warm_start"]
    assert record["sources"] == ["../A"] and record["trials"][0]["path"] == "../A/trial_00000"
    experiment = load_experiment(new)
    rows = experiment.table()
    assert [(r["trial"], r["from"]) for r in rows] == [("trial_00000", None), ("A/trial_00000", "A")]
    assert rows[1]["epochs"] == 2 and rows[1]["status"] == "completed"
    assert experiment.trial_config(experiment.trials[1]).train.lr == 1e-3
    assert fingerprint(source) == before


def warm_started_b(tmp_path):
    """Experiment A, and B: a finished 2-epoch grid that took over A's trial (no trial of its own)."""
    source = a_experiment(tmp_path)
    spec = load_spec(write_spec(tmp_path / "new", spec_text(GRID).replace("epochs: 1", "epochs: 2")))
    warm = warm_start(spec, load_warm_start(spec, [str(source)]))
    new = tmp_path / "results" / "B"
    new.mkdir()
    search.write_meta(new, spec, "finished", warm.record(new))
    return source, new


def test_the_race_reads_a_taken_over_trial_where_it_ran(tmp_path):
    from tune_app.race import load_race

    _, new = warm_started_b(tmp_path)
    (new / "race").mkdir()
    hp = {"train.lr": 1e-3, "train.seed": 0}
    (new / "race" / "plan.json").write_text(json.dumps({
        "metric": "val_accuracy", "mode": "max", "epochs": 2, "seeds": [0],
        "finalists": [{"hparams": {"train.lr": 1e-3}, "label": "lr=0.001", "search_rank": 1, "parameters": 1,
                       "runs": [{"seed": 0, "hp": hp, "reuse": "A/trial_00000"}]}]}))
    race = load_race(new)
    assert race.run_names == {json.dumps(hp, sort_keys=True): "A/trial_00000"}
    assert race.finalists()[0].finals == [0.7]


def test_a_missing_earlier_trial_is_one_line(tmp_path):
    import shutil

    from tune_app.errors import UsageError

    source, new = warm_started_b(tmp_path)
    shutil.rmtree(source)
    with pytest.raises(UsageError, match="the trial A/trial_00000 this search took over .* is missing"):
        load_experiment(new)


# --------------------------------------------------------------------------- real Ray


def _spec(tmp: Path, lrs: list[float], name: str) -> Path:
    from tests.conftest import make_spec

    return make_spec(tmp, {"model": {"groups": 2}, "train": {"epochs": 2, "lr": {"grid": lrs}},
                           "scheduler": {"name": "none"}, "output": {"name": name}}, f"{name}.yaml")


@pytest.mark.slow
def test_a_warm_started_grid_trains_only_the_missing_points(tmp_path, capsys):
    import ray

    results = tmp_path / "results"
    try:
        assert search.main(["--space", str(_spec(tmp_path, [1e-3, 3e-3], "A")), "--num-cpus", "2"]) == 0
        source = results / "A"
        before = fingerprint(source)
        capsys.readouterr()
        assert search.main(["--space", str(_spec(tmp_path, [1e-3, 3e-3, 1e-2], "B")), "--num-cpus", "2",
                            "--warm-start", str(source)]) == 0
        out = capsys.readouterr().out
    finally:
        ray.shutdown()
    assert "warm start: 2 of 3 trials of this grid already ran in A; 1 to launch" in out
    assert "3 trials (2 from earlier experiments, column `from`), 2 epochs trained" in out
    new = results / "B"
    own = sorted(p.name for p in new.glob("trial_*"))
    assert own == ["trial_00000"]  # one trial folder: the missing point
    experiment = load_experiment(new)
    assert experiment.meta["status"] == "finished"
    assert sum(t.epochs_run for t in experiment.trials if not t.origin) == 2
    assert experiment.trials[0].hparams == {"train.lr": 1e-2}
    rows = json.loads((new / "trials.json").read_text())
    assert sorted((r["trial"], r["from"]) for r in rows) == [("A/trial_00000", "A"), ("A/trial_00001", "A"),
                                                             ("trial_00000", None)]
    assert all(r["rank"] is not None for r in rows)
    assert fingerprint(source) == before  # read in place, never written

    # Every point already ran: no Ray, no trial folder, still a ranking.
    capsys.readouterr()
    assert search.main(["--space", str(_spec(tmp_path, [1e-3, 3e-3], "C")), "--warm-start", str(source)]) == 0
    out = capsys.readouterr().out
    assert "nothing to train" in out and "starting Ray" not in out
    assert not list((results / "C").glob("trial_*"))
    assert len(json.loads((results / "C" / "trials.json").read_text())) == 2
    from tune_app.pick import choose

    assert choose(load_experiment(results / "C")).run.startswith("A/trial_0000")
    assert fingerprint(source) == before

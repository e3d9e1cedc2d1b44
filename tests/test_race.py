"""The race after a real (tiny) search: finished search runs are reused, race runs are marked
in TensorBoard, retrain_best takes the race's pick, and a SIGKILL mid-race resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO, make_spec
from tests.test_faults import result_rows, run_search
from tests.test_resume import wait_for
from tune_app.experiment import load_experiment
from tune_app.race import load_race

# Every test here runs (or shares a module fixture that runs) a real Ray search.
pytestmark = pytest.mark.ray

# Two configurations run out (no ASHA), 2 epochs: a race over seeds 0 and 1 at 2 epochs reuses
# each finalist's seed-0 search trial and trains only the seed-1 runs.
REUSE = {"model": {"groups": 2}, "train": {"epochs": 2, "lr": {"grid": [1.0e-3, 3.0e-3]}},
         "scheduler": {"name": "none"}, "select": {"finalists": 2, "seeds": 2},
         "retrain": {"epochs": 0}}  # 0: the pick retrains for the race's epochs


@pytest.mark.slow
def test_the_race_reuses_finished_search_runs_and_retrain_best_takes_its_pick(tmp_path, capsys):
    import ray

    from tune_app import retrain_best, search

    spec = make_spec(tmp_path, REUSE)
    try:
        assert search.main(["--space", str(spec), "--num-cpus", "2"]) == 0
    finally:
        ray.shutdown()
    out = capsys.readouterr().out
    path = tmp_path / "results" / "quick"
    race = load_race(path)
    runs = [r for e in race.plan["finalists"] for r in e["runs"]]
    assert sorted(r["reuse"] for r in runs if r["seed"] == 0) == ["trial_00000", "trial_00001"]
    assert all(r["reuse"] is None for r in runs if r["seed"] == 1)
    trained = sorted(p.name for p in (path / "race").glob("race_*"))
    assert trained == ["race_00001", "race_00003"]  # only the two seed-1 runs (named by plan position)
    assert race.trained_epochs() == 4 and race.missing() == 0
    assert "2 run(s) reused from the search, 2 to train" in out and race.decision().sentence in out
    meta = json.loads((path / "experiment.json").read_text())
    assert meta["stage"] == "race finished" and meta["race"]["plan"] == "race/plan.json"
    assert sorted(meta["race"]["runs"]) == ["race/race_00001", "race/race_00003", "trial_00000", "trial_00001"]
    assert len(load_experiment(path).trials) == 2  # race runs are not counted as search trials
    assert _tb_hparams(path / "race" / "race_00001" / "tb")["stage"] == "race"

    assert retrain_best.main(["--experiment", str(path)]) == 0
    metrics = json.loads((path / "best" / "metrics.json").read_text())
    chosen = metrics["chosen_by"]
    assert chosen["stage"] == "race" and chosen["pick"] == race.decision().pick.label
    assert metrics["epochs"] == 2 and metrics["procedure_epochs"] == {"search": 4, "race": 4, "retrain": 2,
                                                                      "total": 10}
    assert "whole procedure: 10 epochs (search 4 + race 4 + retrain 2)" in capsys.readouterr().out
    assert retrain_best.main(["--experiment", str(path), "--seeds", "2", "--epochs", "1"]) == 0
    spread = json.loads((path / "best-2" / "metrics.json").read_text())["test_seeds"]
    assert spread["seeds"] == [0, 1] and len(spread["accuracy"]["values"]) == 2
    assert spread["accuracy"]["mean"] == pytest.approx(sum(spread["accuracy"]["values"]) / 2)
    assert "over 2 retraining seeds" in (path / "best-2" / "summary.md").read_text()


def _tb_hparams(logdir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(logdir))
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: v.string_value or v.number_value for k, v in info.hparams.items()}


# The race alone trains 2 finalists x 3 seeds x 8 epochs (select.epochs differs from
# train.epochs, so nothing is reused): long enough to kill the driver in the middle of it.
MID_RACE = {"model": {"stage_channels": [32, 64, 128], "stem_channels": 32, "groups": 2},
            "train": {"epochs": 1, "lr": {"grid": [1.0e-3, 3.0e-3]}},
            "scheduler": {"name": "none"}, "select": {"finalists": 2, "seeds": 3, "epochs": 8}}


@pytest.mark.slow
def test_sigkill_mid_race_then_resume_finishes_the_race_without_rerunning_finished_runs(tmp_path):
    spec = make_spec(tmp_path, MID_RACE)
    path = tmp_path / "results" / "quick"
    proc = run_search(spec, start_new_session=True)

    def mid_race():
        rows = [result_rows(r) for r in (path / "race").glob("race_*")]
        return any(r and r[-1]["epoch"] == 8 for r in rows) and any(r and r[-1]["epoch"] < 8 for r in rows)

    assert wait_for(mid_race), proc.communicate()[0]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    meta = json.loads((path / "experiment.json").read_text())
    assert (meta["stage"], meta["status"]) == ("race", "running")
    done = {r.name: (r / "result.json").read_bytes() for r in (path / "race").glob("race_*")
            if result_rows(r) and result_rows(r)[-1]["epoch"] == 8}
    resumed = subprocess.run([sys.executable, "-m", "tune_app.search", "--resume", str(path), "--num-cpus", "2"],
                             cwd=REPO, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    meta = json.loads((path / "experiment.json").read_text())
    assert (meta["stage"], meta["status"]) == ("race finished", "finished")
    race = load_race(path)
    assert race.missing() == 0 and race.decision() is not None
    runs = [r for r in (path / "race").glob("race_*") if "." not in r.name]
    assert len(runs) == 6  # no run planned twice
    cut = [r for r in (path / "race").glob("race_*.interrupted-*")]
    # A run the kill cut short is set aside with its epochs, never deleted, and trained again.
    assert cut and all(result_rows(r) for r in cut)
    assert all(r.name.split(".")[0] in {x.name for x in runs} for r in cut)
    for name, content in done.items():  # finished race runs were not run again
        assert (path / "race" / name / "result.json").read_bytes() == content
    assert race.decision().sentence in resumed.stdout

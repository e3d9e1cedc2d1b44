"""`python -m tune_app.bench --overhead`: the arithmetic of the figures, not their speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_spec
from tune_app import bench_overhead
from tune_app.experiment import Experiment, TrialRecord


def row(epoch: int, iteration_s: float, training_s: float, pid: int) -> dict:
    return {"epoch": epoch, "time_this_iter_s": iteration_s, "epoch_time_s": training_s, "pid": pid}


def experiment(trials: dict[str, list[dict]], cpus_per_trial: float = 1) -> Experiment:
    return Experiment(path=Path("exp"), meta={"resources": {"cpus_per_trial": cpus_per_trial}},
                      trials=[TrialRecord(name=name, path=Path("exp") / name, hparams={}, history=history)
                              for name, history in trials.items()])


def test_overhead_is_iteration_minus_training_split_by_worker_start_trial_start_and_later_epochs():
    exp = experiment({
        # worker 7's first trial: its first epoch carries the process's start-up (2.0 s)
        "trial_00000": [row(1, 2.5, 0.5, 7), row(2, 0.52, 0.5, 7)],
        # worker 8's first trial
        "trial_00001": [row(1, 1.5, 0.5, 8), row(2, 0.53, 0.5, 8), row(3, 0.51, 0.5, 8)],
        # a later trial on worker 7: its first epoch carries the switch between trials
        "trial_00002": [row(1, 0.55, 0.5, 7), row(2, 0.56, 0.5, 7)],
        "trial_00003": [],  # never started: no epochs, not counted
    }, cpus_per_trial=1)
    f = bench_overhead.figures(exp, search_s=10.0, ray_cpus=2)
    assert (f["trials"], f["epochs"], f["worker_processes"]) == (3, 7, 2)
    assert f["iteration_s"] == pytest.approx(6.67)
    assert f["training_s"] == pytest.approx(3.5)
    assert f["overhead_ms_per_epoch"] == pytest.approx(1000 * 3.17 / 7)
    assert f["overhead_ms_worker_start"] == pytest.approx(1500)  # (2000 + 1000) / 2
    assert f["overhead_ms_trial_start"] == pytest.approx(50)
    assert f["overhead_ms_later_epochs"] == pytest.approx(30)  # (20 + 30 + 10 + 60) / 4
    assert f["overhead_ms_later_epochs_median"] == pytest.approx(25)
    assert f["overhead_ms_per_epoch_after_worker_start"] == pytest.approx(34)  # (50 + 120) / 5
    # 3.5 s of training on 1 CPU each, out of 10 s x 2 CPUs
    assert f["training_share_of_core_s"] == pytest.approx(3.5 / 20)


def test_a_trial_reserving_two_cpus_counts_its_training_twice():
    exp = experiment({"trial_00000": [row(1, 1.0, 0.8, 1), row(2, 1.0, 0.9, 1)]}, cpus_per_trial=2)
    f = bench_overhead.figures(exp, search_s=2.0, ray_cpus=4)
    assert f["training_share_of_core_s"] == pytest.approx(1.7 * 2 / 8)
    assert f["overhead_ms_trial_start"] is None and f["overhead_ms_later_epochs"] == pytest.approx(100)


def test_the_medians_take_each_figure_over_the_runs():
    runs = [{key: value for key in bench_overhead.MEDIAN_KEYS} for value in (3.0, 1.0, 2.0)]
    runs[1]["overhead_ms_trial_start"] = None  # a run in which no worker took a second trial
    medians = bench_overhead.summarise(runs)
    assert medians["overhead_ms_per_epoch"] == 2.0 and medians["search_s"] == 2.0
    assert "overhead_ms_trial_start" not in medians


def test_the_search_runs_alone_without_the_race():
    spec = {"train": {"epochs": 12}, "select": {"finalists": 2, "seeds": 2}}
    out = bench_overhead.overhead_spec(spec)
    assert out["select"] == {"finalists": 0} and out["train"] == {"epochs": 12}
    assert spec["select"]["finalists"] == 2  # the caller's spec is left alone


def test_the_search_time_is_read_from_the_line_search_prints(tmp_path, capsys):
    """The bench parses search's summary line: a change to its wording must fail here."""
    from tune_app import search
    from tune_app.spec import load_spec

    experiment_dir = tmp_path / "quick"
    trial = experiment_dir / "trial_00000"
    trial.mkdir(parents=True)
    search.write_meta(experiment_dir, load_spec(make_spec(tmp_path)), "finished")
    (trial / "params.json").write_text(json.dumps({"hp": {"model.groups": 2, "train.lr": 3e-3}}))
    (trial / "result.json").write_text("".join(json.dumps({"epoch": e, "val_accuracy": 0.5, "val_loss": 1.0}) + "\n"
                                               for e in (1, 2)))
    search._print_summary(experiment_dir, 12.34)
    found = bench_overhead.SUMMARY.search(capsys.readouterr().out)
    assert found and found.group(3) == "12.3"


def test_the_table_has_one_row_per_run_and_the_median(tmp_path):
    run = {key: 1.0 for key in bench_overhead.MEDIAN_KEYS}
    run.update(load_1m_before=0.5, load_1m_after=1.5)
    text = bench_overhead.table({"spec": "quickstart.yaml", "repeats": 2, "runs": [run, run],
                                 "median": bench_overhead.summarise([run, run])})
    lines = text.splitlines()
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "median"]
    assert "0.5->1.5" in lines[2]

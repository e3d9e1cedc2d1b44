"""TensorBoard shows every trial: named scalars, and an HParams tab whose metric columns are filled.

The HParams checks go through TensorBoard's own server code in-process (its WSGI app, the
hparams plugin and the event-file loader), asking the same two questions the HParams tab asks:
POST /data/plugin/hparams/experiment and /session_groups.

`small_finished_search` is the one small real search (+ retrain-best + pre-search checks) that
this module, test_report and test_screenshot share: it runs once per pytest session.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tune_app.experiment import load_experiment
from tune_app.tb import HPARAM_METRICS

# Every test here runs (or shares a module fixture that runs) a real Ray search.
pytestmark = pytest.mark.ray

# 4 trials x 3 epochs; lr 1e-5 barely learns, so ASHA (rungs at epochs 1 and 2) stops it.
SMALL_SPEC = {
    "model": {"groups": {"grid": [2, 4]}},
    "train": {"epochs": 3, "lr": {"grid": [3.0e-3, 1.0e-5]}},
    "output": {"name": "small"},
    "retrain": {"epochs": 2},
}
ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
SCALAR_TAGS = {"train/loss", "train/accuracy", "train/lr", "val/loss", "val/accuracy"}


def _run_small_search(root: Path) -> None:
    import ray

    from tests.conftest import QUICK_SPEC, deep_merge
    from tune_app import check, retrain_best, search

    data = deep_merge(QUICK_SPEC, SMALL_SPEC)
    data["output"]["results_dir"] = str(root / "results")
    spec = root / "small.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        assert search.main(["--space", str(spec), "--num-cpus", "2"]) == 0
    finally:
        ray.shutdown()  # everything after this reads files; no Ray left running for later modules
    assert retrain_best.main(["--experiment", str(root / "results" / "small")]) == 0
    # Short sweeps: this is about report finding the checks, test_check covers the checks.
    assert check.main(["--space", str(spec), "--lr-steps", "30", "--overfit-steps", "150"]) in (0, 1)


def small_finished_search(tmp_path_factory) -> Path:
    """results/small of a finished 4-trial digits search with best/ and checks; made once per session.

    Cached on disk under the session's base temp folder rather than in a module global, because
    pytest may import a test module twice (as `test_x` and as `tests.test_x`).
    """
    root = tmp_path_factory.getbasetemp() / "shared_small_search"
    done, failed = root / "done", root / "failed"
    if failed.exists():
        pytest.fail(f"the shared small search failed earlier in this session: {failed.read_text()}")
    if not done.exists():
        root.mkdir(exist_ok=True)
        try:
            _run_small_search(root)
        except BaseException as err:
            failed.write_text(repr(err))
            raise
        done.write_text("ok")
    return root / "results" / "small"


# --------------------------------------------------------------------------- TensorBoard in-process


class TensorBoardApp:
    """TensorBoard's backend for `--logdir`, loaded once, answering requests without a socket."""

    def __init__(self, logdir: Path):
        from tensorboard import default, program
        from tensorboard.backend import application
        from tensorboard.backend.event_processing.data_ingester import LocalDataIngester
        from werkzeug.test import Client

        tb = program.TensorBoard(plugins=default.get_plugins())
        # The Python loader, read once and synchronously, so the answer is deterministic.
        tb.configure(logdir=str(logdir), load_fast="false", reload_interval=0, reload_task="blocking")
        ingester = LocalDataIngester(tb.flags)
        ingester.start()
        app = application.TensorBoardWSGIApp(tb.flags, tb.plugin_loaders, ingester.data_provider, None,
                                             ingester.deprecated_multiplexer)
        self.client = Client(app)

    def post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(route, data=json.dumps(body), content_type="application/json")
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return response.get_json()

    def get(self, route: str) -> Any:
        response = self.client.get(route)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return response.get_json()

    def hparams_experiment(self) -> dict[str, Any]:
        return self.post("/data/plugin/hparams/experiment", {"experimentName": ""})

    def session_groups(self) -> dict[str, dict[str, Any]]:
        """HParams table rows by session (run) name, as the HParams tab requests them."""
        body = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "colParams": [],
                "startIndex": 0, "sliceSize": 10_000}
        groups = self.post("/data/plugin/hparams/session_groups", body)["sessionGroups"]
        return {g["name"]: g for g in groups}


def metric_values(group: dict[str, Any]) -> dict[str, float]:
    return {m["name"]["tag"]: m["value"] for m in group.get("metricValues", [])}


def expected_metrics(trial) -> dict[str, float]:
    last = trial.history[-1]
    return {"hparams/best_val_accuracy": trial.best("val_accuracy", "max"),
            "hparams/last_val_accuracy": last["val_accuracy"],
            "hparams/val_loss": last["val_loss"],
            "hparams/epochs_run": float(trial.epochs_run)}


def assert_session_complete(groups: dict[str, dict[str, Any]], run: str, hparams: dict[str, Any],
                            expected: dict[str, float]) -> dict[str, Any]:
    """The run is an HParams session with these hyperparameters and a value in every metric column."""
    assert run in groups, f"{run} is missing from the HParams table (sessions: {sorted(groups)})"
    group = groups[run]
    assert group["hparams"] == pytest.approx(hparams), run
    values = metric_values(group)
    missing = [m for m in HPARAM_METRICS if m not in values or not math.isfinite(values[m])]
    assert not missing, f"{run}: empty HParams metric columns {missing}"
    for tag, value in expected.items():
        assert values[tag] == pytest.approx(value, rel=1e-5), (run, tag)
    return group


def trial_hparams(trial) -> dict[str, Any]:
    return {**{k.split(".", 1)[-1]: v for k, v in trial.hparams.items()}, "trial": trial.name}


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    return small_finished_search(tmp_path_factory)


@pytest.fixture(scope="module")
def tensorboard(experiment) -> TensorBoardApp:
    # The logdir users pass: the results folder holding every experiment.
    return TensorBoardApp(experiment.parent)


def test_every_trial_is_a_session_with_its_hparams_and_all_metric_values(experiment, tensorboard):
    exp = load_experiment(experiment)
    groups = tensorboard.session_groups()
    statuses = {t.status(exp.max_epochs) for t in exp.trials}
    assert {"stopped early", "completed"} <= statuses, statuses  # both kinds are covered below
    for trial in exp.trials:
        group = assert_session_complete(groups, f"{experiment.name}/{trial.name}/tb", trial_hparams(trial),
                                        expected_metrics(trial))
        assert [s["status"] for s in group["sessions"]] == ["STATUS_SUCCESS"]  # ended, stopped early or not


def test_retrained_best_is_a_session_too(experiment, tensorboard):
    metrics = json.loads((experiment / "best" / "metrics.json").read_text())
    hparams = {**{k.split(".", 1)[-1]: v for k, v in metrics["hparams"].items()},
               "trial": f"retrain of {metrics['trial']}"}
    history = metrics["history"]
    assert_session_complete(tensorboard.session_groups(), f"{experiment.name}/best/tb", hparams,
                            {"hparams/epochs_run": float(len(history)),
                             "hparams/last_val_accuracy": history[-1]["val_accuracy"]})


def test_experiment_lists_each_hyperparameter_and_the_four_metric_columns(tensorboard):
    experiment = tensorboard.hparams_experiment()
    assert {h["name"] for h in experiment["hparamInfos"]} == {"groups", "lr", "trial"}
    assert set(HPARAM_METRICS) <= {m["name"]["tag"] for m in experiment["metricInfos"]}
    # A metric column named like a hyperparameter would show two "lr" headers side by side.
    assert not {m["name"]["tag"] for m in experiment["metricInfos"]} & {"groups", "lr", "trial"}


def test_each_trial_has_clearly_named_scalars_with_one_point_per_epoch(experiment, tensorboard):
    exp = load_experiment(experiment)
    tags = tensorboard.get("/data/plugin/scalars/tags")
    for trial in exp.trials:
        run = f"{experiment.name}/{trial.name}/tb"
        assert SCALAR_TAGS <= set(tags[run]), (run, sorted(tags[run]))
        points = tensorboard.get(f"/data/plugin/scalars/scalars?run={run}&tag=val/accuracy")
        assert [p[1] for p in points] == [h["epoch"] for h in trial.history]
        assert [p[2] for p in points] == pytest.approx([h["val_accuracy"] for h in trial.history], rel=1e-5)


def test_an_epoch_reaches_the_event_file_within_seconds(tmp_path):
    """A running trial's newest epoch must not wait for tensorboardX's 120 s flush timer."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tune_app.tb import TrialWriter

    writer = TrialWriter(str(tmp_path), {"lr": 0.1, "trial": "trial_00000"})
    try:
        writer.epoch({"epoch": 1, "train_loss": 1.2, "train_accuracy": 0.4, "val_loss": 1.0,
                      "val_accuracy": 0.5, "lr": 0.1})
        deadline = time.monotonic() + 10
        while True:
            events = EventAccumulator(str(tmp_path))
            events.Reload()
            if set(HPARAM_METRICS) <= set(events.Tags()["scalars"]):
                break
            assert time.monotonic() < deadline, f"on disk so far: {events.Tags()['scalars']}"
            time.sleep(0.5)
    finally:
        writer.close()

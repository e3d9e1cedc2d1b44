"""retrain_best's pieces that need no search: progress output and the thread limit."""

from __future__ import annotations

import io

import torch

from tune_app.config import TrainConfig
from tune_app.retrain_best import EpochProgress
from tune_app.training import limit_threads


def metrics(epoch: int) -> dict:
    return {"epoch": epoch, "train_loss": 0.5 / epoch, "train_accuracy": 0.9, "val_accuracy": 0.8,
            "epoch_time_s": 1.25}


def test_progress_is_one_plain_line_per_epoch_when_not_a_terminal():
    stream = io.StringIO()  # a log file or a pipe: isatty() is False
    progress = EpochProgress(3, "retrain trial_00002", stream)
    for epoch in (1, 2, 3):
        progress.update(metrics(epoch))
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 3
    assert lines[1] == "retrain trial_00002: epoch 2/3  loss 0.2500  acc 0.9000  val_acc 0.8000  (1.2 s)"


def test_progress_is_a_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = EpochProgress(2, "retrain", stream)
    progress.update(metrics(1))
    progress.close()
    assert "\r" in stream.getvalue() and "1/2" in stream.getvalue()


def test_threads_follow_train_threads_else_the_cpu_share():
    before = torch.get_num_threads()
    try:
        assert limit_threads(TrainConfig(threads=0), 1.0) == 1 and torch.get_num_threads() == 1
        assert limit_threads(TrainConfig(threads=0), 2.5) == 2 and torch.get_num_threads() == 2
        assert limit_threads(TrainConfig(threads=3), 1.0) == 3 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)



def two_objective_experiment(root):
    """A finished search of val_accuracy against params, written by hand: by hand, the front is
    all three configurations; blocks 3 is the most accurate, blocks 2 half a point behind."""
    import json

    from tune_app.config import DatasetConfig, ModelConfig, TrainConfig, TrialConfig
    from tune_app.models import build_model, count_parameters

    base = TrialConfig(dataset=DatasetConfig(name="digits"), model=ModelConfig(stage_channels=[8, 16], stage_blocks=1),
                       train=TrainConfig(epochs=1, batch_size=64, seed=5))
    path = root / "pareto"
    path.mkdir()
    meta = {"status": "finished", "base": base.to_dict(),
            "search": {"algorithm": "grid", "num_samples": 1, "metric": "val_accuracy", "mode": "max",
                       "objectives": ["val_accuracy", "params"]},
            "scheduler": {"name": "none"}, "resources": {"cpus_per_trial": 1},
            "retrain": {"epochs": 0, "train_on": "train"}}
    (path / "experiment.json").write_text(json.dumps(meta))
    for index, (blocks, accuracy) in enumerate([(3, 0.95), (2, 0.945), (1, 0.90)]):
        trial = path / f"trial_{index:05d}"
        trial.mkdir()
        (trial / "params.json").write_text(json.dumps({"hp": {"model.stage_blocks": blocks}}))
        params = count_parameters(build_model(ModelConfig(stage_channels=[8, 16], stage_blocks=blocks), 10, 1))
        (trial / "result.json").write_text(json.dumps({"epoch": 1, "val_accuracy": accuracy, "val_loss": 1 - accuracy,
                                                               "params": params}) + "\n")
        (trial / "ended.json").write_text('{"status": "TERMINATED"}')
    return path


def test_retrain_best_picks_from_the_front_by_the_stated_rule(tmp_path, capsys):
    import json

    from tune_app import retrain_best

    path = two_objective_experiment(tmp_path)
    # (--pick words, trial retrained, stage_blocks): the default is smallest-within 0.01.
    for words, trial, blocks in [([], "trial_00001", 2), (["--pick", "smallest-within", "0.06"], "trial_00002", 1),
                                 (["--pick", "best"], "trial_00000", 3)]:
        assert retrain_best.main(["--experiment", str(path), *words]) == 0
        out = sorted(path.glob("best*"), key=lambda p: p.stat().st_mtime)[-1]
        m = json.loads((out / "metrics.json").read_text())
        assert m["trial"] == trial and m["hparams"] == {"model.stage_blocks": blocks}
        assert m["config"]["model"]["stage_blocks"] == blocks and m["config"]["train"]["seed"] == 5
        chosen = m["chosen_by"]
        assert chosen["objectives"] == ["val_accuracy", "params"]
        assert [row["trial"] for row in chosen["front"]] == ["trial_00002", "trial_00001", "trial_00000"]
        summary = (out / "summary.md").read_text()
        assert "Pareto front of val_accuracy and params, cheapest first" in summary
        assert f"| **{trial}** |" in summary  # the pick's row is the bold one
    assert chosen["pick_rule"] == {"rule": "best"} and chosen["stage"] == "search"
    first = json.loads((path / "best" / "metrics.json").read_text())["chosen_by"]
    assert first["pick_rule"] == {"rule": "smallest-within", "tolerance": 0.01} and first["stage"] == "Pareto front"
    assert "pick rule: smallest-within 0.01" in (path / "best" / "summary.md").read_text()
    assert "chosen by the Pareto front: picked stage_blocks=2" in capsys.readouterr().out

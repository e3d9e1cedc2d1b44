"""The report's Pareto-front section on experiment folders written by hand."""

from __future__ import annotations

import json

from tests.test_pareto import write_experiment
from tune_app.experiment import load_experiment
from tune_app.report_pareto import FRONT_FIGURE, pareto_section

CONFIGS = {
    (3, 1e-3): (9000, [0.95], [3]),
    (2, 1e-3): (6000, [0.945], [3]),
    (1, 1e-3): (3000, [0.90], [3]),
    (2, 1e-2): (6000, [0.50], [1]),  # stopped by ASHA
}


def test_section_draws_the_front_and_states_the_pick(tmp_path):
    path = write_experiment(tmp_path, CONFIGS)
    figures = path / "report"
    figures.mkdir()
    text = "\n".join(pareto_section(load_experiment(path), figures))
    assert (figures / FRONT_FIGURE).is_file()
    assert "## Pareto front: val_accuracy against params" in text
    assert "1 configuration left out: 1 stopped early by ASHA" in text
    assert "| stage_blocks=1, lr=0.001 | 0.9000 | 3,000 | 1 | trial_00002 |" in text
    assert "**Pick** (`--pick smallest-within 0.01`): picked stage_blocks=2, lr=0.001" in text


def test_the_star_follows_the_rule_of_the_newest_retraining(tmp_path):
    path = write_experiment(tmp_path, CONFIGS)
    (path / "best").mkdir()
    (path / "best" / "metrics.json").write_text(json.dumps({"chosen_by": {"pick_rule": {"rule": "best"}}}))
    figures = path / "report"
    figures.mkdir()
    text = "\n".join(pareto_section(load_experiment(path), figures))
    assert "**Pick** (`--pick best`): picked trial_00000" in text


def test_no_section_for_one_objective(tmp_path):
    path = write_experiment(tmp_path, CONFIGS)
    meta = json.loads((path / "experiment.json").read_text())
    del meta["search"]["objectives"]
    (path / "experiment.json").write_text(json.dumps(meta))
    assert pareto_section(load_experiment(path), path) == []

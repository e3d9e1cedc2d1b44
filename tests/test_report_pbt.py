"""The report's PBT section: lineage table and the lr figure, only for PBT searches."""

from __future__ import annotations

from tests.test_lineage import pbt_experiment
from tests.test_report import assert_png
from tune_app import report
from tune_app.experiment import load_experiment
from tune_app.report_pbt import PBT_FIGURE, pbt_section


def test_the_report_of_a_pbt_search_has_the_lineage_table_and_the_lr_figure(tmp_path):
    path = pbt_experiment(tmp_path)
    assert report.main(["--experiment", str(path)]) == 0
    text = (path / "report.md").read_text()
    section = text.split("## Population based training", 1)[1].split("\n## ", 1)[0]
    assert "| epoch | trial | cloned from | its epoch | values before -> after |" in section
    assert "| 3 | trial_00001 | trial_00000 | 2 | lr 0.0001 -> 0.0012 |" in section
    assert f"](report/{PBT_FIGURE})" in section
    assert_png(path / "report" / PBT_FIGURE)


def test_other_schedulers_have_no_pbt_section(tmp_path):
    path = pbt_experiment(tmp_path)
    exp = load_experiment(path)
    exp.meta["scheduler"]["name"] = "asha"
    figures = tmp_path / "figures"
    figures.mkdir()
    assert pbt_section(exp, figures) == [] and not list(figures.iterdir())

"""Bad input of `python -m tune_app.report --compare`, through the harness of
tests/test_bad_input.py: one line, exit 2, the results folder (and its compare/) untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.test_bad_input import check_bad_input
from tune_app import report


def sibling(t: Path, r: str, name: str, *, results: bool = True, **changes: Any) -> str:
    """A copy, outside the results folder, of the harness's experiment `quick`, its
    experiment.json sections updated with `changes` (section -> dict merged in)."""
    path = t / name
    shutil.copytree(Path(r) / "quick", path)
    meta = json.loads((path / "experiment.json").read_text())
    for section, values in changes.items():
        meta[section] = {**meta.get(section, {}), **values}
    (path / "experiment.json").write_text(json.dumps(meta))
    if not results:
        (path / "trial_00000" / "result.json").unlink()
    return str(path)


def quick(r: str) -> str:
    return str(Path(r) / "quick")


# id -> (command, setup(tmp, results) -> argv, expected text in the error)
CASES = {
    "compare-one-folder": (report, lambda t, r: ["--compare", quick(r)], "needs at least 2 experiment folders"),
    "compare-with-experiment": (report, lambda t, r: ["--experiment", quick(r), "--compare", quick(r),
                                                      sibling(t, r, "twin")], "not both"),
    "compare-missing-folder": (report, lambda t, r: ["--compare", quick(r), str(t / "nope")],
                               "no such experiment folder"),
    "compare-not-an-experiment": (report, lambda t, r: ["--compare", quick(r), str(t)],
                                  "not a tune_app experiment folder"),
    "compare-same-twice": (report, lambda t, r: ["--compare", quick(r), quick(r)], "given twice"),
    "compare-other-dataset": (report, lambda t, r: ["--compare", quick(r), sibling(
        t, r, "cub", base={"train": {"epochs": 1}, "dataset": {"name": "cub200"}})],
        "dataset.name: not the same spec family: quick has 'digits', cub has 'cub200'"),
    "compare-other-metric": (report, lambda t, r: ["--compare", quick(r), sibling(
        t, r, "loss", search={"metric": "val_loss", "mode": "min"})], "search.metric: not the same spec family"),
    "compare-other-mode": (report, lambda t, r: ["--compare", quick(r), sibling(
        t, r, "min", search={"mode": "min"})], "search.mode: not the same spec family: quick has 'max', min has 'min'"),
    "compare-no-finished-epoch": (report, lambda t, r: ["--compare", quick(r), sibling(t, r, "new", results=False)],
                                  "no trial of this experiment has finished an epoch"),
    "compare-out-exists": (report, lambda t, r: ["--compare", quick(r), sibling(t, r, "twin"), "--out", str(t)],
                           "already exists"),
    "compare-out-in-experiment": (report, lambda t, r: ["--compare", quick(r), sibling(t, r, "twin"), "--out",
                                                        str(Path(r) / "quick" / "cmp")], "inside the experiment quick"),
    "compare-out-alone": (report, lambda t, r: ["--out", str(t / "cmp")], "only used with --compare"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    check_bad_input(CASES[case], tmp_path, capsys, monkeypatch)

"""Bad input in the results folder: missing, empty or cut files that tune_app reads back, and
a results folder that cannot be written. Same contract as tests/test_bad_input.py: one line,
exit 2, the file named, nothing in results/ changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_bad_input import check_bad_input, spec_text, w
from tune_app import report, retrain_best, search


def broken(results: str, relative: str, content: bytes | None) -> str:
    """results/quick with one file replaced (None: removed); returns the experiment folder."""
    path = Path(results) / "quick" / relative
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    return str(Path(results) / "quick")


def under_a_file(tmp: Path) -> str:
    (tmp / "not-a-folder").write_text("a file where results should go")
    return str(tmp / "not-a-folder" / "results")


CASES = {
    "resume-record-cut": (search, lambda t, r: ["--resume", broken(r, "experiment.json", b'{"status": "inter')],
                          "experiment.json: the experiment's record is not valid JSON"),
    "retrain-record-empty": (retrain_best, lambda t, r: ["--experiment", broken(r, "experiment.json", b"")],
                             "experiment.json: the experiment's record is empty"),
    "report-record-cut": (report, lambda t, r: ["--experiment", broken(r, "experiment.json", b'{"base": ')],
                          "experiment.json: the experiment's record is not valid JSON"),
    "retrain-params-missing": (retrain_best, lambda t, r: ["--experiment", broken(
        r, "trial_00000/params.json", None)], "params.json: the trial's configuration is missing"),
    "report-end-marker-empty": (report, lambda t, r: ["--experiment", broken(r, "trial_00000/ended.json", b"")],
                                "ended.json: the trial's end marker is empty"),
    "results-under-a-file": (search, lambda t, r: ["--space", w(t, spec_text(results=under_a_file(t)))],
                             "is a file, so no results folder can be made under it"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    check_bad_input(CASES[case], tmp_path, capsys, monkeypatch)

"""Bad --warm-start input, through the harness of tests/test_bad_input.py: one line naming the
earlier experiment, the field and both values, exit 2, nothing written (the earlier experiments
live in the results folder the harness checks, so they are left exactly as they were too)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.test_bad_input import check_bad_input, spec_text, w
from tests.test_warm import earlier
from tune_app import search

GRID = "  lr: {grid: [1.0e-3, 3.0e-3]}\n"


def source(r: str, text: str = "", name: str = "A", train: str = GRID, running: bool = False) -> str:
    """An earlier experiment in the results folder: the new spec's settings, edited by `text`
    ("old>new;old>new" replacements of spec_text's lines, or a prefix of sections)."""
    spec = spec_text(train, r)
    for edit in filter(None, text.split(";")):
        if ">" in edit:
            old, new = edit.split(">")
            spec = spec.replace(old, new)
        else:
            spec = edit + spec
    path = earlier(Path(r), name, spec, [({"train.lr": 1e-3}, [0.5], True)],
                   status="running" if running else "finished")
    if running:  # held by a live process other than this one (as a search in another terminal)
        import psutil

        meta = json.loads((path / "experiment.json").read_text())
        meta.update(pid=os.getppid(), pid_started=psutil.Process(os.getppid()).create_time())
        (path / "experiment.json").write_text(json.dumps(meta))
    return str(path)


def new(t: Path, r: str, *sources: str, extra: str = "", train: str = GRID) -> list[str]:
    return ["--space", w(t, extra + spec_text(train, r)), "--warm-start", *sources]


CASES = {
    "warm-other-dataset": (search, lambda t, r: new(t, r, source(r, "name: digits>name: cub200")),
                           "dataset.name is 'cub200' there but 'digits' in"),
    "warm-other-model-family": (search, lambda t, r: new(t, r, source(
        r, "  stage_blocks: 1\n>  stage_blocks: 1\n  block: conv_gconv\n  groups: 2\n")),
        "model.block is 'conv_gconv' there but 'conv' in"),
    "warm-other-fixed-setting": (search, lambda t, r: new(t, r, source(r, "train:\n>train:\n  batch_size: 32\n")),
                                 "train.batch_size is 32 there but 128 in"),
    "warm-other-metric": (search, lambda t, r: new(t, r, source(r, "search:\n  metric: val_loss\n")),
                          "search.metric is 'val_loss' there but 'val_accuracy' in"),
    "warm-random-search": (search, lambda t, r: new(t, r, source(r), extra="search:\n  algorithm: random\n",
                                                    train="  lr: {choice: [1.0e-3, 3.0e-3]}\n"),
                           "search.algorithm random draws its configurations without looking at results"),
    "warm-pbt": (search, lambda t, r: new(t, r, source(r), train="  epochs: 2\n" + GRID,
                                          extra="scheduler:\n  name: pbt\n  perturbation_interval: 1\n"),
                 "pbt trains a population that starts together"),
    "warm-not-an-experiment": (search, lambda t, r: new(t, r, str(t)), "not a tune_app experiment folder"),
    "warm-twice": (search, lambda t, r: new(t, r, source(r), str(Path(r) / "A")), "is given twice"),
    "warm-source-running": (search, lambda t, r: new(t, r, source(r, running=True)),
                            "is in use by a running search"),
    "warm-with-resume": (search, lambda t, r: ["--resume", str(Path(r) / "quick"), "--warm-start", source(r)],
                         "--warm-start: applies to a new search"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    check_bad_input(CASES[case], tmp_path, capsys, monkeypatch)

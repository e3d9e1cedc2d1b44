"""Bad spec files, experiment names, flags and a busy experiment, in the harness of
test_bad_input: one line naming file/key and fix, exit code 2, no traceback, and the results
folder (which holds an earlier experiment `quick`) exactly as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.test_bad_input import check_bad_input, fake_experiment, spec_text, w
from tune_app import retrain_best, search


def wb(tmp: Path, data: bytes) -> str:
    path = tmp / "spec.yaml"
    path.write_bytes(data)
    return str(path)


def alias_bomb(levels: int = 12) -> str:
    """Each mapping holds nine aliases of the previous one: 9**levels nodes once expanded."""
    lines = ["a0: &a0 {x: 1}"]
    lines += [f"a{i}: &a{i} {{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(9)) + "}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def busy_experiment(tmp: Path) -> str:
    """An experiment whose search (this test's parent process, really alive) is still running."""
    from tune_app.lock import _psutil

    path = fake_experiment(tmp / "busy", "quick", status="running", pid=os.getppid())
    meta = json.loads((path / "experiment.json").read_text())
    meta["pid_started"] = _psutil().Process(os.getppid()).create_time()
    (path / "experiment.json").write_text(json.dumps(meta))
    (path / "trial_00000" / "result.json").write_text('{"epoch": 1, "val_accuracy": 0.5}\n')
    return str(path)


def big_grid(r: str) -> str:
    values = ", ".join(f"{(i + 1) * 1e-5:.5f}" for i in range(1001))
    return spec_text(f"  lr: {{grid: [{values}]}}\n", r)


# id -> (command, setup(tmp, results) -> argv, expected text in the error)
CASES = {
    "name-escapes-results": (search, lambda t, r: ["--space", w(t, spec_text(results=r).replace(
        "name: quick", "name: ../results/quick"))], "output.name: experiment name '../results/quick' contains a path"),
    "name-flag-is-a-path": (search, lambda t, r: ["--space", w(t, spec_text(results=r)), "--name", "/tmp/quick"],
                            "--name: experiment name '/tmp/quick' contains a path separator"),
    "name-dot-dot": (search, lambda t, r: ["--space", w(t, spec_text(results=r)), "--name", ".."],
                     "'..' is not a folder name"),
    "spec-not-utf8": (search, lambda t, r: ["--space", wb(t, spec_text(results=r).encode() + "# caf\xe9\n".encode(
        "latin-1"))], "not UTF-8"),
    "spec-empty": (search, lambda t, r: ["--space", w(t, "# only a comment\n")], "the spec is empty"),
    "spec-empty-mapping": (search, lambda t, r: ["--space", w(t, "{}\n")], "the spec is empty"),
    "yaml-recursive-alias": (search, lambda t, r: ["--space", w(t, "train: &t\n  again: *t\n")],
                             "spec.yaml:2: recursive YAML alias"),
    "yaml-too-deep": (search, lambda t, r: ["--space", w(t, "train:\n  lr: " + "[" * 3000 + "]" * 3000 + "\n")],
                      "nested more than"),
    "yaml-alias-bomb": (search, lambda t, r: ["--space", w(t, alias_bomb())], "YAML expands to more than"),
    "too-many-trials": (search, lambda t, r: ["--space", w(t, big_grid(r))], "--max-trials: the search would launch 1001 trials, more than the limit of 1000"),
    "dashboard-port-out-of-range": (search, lambda t, r: ["--space", w(t, spec_text(results=r)),
                                                          "--dashboard-port", "70000"], "--dashboard-port"),
    "dashboard-host-not-an-ip": (search, lambda t, r: ["--space", w(t, spec_text(results=r)),
                                                       "--dashboard-host", "my laptop"], "--dashboard-host"),
    "zero-cpus": (search, lambda t, r: ["--space", w(t, spec_text(results=r)), "--num-cpus", "0"], "--num-cpus"),
    "negative-gpus": (search, lambda t, r: ["--space", w(t, spec_text(results=r)), "--num-gpus", "-1"], "--num-gpus"),
    "max-trials-zero": (search, lambda t, r: ["--space", w(t, spec_text(results=r)), "--max-trials", "0"],
                        "--max-trials"),
    "retrain-while-searching": (retrain_best, lambda t, r: ["--experiment", busy_experiment(t)],
                                f"the search is still running (pid {os.getppid()}"),
}


@pytest.fixture(scope="module", autouse=True)
def _shutdown_ray():
    yield
    import ray

    ray.shutdown()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    check_bad_input(CASES[case], tmp_path, capsys, monkeypatch)

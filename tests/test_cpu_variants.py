"""The shipped laptop specs (*_cpu.yaml): valid, GPU-free, pointing at real sample data; and a
GPU spec on a CPU machine says so before any data is read, naming its CPU variant."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import yaml

from tests.conftest import REPO, needs_shared_data
from tune_app.search import cpu_variant, describe_trials
from tune_app.spec import load_spec

CPU_SPECS = sorted((REPO / "search_spaces").glob("*_cpu.yaml"))
GPU_SPECS = {"grid.yaml": "cub_cpu.yaml", "tiny_imagenet_grid.yaml": "tiny_imagenet_cpu.yaml",
             "optuna.yaml": "tiny_imagenet_cpu.yaml"}


@needs_shared_data
@pytest.mark.parametrize("path", CPU_SPECS, ids=lambda p: p.name)
def test_cpu_specs_need_no_gpu_and_read_the_shared_samples(path):
    spec = load_spec(path)
    assert spec.resources.gpus_per_trial == 0 and spec.resources.cpus_per_trial == 1
    # Paths are relative to the repository root, where the README runs them from.
    assert (REPO / spec.base.dataset.path).is_dir()


def test_every_gpu_spec_has_a_cpu_variant_for_its_dataset():
    for gpu, cpu in GPU_SPECS.items():
        assert cpu_variant(load_spec(REPO / "search_spaces" / gpu)).name == cpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="the advice is for machines without a GPU")
def test_dry_run_says_what_a_gpu_spec_needs_and_where_the_cpu_variant_is(monkeypatch):
    monkeypatch.chdir(REPO)
    text = describe_trials(load_spec("search_spaces/tiny_imagenet_grid.yaml"))
    assert "needs per trial: 2 CPU(s), 0.25 GPU(s); this machine has no GPU" in text
    assert "search_spaces/tiny_imagenet_cpu.yaml" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="the advice is for machines without a GPU")
def test_a_gpu_spec_on_a_cpu_machine_fails_before_the_data_naming_the_cpu_variant(tmp_path):
    spec = yaml.safe_load((REPO / "search_spaces" / "tiny_imagenet_grid.yaml").read_text())
    spec["output"]["results_dir"] = str(tmp_path / "results")
    spec["dataset"]["path"] = str(tmp_path / "no-such-data")  # never read: the resources fail first
    (tmp_path / "tiny_imagenet_grid.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "tiny_imagenet_cpu.yaml").write_text((REPO / "search_spaces" / "tiny_imagenet_cpu.yaml").read_text())
    proc = subprocess.run([sys.executable, "-m", "tune_app.search", "--space", str(tmp_path / "tiny_imagenet_grid.yaml")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "resources.gpus_per_trial: 0.25 GPUs per trial" in lines[0]
    assert f"--space {tmp_path / 'tiny_imagenet_cpu.yaml'}" in lines[0]
    assert not (tmp_path / "results" / "tiny_imagenet_grid").exists()

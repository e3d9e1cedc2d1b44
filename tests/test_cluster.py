"""A real two-node Ray cluster on this machine (`ray start --head` + `ray start --address`)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO, make_spec
from tune_app.experiment import load_experiment
from tune_app.tuner.network import SINGLE_HOST_ENV

# Every test here runs (or shares a module fixture that runs) a real Ray search.
pytestmark = pytest.mark.ray

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster():
    # A short private temp dir (Ray's socket paths must stay under ~107 characters) and a
    # private token, so this cluster neither joins nor disturbs any other Ray on the machine.
    tmp = Path(tempfile.mkdtemp(prefix="tr", dir="/tmp"))
    (tmp / "token").write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(tmp / "token")}
    env.pop("RAY_ADDRESS", None)
    # An in-process search earlier in the session keeps its own Ray on loopback through this
    # variable (tune_app.tuner.network); a node that must join a cluster cannot have it.
    env.pop(SINGLE_HOST_ENV, None)
    port = free_port()
    address = f"127.0.0.1:{port}"
    try:
        subprocess.run([RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
                        "--num-gpus=0", f"--temp-dir={tmp}", "--include-dashboard=false", "--disable-usage-stats"],
                       env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([RAY, "start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                        "--num-gpus=0", "--disable-usage-stats"], env=env, check=True, capture_output=True,
                       timeout=120)
        yield address, env, tmp
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def test_search_spreads_trials_over_both_nodes_into_shared_storage(cluster, tmp_path):
    address, env, _ = cluster
    spec = make_spec(tmp_path, {"scheduler": {"name": "none"}, "train": {"epochs": 3}})  # results: local-only
    cmd = [sys.executable, "-m", "tune_app.search", "--space", str(spec), "--address", address]

    refused = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--storage" in refused.stderr, refused.stderr
    assert not (tmp_path / "results").exists()

    shared = tmp_path / "shared"
    done = subprocess.run(cmd + ["--storage", str(shared)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    exp = load_experiment(shared / "quick")
    assert len(exp.trials) == 4 and all(t.epochs_run == 3 for t in exp.trials)
    nodes = {row["node_id"] for t in exp.trials for row in t.history}
    assert len(nodes) == 2  # trials ran on both nodes
    for trial in exp.trials:  # every result and checkpoint landed in the shared storage
        assert trial.checkpoints() and list((trial.path / "tb").glob("events.*"))
    assert json.loads((shared / "quick" / "experiment.json").read_text())["status"] == "finished"

"""While a real search runs (a subprocess, as a user runs it), every port of its Ray instance
listens on loopback only: with the dashboard on 127.0.0.1, nothing Ray starts answers other
machines (its metrics port needs no token)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import make_spec
from tune_app.tuner.network import SINGLE_HOST_ENV, is_loopback

# Every test here runs (or shares a module fixture that runs) a real Ray search.
pytestmark = pytest.mark.ray

# One trial of a few epochs: long enough for every Ray process (GCS, raylet, dashboard and its
# agent, runtime-env agent, the trial's worker) to be up and listening while we look.
SPEC = {"model": {"groups": 2}, "train": {"epochs": 4, "lr": 3.0e-3}, "scheduler": {"name": "none"},
        "output": {"name": "ports"}}


def _psutil():
    import ray  # noqa: F401  (Ray vendors psutil and puts it on sys.path)
    import psutil

    return psutil


def _listening(root_pid: int) -> set[tuple[str, int, str]]:
    """(address, port, process name) of every TCP socket listening in root_pid's process tree
    (Ray serves nothing over UDP)."""
    psutil = _psutil()
    try:
        root = psutil.Process(root_pid)
        tree = {p.pid: p for p in [root, *root.children(recursive=True)]}
    except psutil.NoSuchProcess:
        return set()
    found = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.pid in tree and conn.status == psutil.CONN_LISTEN:
            try:
                name = tree[conn.pid].name()
            except psutil.NoSuchProcess:
                name = "?"
            found.add((conn.laddr.ip, conn.laddr.port, name))
    return found


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


@pytest.mark.slow
def test_a_local_search_listens_on_loopback_only(tmp_path):
    spec = make_spec(tmp_path, SPEC, "ports.yaml")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    env.pop(SINGLE_HOST_ENV, None)
    process = subprocess.Popen([sys.executable, "-m", "tune_app.search", "--space", str(spec), "--num-cpus", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen: set[tuple[str, int, str]] = set()
    try:
        deadline = time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline:
            seen |= _listening(process.pid)
            time.sleep(0.5)
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate()[0]
    assert process.returncode == 0, output[-3000:]
    names = {name for _, _, name in seen}
    # Ray really ran and was seen: its GCS, raylet and dashboard agent listen on some port.
    assert {"gcs_server", "raylet"} <= names and any("DashboardAgent" in n for n in names), seen
    exposed = sorted(s for s in seen if not _loopback(s[0]))
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_loopback_only_for_a_local_instance_with_a_loopback_dashboard(tmp_path, monkeypatch):
    """Joining a cluster or exposing the dashboard leaves the interfaces to Ray."""
    from tune_app import search

    monkeypatch.delenv(SINGLE_HOST_ENV, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    spec = str(make_spec(tmp_path, SPEC))
    for flags, loopback in [([], True), (["--address", "auto"], False), (["--dashboard-host", "::1"], True),
                            (["--dashboard-host", "0.0.0.0"], False)]:
        assert search.main(["--space", spec, "--dry-run", *flags]) == 0
        assert (os.environ.get(SINGLE_HOST_ENV) == "0") == loopback, flags
    assert is_loopback("localhost") and not is_loopback("10.0.0.1")

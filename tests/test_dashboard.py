"""While a real search runs (as a user runs it, in a subprocess): the Ray dashboard address it
prints is local and answers, requests without Ray's auth token are refused, and TensorBoard's
HParams tab already has numbers for the trials still running."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.test_tensorboard import TensorBoardApp, metric_values
from tune_app.experiment import load_experiment
from tune_app.tb import HPARAM_METRICS

# Every test here runs (or shares a module fixture that runs) a real Ray search.
pytestmark = pytest.mark.ray

# 2 trials x 12 epochs, no early stopping: long enough (~20 s) to look at it while it runs.
LIVE_SPEC = {
    "model": {"groups": {"grid": [2, 4]}},
    "train": {"epochs": 12, "lr": 3.0e-3},
    "scheduler": {"name": "none"},
    "output": {"name": "live"},
}
DASHBOARD_LINE = re.compile(r"Ray dashboard: (http://\S+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveSearch:
    """`python -m tune_app.search` in a subprocess, its output collected line by line."""

    def __init__(self, spec: Path, dashboard_port: int):
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tune_app.search", "--space", str(spec), "--num-cpus", "2",
             "--dashboard-port", str(dashboard_port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            self._queue.put(line)

    def wait_for_line(self, pattern: re.Pattern, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                match = pattern.search(self._queue.get(timeout=0.5))
            except queue.Empty:
                if self.process.poll() is not None and self._queue.empty():
                    break
                continue
            if match:
                return match
        raise AssertionError(f"no line matching {pattern.pattern!r}; output:\n{''.join(self.lines)[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # the search stops gracefully on Ctrl-C
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from tests.conftest import make_spec

    tmp = tmp_path_factory.mktemp("live")
    spec = make_spec(tmp, LIVE_SPEC, "live.yaml")
    port = _free_port()
    search = LiveSearch(spec, port)
    try:
        url = search.wait_for_line(DASHBOARD_LINE, 180).group(1)
        yield search, url, port, tmp / "results" / "live"
    finally:
        search.stop()


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _auth_token() -> str:
    """The token as a user gets it: `ray get-auth-token` (the ray CLI of this environment)."""
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    assert ray_cli, "the ray CLI is not installed"
    done = subprocess.run([ray_cli, "get-auth-token"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _auth_mode(url: str) -> str:
    status, body = _get(f"{url}/api/authentication_mode")  # public: the web UI asks it first
    assert status == 200, body
    return json.loads(body)["authentication_mode"]


def test_dashboard_address_is_printed_local_and_answers(live):
    _, url, port, _ = live
    address = urlparse(url)
    assert (address.hostname, address.port) == ("127.0.0.1", port), url
    token = _auth_token() if _auth_mode(url) == "token" else None
    status, body = _get(f"{url}/api/version", token)
    assert status == 200, body
    assert json.loads(body)["ray_version"]


def _outward_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("198.51.100.1", 9))  # TEST-NET-2: only the route is looked up
        except OSError:
            return None
        return s.getsockname()[0]


def test_dashboard_is_not_reachable_from_other_interfaces(live):
    _, _, port, _ = live
    address = _outward_address()
    if address is None or address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    with socket.socket() as s:
        s.settimeout(3)
        assert s.connect_ex((address, port)) != 0, f"the dashboard also answers on {address}:{port}"


def test_requests_without_the_token_are_refused(live):
    _, url, _, _ = live
    if _auth_mode(url) != "token":
        pytest.skip("Ray token authentication is disabled here (RAY_AUTH_MODE=disabled)")
    assert _get(f"{url}/api/version")[0] == 401
    assert _get(f"{url}/api/version", "not-the-token")[0] == 403


def test_running_trials_already_have_hparams_values(live, tmp_path):
    """The HParams tab during the search: a trial still training is a row with numbers."""
    search, _, _, experiment = live
    TensorBoardApp(tmp_path)  # TensorBoard's imports take seconds the first time: not in the race below
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and search.process.poll() is None:
        exp = load_experiment(experiment) if (experiment / "experiment.json").is_file() else None
        # From epoch 2: the event file may trail result.json by an epoch. Up to half its epochs:
        # the trial cannot have ended by the time TensorBoard has read it.
        running = [t for t in exp.trials if 2 <= t.epochs_run <= exp.max_epochs // 2] if exp else []
        if running:
            groups = TensorBoardApp(experiment.parent).session_groups()
            for trial in running:
                group = groups[f"{experiment.name}/{trial.name}/tb"]
                values = metric_values(group)
                assert set(HPARAM_METRICS) <= set(values), (trial.name, values)
                assert values["hparams/epochs_run"] >= 1 and values["hparams/best_val_accuracy"] > 0
                assert [s["status"] for s in group["sessions"]] == ["STATUS_UNKNOWN"]  # not ended
            return
        time.sleep(0.5)
    pytest.fail("no trial was seen running with a finished epoch:\n" + "".join(search.lines)[-3000:])


def test_search_finishes_normally(live):
    search, _, _, experiment = live
    assert search.process.wait(300) == 0, "".join(search.lines)[-3000:]
    assert json.loads((experiment / "experiment.json").read_text())["status"] == "finished"

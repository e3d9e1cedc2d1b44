"""Headless Chromium opens TensorBoard's HParams tab on a finished search: every trial is a row
and every metric cell holds a number. The screenshot goes to tmp_path, and to docs/hparams.png
with TUNE_APP_UPDATE_DOCS=1.

Needs Debian's chromium + chromium-driver and the selenium package (test extras). Without them
the test is skipped on a developer machine and fails in CI (env CI set), where it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from tests.test_tensorboard import ALL_STATUSES, small_finished_search
from tune_app.experiment import load_experiment
from tune_app.tb import HPARAM_METRICS

# Every test here runs (or shares a module fixture that runs) a real Ray search.
pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[1]
DOCS_SCREENSHOT = REPO / "docs" / "hparams.png"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Without the networking/update/sync switches Chromium phones home at start, which on a closed
# network means refused connections and a slow start; a fresh profile keeps runs independent.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--window-size=1920,1000")

# The HParams table is a vaadin-grid inside nested shadow roots; its cells are slotted
# elements. Returns the header texts and the text of every rendered body row, in column order.
READ_TABLE_JS = r"""
function find(root, tag) {
  const stack = [root];
  while (stack.length) {
    const node = stack.pop();
    if (node.nodeType === 1 && node.tagName.toLowerCase() === tag) return node;
    if (node.shadowRoot) stack.push(node.shadowRoot);
    for (const child of node.children || []) stack.push(child);
  }
  return null;
}
const grid = find(document.body, 'vaadin-grid');
if (!grid || !grid.shadowRoot) return null;
const text = cell => {
  const slot = cell.querySelector('slot');
  return slot ? slot.assignedNodes().map(n => n.textContent).join('').trim() : '';
};
const rows = selector => [...grid.shadowRoot.querySelectorAll(selector)]
  .filter(tr => !tr.hidden).map(tr => [...tr.children].map(text));
return {header: rows('thead tr')[0] || [], body: rows('tbody tr')};
"""


def _missing_tools() -> list[str]:
    missing = []
    if not any(shutil.which(b) for b in BROWSERS):
        missing.append("chromium")
    if not shutil.which("chromedriver"):
        missing.append("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    return missing


@pytest.fixture(scope="module")
def browser():
    missing = _missing_tools()
    if missing:
        reason = (f"{', '.join(missing)} not installed (apt-get install -y chromium chromium-driver; "
                  f"pip install -e '.[test]')")
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the browser test")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = next(shutil.which(b) for b in BROWSERS if shutil.which(b))
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except OSError:  # the server is not listening yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def tensorboard(tmp_path_factory):
    """A real `tensorboard --logdir results` (default fast loader) on a free local port."""
    experiment = small_finished_search(tmp_path_factory)
    runs = [f"{experiment.name}/{t.name}/tb" for t in load_experiment(experiment).trials]
    runs.append(f"{experiment.name}/best/tb")
    port = _free_port()
    log = tmp_path_factory.mktemp("tensorboard") / "tensorboard.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(experiment.parent),
                                    "--port", str(port), "--host", "127.0.0.1"], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def every_session_loaded() -> bool:
        # The data server reads the event files in the background after TensorBoard answers.
        body = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "startIndex": 0, "sliceSize": 1000}
        groups = _post_json(f"{url}/data/plugin/hparams/session_groups", body)["sessionGroups"]
        loaded = {g["name"] for g in groups if HPARAM_METRICS[0] in {m["name"]["tag"] for m in g["metricValues"]}}
        return set(runs) <= loaded

    try:
        wait_for(every_session_loaded, 90, f"TensorBoard on {url} to load every session (log: {log})")
        yield url, runs
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _as_number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


@pytest.mark.browser
@pytest.mark.ray
def test_hparams_tab_shows_a_number_in_every_metric_cell(browser, tensorboard, tmp_path):
    url, runs = tensorboard
    browser.get(f"{url}/#hparams")

    def table_with_every_run() -> Optional[dict[str, Any]]:
        table = browser.execute_script(READ_TABLE_JS)
        if table and runs and {row[0] for row in table["body"]} >= set(runs):
            return table
        return None

    table = wait_for(table_with_every_run, 60, "the HParams table to list every run")
    header = table["header"]
    assert header[0] == "Trial ID" and {"groups", "lr", "trial"} <= set(header), header
    columns = {metric: header.index(metric) for metric in HPARAM_METRICS if metric in header}
    assert set(columns) == set(HPARAM_METRICS), f"metric columns missing from the table: {header}"
    rows = {row[0]: row for row in table["body"]}
    empty = {(run, metric): rows[run][i] for run in runs for metric, i in columns.items()
             if _as_number(rows[run][i]) is None}
    assert not empty, f"HParams cells without a number: {empty}"
    epochs = {run: _as_number(rows[run][columns["hparams/epochs_run"]]) for run in runs}
    assert all(e >= 1 for e in epochs.values()), epochs

    shot = tmp_path / "hparams.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("TUNE_APP_UPDATE_DOCS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)

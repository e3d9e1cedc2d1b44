from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# The sample data lives beside the checkout (../shared/data). A developer without it skips the
# tests that read it; CI must have it, so there a missing folder fails those tests instead.
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir() and not os.environ.get("CI"),
    reason=f"shared sample data not found at {SHARED_DATA}")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# A cold datasets cache of its own, as on a fresh CI machine: a warm ~/.cache/huggingface would
# hide first-load behaviour (e.g. "Generating train split" lines on stderr). Set at import
# time because `datasets` reads it when first imported.
_HF_CACHE = tempfile.mkdtemp(prefix="tune_app_test_hf_")
os.environ["HF_DATASETS_CACHE"] = _HF_CACHE
atexit.register(shutil.rmtree, _HF_CACHE, ignore_errors=True)

# Ray's sessions of this test run go to a folder of their own (short: Ray's socket paths must
# stay under 108 bytes), so that a test that starts Ray - in this process or in a `python -m
# tune_app.search` it runs - is seen doing it, and must carry @pytest.mark.ray.
_RAY_TMP = tempfile.mkdtemp(prefix="rt", dir="/tmp")
os.environ["RAY_TMPDIR"] = _RAY_TMP
atexit.register(shutil.rmtree, _RAY_TMP, ignore_errors=True)


def _ray_sessions() -> set[str]:
    return {p.name for p in Path(_RAY_TMP).glob("ray/session_2*")}


def pytest_collection_modifyitems(config, items):
    # Ray and browser tests are end to end: the fast loop (pytest -m "not slow") leaves them out.
    for item in items:
        if item.get_closest_marker("ray") or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


def _ray_up() -> bool:
    import sys

    ray = sys.modules.get("ray")
    return bool(ray and ray.is_initialized())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before any fixture: a module fixture that runs a search counts for the test that needs it.
    item._ray_before = (_ray_sessions(), _ray_up())


@pytest.fixture(autouse=True)
def _ray_tests_are_marked(request):
    """A test that starts Ray without @pytest.mark.ray fails: the fast loop must stay fast.
    TUNE_APP_RECORD_RAY=FILE lists such tests in FILE instead (to mark them in one go)."""
    import sys

    before, was_up = getattr(request.node, "_ray_before", (_ray_sessions(), _ray_up()))
    yield
    ray = sys.modules.get("ray")
    started = _ray_sessions() != before or (not was_up and bool(ray and ray.is_initialized()))
    if started and not request.node.get_closest_marker("ray"):
        record = os.environ.get("TUNE_APP_RECORD_RAY")
        if record:
            with open(record, "a") as f:
                f.write(request.node.nodeid + "\n")
        elif "not slow" in (request.config.option.markexpr or ""):
            # The fast loop promised no Ray: fail there. A full run (CI) only warns, so a test
            # that needs its mark does not hide the rest of the suite's verdict.
            pytest.fail(f"{request.node.nodeid} started Ray: mark it @pytest.mark.ray", pytrace=False)
        else:
            import warnings

            warnings.warn(f"{request.node.nodeid} started Ray without @pytest.mark.ray")

# A quick digits search: small model, few epochs, 4 grid points.
QUICK_SPEC = {
    "dataset": {"name": "digits"},
    "model": {"stage_channels": [8, 16, 32], "stage_blocks": 1, "block": "conv_gconv",
              "stem_channels": 8, "bias": True, "groups": {"grid": [2, 4]}},
    "train": {"epochs": 4, "batch_size": 64, "lr": {"grid": [1.0e-4, 3.0e-3]}, "seed": 0},
    "search": {"algorithm": "grid"},
    "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
    "resources": {"cpus_per_trial": 1},
    "output": {"name": "quick", "keep_checkpoints": 2},
    "retrain": {"epochs": 3},
    # No race after the search: tests of the search would otherwise train 3 x 3 more runs each
    # (tests/test_race.py covers the race).
    "select": {"finalists": 0},
}


def reference_stats(images):
    """Per-channel mean/std of uint8 (N, C, H, W) images computed the plain way, in [0, 1] units."""
    pixels = images.transpose(1, 0, 2, 3).reshape(images.shape[1], -1) / 255.0
    return pixels.mean(axis=1), pixels.std(axis=1)


def deep_merge(base: dict, extra: dict) -> dict:
    """Merge sections; a search domain in `extra` replaces the value instead of merging."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key in (
                "dataset", "augment", "model", "train", "search", "scheduler", "resources", "output", "retrain", "select"):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def make_spec(directory: Path, extra: dict | None = None, name: str = "spec.yaml") -> Path:
    """QUICK_SPEC merged with `extra`, results under directory/results, written as YAML."""
    data = deep_merge(QUICK_SPEC, extra or {})
    data["output"] = {**data["output"], "results_dir": str(directory / "results")}
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_decode_cache(tmp_path_factory):
    """Decoded datasets go to a session folder, never the user's ~/.cache/tune_app."""
    os.environ.setdefault("TUNE_APP_CACHE", str(tmp_path_factory.mktemp("tune_app_cache")))


@pytest.fixture(autouse=True, scope="session")
def _private_secret(tmp_path_factory):
    """Results are signed with a key of the test session, never the user's ~/.config/tune_app/secret
    (set in the environment, so the searches the tests start and their Ray workers use it too)."""
    from tune_app.integrity import SECRET_ENV, load_key

    os.environ.setdefault(SECRET_ENV, str(tmp_path_factory.mktemp("tune_app_secret") / "secret"))
    load_key(create=True)


@pytest.fixture
def write_spec(tmp_path):
    """write_spec(overrides=None, text=None) -> path of a spec file in tmp_path."""

    def write(overrides: dict | None = None, text: str | None = None, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        if text is None:
            return make_spec(tmp_path, overrides, name)
        path.write_text(text)
        return path

    return write


@pytest.fixture
def small_fs(tmp_path):
    """small_fs(size="300k", read_only=False) -> a fresh tmpfs of that size, unmounted afterwards.

    A real file system that fills up or refuses writes, so ENOSPC and EROFS come from the
    kernel, not from a mock. Mounting needs root (developers' machines and CI run as root);
    CI must not skip, so there a failed mount fails the test.
    """
    mounted: list[Path] = []

    def mount(size: str = "300k", read_only: bool = False) -> Path:
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            if os.environ.get("CI"):
                pytest.fail(f"cannot mount a tmpfs in CI: {proc.stderr.strip()}")
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.fixture
def hub_offline(monkeypatch):
    """Offline even if `datasets` was imported before the environment above was set."""
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """Number of images each call of the decoder was asked to decode."""
    from tune_app.data import decode

    calls: list[int] = []
    real = decode.decode_images

    def counting(batches, out, *args, **kwargs):
        calls.append(out.shape[0])
        return real(batches, out, *args, **kwargs)

    monkeypatch.setattr(decode, "decode_images", counting)
    return calls

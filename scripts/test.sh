#!/usr/bin/env bash
# README command 2: install with the test extras and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# tests/test_screenshot.py drives Debian's Chromium headless; in CI it must run, so install it.
if ! command -v chromedriver >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
EXTRAS="[test]" bash scripts/setup_env.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python -m pytest -q "$@"

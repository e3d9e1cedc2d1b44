#!/usr/bin/env bash
# README command 2: install with the test extras and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="[test]" bash scripts/setup_env.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python -m pytest -q "$@"

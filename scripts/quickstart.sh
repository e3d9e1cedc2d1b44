#!/usr/bin/env bash
# README command 1: install, run the quickstart search on the embedded digits dataset, then
# retrain the best configuration and evaluate it once on the held-out test split.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate
python -m tune_app.search --space search_spaces/quickstart.yaml
python -m tune_app.retrain_best

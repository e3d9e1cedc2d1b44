#!/usr/bin/env bash
# Create .venv and install tune_app into it. On a machine without a GPU, the CPU build of
# torch is installed first: otherwise pip resolves torch to the CUDA build (several GB).
# GPU machines: TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124" bash scripts/setup_env.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
if ! python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    python -m pip install -q ${TORCH_SPEC:-torch}
  else
    python -m pip install -q ${TORCH_SPEC:-torch==2.13.0}
  fi
fi
# setuptools prints an 11-line notice on every editable install, a warning that -q does not
# hide; it is advice for package authors, not for someone running the quickstart.
PYTHONWARNINGS="ignore:Editable installation" python -m pip install -q -e ".${EXTRAS:-}"

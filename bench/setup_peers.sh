#!/usr/bin/env bash
# Idempotent setup of the Python "peer" frameworks used by bench/compare.sh.
# Creates .venv-bench at the repo root (git-ignored via .venv*/) and installs
# torch (default PyPI wheel), tensorflow-cpu, numpy and Pillow into it.
# Quiet when everything is already installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV_BENCH:-$ROOT/.venv-bench}"
PY="$VENV/bin/python"

if [[ ! -x "$PY" ]]; then
    echo "[setup_peers] creating venv at $VENV" >&2
    python3 -m venv "$VENV"
fi

# Already complete? Then say nothing and exit.
if "$PY" - <<'PYEOF' >/dev/null 2>&1
import importlib.util, sys
mods = ["torch", "tensorflow", "numpy", "PIL"]
sys.exit(0 if all(importlib.util.find_spec(m) for m in mods) else 1)
PYEOF
then
    exit 0
fi

echo "[setup_peers] installing torch, tensorflow-cpu, numpy, Pillow into $VENV (large download: torch's default wheel pulls CUDA libs)" >&2
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet torch tensorflow-cpu numpy Pillow
"$PY" - <<'PYEOF' >&2
import torch, tensorflow as tf, numpy, PIL
print(f"[setup_peers] torch {torch.__version__}, tensorflow {tf.__version__}, "
      f"numpy {numpy.__version__}, Pillow {PIL.__version__}")
PYEOF

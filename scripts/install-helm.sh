#!/usr/bin/env bash
# Install the pinned helm and kubectl binaries into .tools/bin (idempotent). Usage: scripts/install-helm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
exec "$PYTHON" scripts/install_helm.py "$@"

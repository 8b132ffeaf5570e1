#!/usr/bin/env bash
# Set up everything and run the whole test suite: lint, types, unit, conformance, integration,
# end-to-end and chart checks. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/system-packages.sh
if [ -f scripts/install-helm.sh ]; then bash scripts/install-helm.sh; fi
export PATH="$PWD/.tools/bin:$PATH"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
bash scripts/with-docker.sh .venv/bin/python -m pytest -q -p no:cacheprovider "$@"

#!/usr/bin/env bash
# Run a command with a Docker engine and the locally built images (tests/support/images.py):
#   bash scripts/with-docker.sh .venv/bin/python -m pytest ...
# Uses an engine that already answers, or starts our own (scripts/docker-engine.sh) and stops
# exactly that one when the command ends, whatever its outcome. The image names are exported,
# and CONNAISSEUR_REQUIRE_CONTAINERS=1 makes the container variants of the tests fail instead
# of skip. CONNAISSEUR_DOCKER=0 runs the command without any of this.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${CONNAISSEUR_DOCKER:-1}" = 0 ]; then
  exec "$@"
fi
trap 'bash scripts/docker-engine.sh stop' EXIT
if ! engine="$(bash scripts/docker-engine.sh start)"; then
  echo "with-docker: no Docker engine (CONNAISSEUR_DOCKER=0 runs without one)" >&2
  exit 1
fi
eval "$engine"
images="$(.venv/bin/python -m tests.support.images --product)"
eval "$images"
export CONNAISSEUR_REQUIRE_CONTAINERS=1
"$@"

#!/usr/bin/env bash
# Set up and run the webhook locally with the built-in default configuration over HTTPS
# (a throw-away self-signed certificate is generated). Extra arguments go to `connaisseur serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/connaisseur serve --listen "${LISTEN:-127.0.0.1:5000}" --secrets-dir "${SECRETS_DIR:-./.run/secrets}" "$@"

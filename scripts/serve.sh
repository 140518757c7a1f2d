#!/usr/bin/env bash
# Sets up orgate in ./.venv (first run only) and starts it on its embedded defaults:
# http://127.0.0.1:8080, SQLite in ./data, provider key from $ANTHROPIC_API_KEY.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/orgate ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e .
fi
exec .venv/bin/orgate serve "$@"

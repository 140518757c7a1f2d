#!/bin/sh
# The one command: runs the benchmark suite (see bench/README.md). Extra arguments go to `python -m bench`.
#   bench/run.sh --quick              # CI smoke, under a minute
#   bench/run.sh --litellm --profile  # the full run recorded in bench/results/RESULTS.md
set -e
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" -m bench "$@"

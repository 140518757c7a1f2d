#!/bin/sh
# The image's install steps, run by the Dockerfile's build stage and, unchanged, by
# tests/test_plain_install.py: build orgate's wheel from the sources in $1 and install it, with no extra,
# into a new virtual environment at $2 (what an operator's `pip install orgate` gets).
set -eu
src=$1
venv=$2
python3 -m venv "$venv"
wheels=$(mktemp -d)
"$venv/bin/pip" wheel --quiet --no-deps --wheel-dir "$wheels" "$src"
"$venv/bin/pip" install --quiet "$wheels"/orgate-*.whl
rm -rf "$wheels"

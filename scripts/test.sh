#!/usr/bin/env bash
# Set up a virtual environment (CPU torch pinned) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[torch,dev]'
.venv/bin/python -m pytest -q "$@"

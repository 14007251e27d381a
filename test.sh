#!/usr/bin/env bash
# The test command: install the development requirements, lint, check formatting, check the layer contract
# (import-linter, pyproject.toml), run the test suite.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install -q -r requirements-dev.txt
ruff check .
ruff format --check .
lint-imports --no-cache
python3 -m pytest

#!/usr/bin/env bash
# The project's test command (README.md): lint, type-check, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check src tests benchmarks scripts
ruff format --check src tests benchmarks scripts
mypy
python -m pytest -q "$@"

#!/bin/sh
# README command 2: set up .venv with the test extras (and espeak-ng), check lint, format and types,
# then run the whole test suite.
#   sh scripts/test.sh            everything (what CI runs); extra arguments go to pytest
#   sh scripts/test.sh --fast     the checks and the fast lane: no model loaded, no process started
set -eu
cd "$(dirname "$0")/.."
FAST=0
if [ "${1:-}" = "--fast" ]; then FAST=1; shift; fi
sh scripts/setup.sh --test
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
if [ "$FAST" = 1 ]; then
    exec .venv/bin/python -m pytest -m "not slow" "$@"
fi
exec .venv/bin/python -m pytest "$@"

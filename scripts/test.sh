#!/bin/sh
# README command 2: set up .venv with the test extras (and espeak-ng), run the whole test suite.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh --test
exec .venv/bin/python -m pytest "$@"

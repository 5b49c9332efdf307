#!/bin/sh
# README command 1: set up .venv, index the bundled sample episode (offline), ask it a question.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
.venv/bin/hmsearch index audio/
.venv/bin/hmsearch ask "Hvor hurtigt skal man svare kunderne på sociale medier?"

#!/bin/sh
# README command 1: set up .venv, index the bundled sample episode (offline), ask it a question.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
.venv/bin/hmsearch index audio/
.venv/bin/hmsearch ask "Hvor mange opslag om ugen skal en sælger lave?"
.venv/bin/hmsearch ask "How quickly should a company reply to customers on social media?"

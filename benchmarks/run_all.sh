#!/bin/sh
# Run every benchmark in sequence: sh benchmarks/run_all.sh
# Results: benchmarks/results/<name>.json and .md; scratch indexes: benchmarks/.work/ (git-ignored).
#
# Full run on 2 cores: ~1.5 h (search quality ~3 min, indexing ~4 min, query 10k/100k ~2 min and
# 1M ~30 min (HNSW build), CLI ~5 min, transcription ~4 min, Whisper engines ~7 min). BENCH_QUICK=1 runs small sizes only (~10 min), for checking the
# scripts rather than for figures. The ONNX int8 part of bench_indexing needs onnxruntime and
# onnx in the venv (.venv/bin/uv pip install --python .venv/bin/python onnxruntime onnx) and
# skips with a note otherwise.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

step() { echo "== $* ($(date +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2; }

if [ "${BENCH_QUICK:-}" = 1 ]; then
    step "bench_indexing (quick)"; $PY -W ignore benchmarks/bench_indexing.py -n 300 --repeats 2 --onnx-passages 100
    step "bench_query (quick)";    $PY benchmarks/bench_query.py --sizes 10000,100000 --rounds 2
    step "bench_cli (quick)";      $PY benchmarks/bench_cli.py --repeats 2 --help-repeats 5
    exit 0
fi

step "search_quality";  $PY benchmarks/search_quality.py
step "bench_indexing";  $PY -W ignore benchmarks/bench_indexing.py -n 1000 --repeats 2
step "bench_query 10k/100k"; $PY benchmarks/bench_query.py --sizes 10000,100000 --episodes 100 --no-ann --rounds 2 --tag small
step "bench_query 1M";  $PY benchmarks/bench_query.py --sizes 1000000 --episodes 1000 --no-ann --tag 1m
step "bench_cli";       $PY benchmarks/bench_cli.py --repeats 3
step "bench_transcribe"; $PY benchmarks/bench_transcribe.py --sizes tiny,base,small,medium,turbo
step "bench_whisper_engines"; $PY benchmarks/bench_whisper_engines.py --seconds 150
step "done: see benchmarks/results/ (ANN sweeps: bench_query.py --ann-only, see its docstring)"

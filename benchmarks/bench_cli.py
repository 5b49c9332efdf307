"""CLI start-up: `hmsearch --help` and a cold `hmsearch ask`, broken down.

    .venv/bin/python benchmarks/bench_cli.py            # ~3-5 minutes
    .venv/bin/python benchmarks/bench_cli.py --repeats 3

1. `hmsearch --help` wall time (subprocess, median of 10) against `python -c pass` in the same run.
2. A small index is built from the bundled sample (audio/: one mp3 with its JSON transcript beside
   it, so no Whisper runs), then:
   - end to end: `hmsearch ask "..."` in a fresh process (and `search --mode lexical`, no model),
     with HMSEARCH_NO_SERVER=1; and the same ask through a warm `hmsearch serve`;
   - imports, each in a fresh interpreter: torch, transformers, sentence_transformers, faiss,
     bm25s (which imports numba and scipy.sparse), hmsearch.cli, hmsearch.query, ...;
   - a driver that calls the library the way `cli.ask` does through QueryService.ask
     (index.IndexStore -> embed.load_encoder(role="query") -> query.answer), with
     time.perf_counter marks between import, model load, index load and search phases; each
     phase is forced in order so that its cost is not hidden in the next.
   - the same for the default query path (the index's ONNX export of the model, onnxruntime +
     tokenizers, no torch) against HMSEARCH_QUERY_ENGINE=torch (sentence-transformers), interleaved.
All figures are medians over fresh processes; the ratio to `python -c pass` is the portable one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_util import PY, REPO, WORK, load, log, median, write_results

HMSEARCH = str(Path(PY).parent / "hmsearch")
QUESTION = "How quickly should a company reply to customers on social media?"
QUESTION2 = "Hvad skal salgsafdelingen gøre på sociale medier?"
INDEX = WORK / "bench_cli" / "index"

# Cold runs never use a warm `hmsearch serve` (HMSEARCH_NO_SERVER); the warm figure starts one.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HMSEARCH_NO_SERVER": "1"}
ENV.pop("HMSEARCH_QUERY_ENGINE", None)  # the default: the ONNX export of the index's model
TORCH_ENV = {**ENV, "HMSEARCH_QUERY_ENGINE": "torch"}  # the model itself, through sentence-transformers
WARM_ENV = {k: v for k, v in ENV.items() if k != "HMSEARCH_NO_SERVER"}

SEARCH = r"""
store.dense()
mark("FAISS index load")
store.lexical()
mark("BM25 index load")
Query(question, store, encoder.card).terms   # first call loads the FreeDict lexicon for translation
mark("FreeDict lexicon load")
sentences, hits = answer(store, encoder, question, k=3)
mark("answer (search + sentence scoring)")
assert sentences, "no answer"
answer(store, encoder, question2, k=3)
mark("a second answer (warm)")
out = {name: marks[i][1] - marks[i - 1][1] for i, (name, _) in enumerate(marks) if i}
out["total_in_process"] = marks[-2][1] - marks[0][1]
"""

PRELUDE = r"""
import json, sys, time
marks = [("start", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
index_dir, question, question2 = sys.argv[1], sys.argv[2], sys.argv[3]
"""

DRIVER = (
    PRELUDE
    + r"""
import hmsearch.cli                      # what the console script imports (click, config, errors)
mark("import hmsearch.cli")
from hmsearch.embed import load_encoder  # numpy + hmsearch modules (as QueryService does)
from hmsearch.index import IndexStore
from hmsearch.query import Query, answer
mark("import hmsearch.query")
import torch
mark("import torch")
import transformers
mark("import transformers")
import sentence_transformers
mark("import sentence_transformers")
import faiss
mark("import faiss")
import bm25s
mark("import bm25s (numba, scipy)")
store = IndexStore(index_dir)
encoder = load_encoder(store.require().embedding_model, role="query", model_cache=store.model_cache)
mark("read manifest")                    # manifest read; HMSEARCH_QUERY_ENGINE=torch: the torch engine
assert type(encoder).__name__ == "TorchEncoder", type(encoder)
encoder.model                            # resolve bundled path, SentenceTransformer(...), bf16 if auto
mark("model load")
encoder.encode_queries([question])       # first forward pass: kernel selection / allocations
mark("first query encode")
"""
    + SEARCH
    + r"""
out["precision"] = encoder.precision
print(json.dumps(out))
"""
)

ONNX_DRIVER = (
    PRELUDE
    + r"""
import hmsearch.cli
mark("import hmsearch.cli")
from hmsearch.embed import load_encoder
from hmsearch.index import IndexStore
from hmsearch.query import Query, answer
mark("import hmsearch.query")
import onnxruntime, tokenizers
mark("import onnxruntime + tokenizers")
import faiss
mark("import faiss")
import bm25s
mark("import bm25s (numba, scipy)")
store = IndexStore(index_dir)
encoder = load_encoder(store.require().embedding_model, role="query", model_cache=store.model_cache)
mark("read manifest + load ONNX encoder")  # manifest + the exported encoder: tokenizer.json, ONNX session
assert type(encoder).__name__ == "OnnxEncoder", type(encoder)
encoder.encode_queries([question])
mark("first query encode")
"""
    + SEARCH
    + r"""
out["torch_imported"] = "torch" in sys.modules
print(json.dumps(out))
"""
)


def wall(cmd: list[str], env: dict | None = None) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env or ENV)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return dt


def json_out(cmd: list[str], env: dict | None = None) -> dict:
    proc = subprocess.run(cmd, capture_output=True, env=env or ENV, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {proc.stderr[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm_server_asks(cmd: list[str], n: int) -> dict:
    """Start `hmsearch serve` on the sample index, time `hmsearch ask` through it, stop it."""
    import socket

    sock = INDEX / ".serve.sock"
    t = time.perf_counter()
    server = subprocess.Popen(
        [HMSEARCH, "--index-dir", str(INDEX), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=WARM_ENV,
    )
    try:
        ready = None
        while time.perf_counter() - t < 300 and server.poll() is None:
            if sock.exists():
                try:
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        s.connect(str(sock))
                    ready = time.perf_counter() - t
                    break
                except OSError:
                    pass
            time.sleep(0.05)
        if ready is None:
            return {"skipped": f"`hmsearch serve` did not come up (exit code {server.poll()})"}
        wall(cmd, env=WARM_ENV)  # first request through the server
        runs = [wall(cmd, env=WARM_ENV) for _ in range(n)]
        return {
            "server_start_to_ready_s": round(ready, 2),
            "ask_via_server_s": round(median(runs), 3),
            "runs_s": [round(x, 3) for x in runs],
        }
    finally:
        import signal

        server.send_signal(signal.SIGINT)  # Ctrl-C: serve's own clean-up removes the socket
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        sock.unlink(missing_ok=True)


def import_time(stmt: str) -> float:
    code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
    proc = subprocess.run([PY, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, text=True)
    if proc.returncode != 0:
        return float("nan")
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per cold measurement")
    parser.add_argument("--help-repeats", type=int, default=10)
    args = parser.parse_args()
    load_start = load()

    # 1. --help against python -c pass, interleaved.
    helps, passes, cli_imports = [], [], []
    wall([HMSEARCH, "--help"])
    for _ in range(args.help_repeats):
        passes.append(wall([PY, "-c", "pass"]))
        helps.append(wall([HMSEARCH, "--help"]))
        cli_imports.append(import_time("import hmsearch.cli"))
    help_res = {
        "hmsearch_help_s": round(median(helps), 3),
        "python_pass_s": round(median(passes), 3),
        "ratio_help_over_pass": round(median(helps) / median(passes), 2),
        "import_hmsearch_cli_s": round(median(cli_imports), 3),
        "help_runs_s": [round(x, 3) for x in helps],
        "pass_runs_s": [round(x, 3) for x in passes],
    }
    log(f"--help {help_res['hmsearch_help_s']} s vs python -c pass {help_res['python_pass_s']} s")

    # 2. A small index from the bundled sample.
    shutil.rmtree(INDEX, ignore_errors=True)
    build_s = wall([HMSEARCH, "--index-dir", str(INDEX), "-q", "index", str(REPO / "audio")])
    log(f"sample index built in {build_s:.1f} s (cold process, transcript beside the audio)")

    ask_cmd = [HMSEARCH, "--index-dir", str(INDEX), "ask", QUESTION]
    lex_cmd = [HMSEARCH, "--index-dir", str(INDEX), "search", "--mode", "lexical", "sociale medier"]
    asks, torch_asks, lexs, drivers, onnx_drivers = [], [], [], [], []
    for _ in range(args.repeats):  # interleaved, so machine load falls on every variant alike
        asks.append(wall(ask_cmd))
        torch_asks.append(wall(ask_cmd, env=TORCH_ENV))
        lexs.append(wall(lex_cmd))
        drivers.append(json_out([PY, "-c", DRIVER, str(INDEX), QUESTION, QUESTION2], env=TORCH_ENV))
        onnx_drivers.append(json_out([PY, "-c", ONNX_DRIVER, str(INDEX), QUESTION, QUESTION2]))
        log(f"cold ask {asks[-1]:.2f} s (torch path {torch_asks[-1]:.2f} s), lexical search {lexs[-1]:.2f} s")
    phases = {k: round(median([d[k] for d in drivers]), 3) for k in drivers[0] if k != "precision"}
    onnx_phases = {k: round(median([d[k] for d in onnx_drivers]), 3) for k in onnx_drivers[0] if k != "torch_imported"}
    assert not any(d["torch_imported"] for d in onnx_drivers), "the ONNX query path imported torch"

    warm = warm_server_asks(ask_cmd, args.help_repeats)
    log(f"warm (hmsearch serve): {warm}")

    modules = [
        "numpy",
        "click",
        "hmsearch.cli",
        "hmsearch.query",
        "torch",
        "transformers",
        "sentence_transformers",
        "sklearn",
        "faiss",
        "scipy.sparse",
        "numba",
        "bm25s",
        "Stemmer",
        "whisper",
        "onnxruntime",
        "tokenizers",
    ]
    imports = {}
    for m in modules:
        imports[m] = round(median([import_time(f"import {m}") for _ in range(args.repeats)]), 3)
        log(f"import {m}: {imports[m]} s")
    imports["bm25s with numba blocked"] = round(
        median([import_time("import sys; sys.modules['numba'] = None; import bm25s") for _ in range(args.repeats)]), 3
    )

    if "ask_via_server_s" in warm:
        warm["ratio_over_pass"] = round(warm["ask_via_server_s"] / median(passes), 1)
    data = {
        "help": help_res,
        "sample_index_build_s": round(build_s, 2),
        "warm_server": warm,
        "cold_ask_s": round(median(asks), 3),
        "cold_ask_runs_s": [round(x, 3) for x in asks],
        "cold_ask_ratio_over_pass": round(median(asks) / median(passes), 1),
        "cold_ask_torch_s": round(median(torch_asks), 3),
        "cold_ask_torch_runs_s": [round(x, 3) for x in torch_asks],
        "cold_ask_torch_over_onnx": round(median(torch_asks) / median(asks), 2),
        "onnx_driver_phases_s": onnx_phases,
        "cold_lexical_search_s": round(median(lexs), 3),
        "driver_phases_s": phases,
        "precision": drivers[0]["precision"],
        "imports_s": imports,
        "repeats": args.repeats,
        "load_at_start": load_start,
        "load": load(),
    }
    write_results("bench_cli", data, markdown(data))
    print(markdown(data))


def markdown(d: dict) -> str:
    h = d["help"]
    L = [
        "# CLI start-up",
        "",
        "| what | median s | vs `python -c pass` |",
        "|---|---|---|",
        f"| `python -c pass` | {h['python_pass_s']} | 1 |",
        f"| `hmsearch --help` | {h['hmsearch_help_s']} | **{h['ratio_help_over_pass']}×** |",
        f"| `import hmsearch.cli` (in-process) | {h['import_hmsearch_cli_s']} | |",
        f"| `hmsearch ask` cold, sample index (query embedded by the ONNX export, no torch) | {d['cold_ask_s']} | {d['cold_ask_ratio_over_pass']}× |",
        f"| `hmsearch ask` cold, through torch + sentence-transformers (HMSEARCH_QUERY_ENGINE=torch) | {d['cold_ask_torch_s']} | "
        f"{d['cold_ask_torch_over_onnx']}× the ONNX path |",
        f"| `hmsearch search --mode lexical` cold (no model) | {d['cold_lexical_search_s']} | |",
        *(
            [
                f"| `hmsearch ask` through a warm `hmsearch serve` | {d['warm_server']['ask_via_server_s']} | "
                f"{d['warm_server']['ratio_over_pass']}× |",
                f"| `hmsearch serve` start until it accepts queries | {d['warm_server']['server_start_to_ready_s']} | |",
            ]
            if "ask_via_server_s" in d.get("warm_server", {})
            else []
        ),
        "",
        f"Cold `ask` through torch broken down (driver calling the library like cli.ask, median of {d['repeats']} fresh processes; "
        f"embedding precision {d['precision']}; load at start {' '.join(map(str, d['load_at_start']))}):",
        "",
        "| phase | s |",
        "|---|---|",
    ]
    for k, v in d["driver_phases_s"].items():
        L.append(f"| {k} | {v} |")
    L += [
        "",
        "Import of one module in a fresh interpreter (includes its dependencies, so rows overlap):",
        "",
        "| module | s |",
        "|---|---|",
    ]
    for k, v in d["imports_s"].items():
        L.append(f"| {k} | {v} |")
    L += ["", "Cold `ask` on the default ONNX query path, broken down the same way:", "", "| phase | s |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in d["onnx_driver_phases_s"].items()]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()

"""CLI start-up: `hmsearch --help` and a cold `hmsearch ask`, broken down.

    .venv/bin/python benchmarks/bench_cli.py            # ~3-5 minutes
    .venv/bin/python benchmarks/bench_cli.py --repeats 3

1. `hmsearch --help` wall time (subprocess, median of 10) against `python -c pass` in the same run.
2. A small index is built from the bundled sample (audio/: one mp3 with its JSON transcript beside
   it, so no Whisper runs), then:
   - end to end: `hmsearch ask "..."` in a fresh process (and `search --mode lexical`, no model),
     with HMSEARCH_NO_SERVER=1; and the same ask through a warm `hmsearch serve`;
   - imports, each in a fresh interpreter: torch, transformers, sentence_transformers, faiss,
     bm25s (which imports numba and scipy.sparse), hmsearch.cli, hmsearch.search, ...;
   - a driver that calls the library the way `cli.ask` does (IndexStore -> search.embedder_for ->
     search.answer), with time.perf_counter marks between import, model load, index load and
     search phases; each phase is forced in order so that its cost is not hidden in the next.
   - what-ifs for the recommendations: bm25s imported with numba blocked, and a query embedded
     by onnxruntime + tokenizers (no torch) from the fp32 ONNX export of bench_indexing.py.
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
from bench_util import PY, REPO, WORK, load, log, median, write_results  # noqa: E402

HMSEARCH = str(Path(PY).parent / "hmsearch")
QUESTION = "How quickly should a company reply to customers on social media?"
QUESTION2 = "Hvad skal salgsafdelingen gøre på sociale medier?"
INDEX = WORK / "bench_cli" / "index"
ONNX_FP32 = WORK / "bench_indexing" / "onnx" / "minilm-opt.onnx"

# Cold runs never use a warm `hmsearch serve` (HMSEARCH_NO_SERVER); the warm figure starts one.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HMSEARCH_NO_SERVER": "1"}
WARM_ENV = {k: v for k, v in ENV.items() if k != "HMSEARCH_NO_SERVER"}

DRIVER = r"""
import json, sys, time
marks = [("start", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
index_dir, question, question2 = sys.argv[1], sys.argv[2], sys.argv[3]
import hmsearch.cli                      # what the console script imports (click, config, errors)
mark("import hmsearch.cli")
from hmsearch.search import answer, embedder_for   # numpy + hmsearch modules (as cli.ask does)
from hmsearch.store import IndexStore
mark("import hmsearch.search")
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
embedder = embedder_for(store)           # manifest read + model name check
mark("read manifest")
embedder.model                           # resolve bundled path, SentenceTransformer(...), bf16 if auto
mark("model load")
embedder.encode_queries([question])      # first forward pass: kernel selection / allocations
mark("first query encode")
store.faiss_index()
mark("FAISS index load")
lexical = store.lexical_index()
mark("BM25 index load")
lexical.query_terms(question)            # first call loads the FreeDict lexicon for translation
mark("FreeDict lexicon load")
sentences, hits = answer(store, embedder, question, k=3)
mark("answer (search + sentence scoring)")
assert sentences, "no answer"
answer(store, embedder, question2, k=3)
mark("a second answer (warm)")
out = {name: marks[i][1] - marks[i - 1][1] for i, (name, _) in enumerate(marks) if i}
out["total_in_process"] = marks[-2][1] - marks[0][1]
out["precision"] = embedder.precision
print(json.dumps(out))
"""

ORT_QUERY = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer
t1 = time.perf_counter()
model_dir, onnx_path, question = sys.argv[1], sys.argv[2], sys.argv[3]
tok = Tokenizer.from_file(model_dir + "/tokenizer.json")
tok.enable_truncation(256)
so = ort.SessionOptions(); so.intra_op_num_threads = 2
sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
t2 = time.perf_counter()
enc = tok.encode(question)
feed = {"input_ids": np.array([enc.ids], dtype=np.int64), "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
        "token_type_ids": np.array([enc.type_ids], dtype=np.int64)}
feed = {k: v for k, v in feed.items() if k in {i.name for i in sess.get_inputs()}}
vec = sess.run(None, feed)[0][0]
t3 = time.perf_counter()
print(json.dumps({"import onnxruntime+tokenizers": t1 - t0, "tokenizer+session load": t2 - t1, "first query encode": t3 - t2,
                  "total": t3 - t0, "vector": vec.tolist()}))
"""

TORCH_QUERY = r"""
import json, sys
from sentence_transformers import SentenceTransformer
m = SentenceTransformer(sys.argv[1], device="cpu")
print(json.dumps(m.encode([sys.argv[2]], normalize_embeddings=True)[0].tolist()))
"""


def wall(cmd: list[str], env: dict | None = None) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env or ENV)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return dt


def json_out(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {proc.stderr[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm_server_asks(cmd: list[str], n: int) -> dict:
    """Start `hmsearch serve` on the sample index, time `hmsearch ask` through it, stop it."""
    import socket

    sock = INDEX / ".serve.sock"
    t = time.perf_counter()
    server = subprocess.Popen([HMSEARCH, "--index-dir", str(INDEX), "serve"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=WARM_ENV)
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
        return {"server_start_to_ready_s": round(ready, 2), "ask_via_server_s": round(median(runs), 3),
                "runs_s": [round(x, 3) for x in runs]}
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
    help_res = {"hmsearch_help_s": round(median(helps), 3), "python_pass_s": round(median(passes), 3),
                "ratio_help_over_pass": round(median(helps) / median(passes), 2),
                "import_hmsearch_cli_s": round(median(cli_imports), 3),
                "help_runs_s": [round(x, 3) for x in helps], "pass_runs_s": [round(x, 3) for x in passes]}
    log(f"--help {help_res['hmsearch_help_s']} s vs python -c pass {help_res['python_pass_s']} s")

    # 2. A small index from the bundled sample.
    shutil.rmtree(INDEX, ignore_errors=True)
    t = time.perf_counter()
    build_s = wall([HMSEARCH, "--index-dir", str(INDEX), "-q", "index", str(REPO / "audio")])
    log(f"sample index built in {build_s:.1f} s (cold process, transcript beside the audio)")

    ask_cmd = [HMSEARCH, "--index-dir", str(INDEX), "ask", QUESTION]
    lex_cmd = [HMSEARCH, "--index-dir", str(INDEX), "search", "--mode", "lexical", "sociale medier"]
    asks, lexs, drivers = [], [], []
    for r in range(args.repeats):
        asks.append(wall(ask_cmd))
        lexs.append(wall(lex_cmd))
        drivers.append(json_out([PY, "-c", DRIVER, str(INDEX), QUESTION, QUESTION2]))
        log(f"cold ask {asks[-1]:.2f} s, lexical search {lexs[-1]:.2f} s, driver total {drivers[-1]['total_in_process']:.2f} s")
    phases = {k: round(median([d[k] for d in drivers]), 3) for k in drivers[0] if k != "precision"}

    warm = warm_server_asks(ask_cmd, args.help_repeats)
    log(f"warm (hmsearch serve): {warm}")

    modules = ["numpy", "click", "hmsearch.cli", "hmsearch.search", "torch", "transformers", "sentence_transformers",
               "sklearn", "faiss", "scipy.sparse", "numba", "bm25s", "Stemmer", "whisper", "onnxruntime", "tokenizers"]
    imports = {}
    for m in modules:
        imports[m] = round(median([import_time(f"import {m}") for _ in range(args.repeats)]), 3)
        log(f"import {m}: {imports[m]} s")
    imports["bm25s with numba blocked"] = round(median([import_time(
        "import sys; sys.modules['numba'] = None; import bm25s") for _ in range(args.repeats)]), 3)

    what_if: dict = {}
    from hmsearch.embed import resolve_model_path

    model_dir, _ = resolve_model_path("all-MiniLM-L6-v2")
    if ONNX_FP32.is_file():
        try:
            import numpy as np

            runs = [json_out([PY, "-c", ORT_QUERY, model_dir, str(ONNX_FP32), QUESTION]) for _ in range(args.repeats)]
            ref = np.array(json_out([PY, "-c", TORCH_QUERY, model_dir, QUESTION]), dtype=np.float32)
            vec = np.array(runs[0]["vector"], dtype=np.float32)
            what_if["onnx_query_path"] = {k: round(median([r[k] for r in runs]), 3) for k in runs[0] if k != "vector"}
            what_if["onnx_query_path"]["cosine_vs_torch_fp32"] = round(float(vec @ ref / np.linalg.norm(vec) / np.linalg.norm(ref)), 6)
        except (SystemExit, ImportError) as exc:
            what_if["onnx_query_path"] = {"skipped": str(exc)[:300]}
    else:
        what_if["onnx_query_path"] = {"skipped": f"{ONNX_FP32} not found: run bench_indexing.py first"}

    if "ask_via_server_s" in warm:
        warm["ratio_over_pass"] = round(warm["ask_via_server_s"] / median(passes), 1)
    data = {"help": help_res, "sample_index_build_s": round(build_s, 2), "warm_server": warm,
            "cold_ask_s": round(median(asks), 3), "cold_ask_runs_s": [round(x, 3) for x in asks],
            "cold_ask_ratio_over_pass": round(median(asks) / median(passes), 1),
            "cold_lexical_search_s": round(median(lexs), 3), "driver_phases_s": phases,
            "precision": drivers[0]["precision"], "imports_s": imports, "what_if": what_if,
            "repeats": args.repeats, "load_at_start": load_start, "load": load()}
    write_results("bench_cli", data, markdown(data))
    print(markdown(data))


def markdown(d: dict) -> str:
    h = d["help"]
    L = ["# CLI start-up", "",
         f"| what | median s | vs `python -c pass` |", "|---|---|---|",
         f"| `python -c pass` | {h['python_pass_s']} | 1 |",
         f"| `hmsearch --help` | {h['hmsearch_help_s']} | **{h['ratio_help_over_pass']}×** |",
         f"| `import hmsearch.cli` (in-process) | {h['import_hmsearch_cli_s']} | |",
         f"| `hmsearch ask` cold, sample index | {d['cold_ask_s']} | {d['cold_ask_ratio_over_pass']}× |",
         f"| `hmsearch search --mode lexical` cold (no model) | {d['cold_lexical_search_s']} | |",
         *([f"| `hmsearch ask` through a warm `hmsearch serve` | {d['warm_server']['ask_via_server_s']} | "
            f"{d['warm_server']['ratio_over_pass']}× |",
            f"| `hmsearch serve` start until it accepts queries | {d['warm_server']['server_start_to_ready_s']} | |"]
           if "ask_via_server_s" in d.get("warm_server", {}) else []), "",
         f"Cold `ask` broken down (driver calling the library like cli.ask, median of {d['repeats']} fresh processes; "
         f"embedding precision {d['precision']}; load at start {' '.join(map(str, d['load_at_start']))}):", "",
         "| phase | s |", "|---|---|"]
    for k, v in d["driver_phases_s"].items():
        L.append(f"| {k} | {v} |")
    L += ["", "Import of one module in a fresh interpreter (includes its dependencies, so rows overlap):", "",
          "| module | s |", "|---|---|"]
    for k, v in d["imports_s"].items():
        L.append(f"| {k} | {v} |")
    o = d["what_if"].get("onnx_query_path", {})
    L.append("")
    if "skipped" in o:
        L.append(f"What-if ONNX query path: skipped ({o['skipped']}).")
    else:
        L += ["What-if: embed the query with onnxruntime + tokenizers (fp32 ONNX export, no torch) in a fresh process:", "",
              "| phase | s |", "|---|---|"] + [f"| {k} | {v} |" for k, v in o.items()]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()

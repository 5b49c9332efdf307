"""Warm `ask` latency: this checkout against another (a git ref), interleaved question by question.

    .venv/bin/python benchmarks/bench_ask.py --index-dir IDX --baseline 7013f31 \
        benchmarks/data/en_interview_dev/questions.jsonl

Two worker processes open the same index through ``QueryService`` (one with this checkout's
``src``, one with the baseline's, checked out into a temporary git worktree), answer one warm-up
question each, then answer every question in turn: baseline, this, baseline, this... so a busy
machine slows both alike. Each worker times its own ``ask`` (k=3, as `hmsearch ask`); the ratio of
the medians is what the issue's budget reads (warm ask <= 1.2x). Repeat with ``--rounds``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time
from pathlib import Path
from hmsearch.query.service import AskRequest, QueryService
service = QueryService(Path(sys.argv[1]))
for line in sys.stdin:
    question = json.loads(line)
    t0 = time.perf_counter()
    result = service.ask(AskRequest(question, k=3))
    took = time.perf_counter() - t0
    print(json.dumps({"seconds": took, "answer": result.answer[0].text if result.answer else None}), flush=True)
"""


def start(src: Path, index_dir: Path) -> subprocess.Popen[str]:
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(index_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def ask(worker: subprocess.Popen[str], question: str) -> float:
    assert worker.stdin and worker.stdout
    worker.stdin.write(json.dumps(question) + "\n")
    worker.stdin.flush()
    line = worker.stdout.readline()
    if not line:
        raise SystemExit("a worker stopped (run it by hand to see why)")
    return float(json.loads(line)["seconds"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("questions", type=Path)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--baseline", required=True, help="git ref of the code to compare against")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    questions = [
        json.loads(x)["question"] for x in args.questions.read_text(encoding="utf-8").splitlines() if x.strip()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base), args.baseline], check=True
        )
        try:
            workers = {"baseline": start(base / "src", args.index_dir), "this": start(ROOT / "src", args.index_dir)}
            for w in workers.values():
                ask(w, questions[0])  # warm: model, index and caches loaded
            times: dict[str, list[float]] = {name: [] for name in workers}
            for _ in range(args.rounds):
                for q in questions:
                    for name, w in workers.items():
                        times[name].append(ask(w, q))
            for w in workers.values():
                w.stdin.close()  # type: ignore[union-attr]
                w.wait(timeout=60)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
    out = {
        name: {
            "p50_ms": 1000 * statistics.median(t),
            "p95_ms": 1000 * sorted(t)[int(0.95 * (len(t) - 1))],
            "n": len(t),
        }
        for name, t in times.items()
    }
    out["ratio_p50"] = {"value": out["this"]["p50_ms"] / out["baseline"]["p50_ms"]}
    for name in ("baseline", "this"):
        print(
            f"{name:<9} warm ask p50 {out[name]['p50_ms']:.0f} ms  p95 {out[name]['p95_ms']:.0f} ms  (n={out[name]['n']})"
        )
    print(f"ratio (this / baseline, p50): {out['ratio_p50']['value']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"baseline": args.baseline, **out}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

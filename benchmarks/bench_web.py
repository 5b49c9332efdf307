"""Load on `hmsearch web`: concurrent clients on loopback against a real index (not a test).

    nice .venv/bin/python benchmarks/bench_web.py --index-dir DIR
    nice .venv/bin/python benchmarks/bench_web.py --index-dir DIR --concurrency 1,8,32 --requests 300 --total 10000

Starts `hmsearch --index-dir DIR web --rate-limit 0` on a free port of 127.0.0.1 (the rate limit
would otherwise answer most of these requests with 429: one address asks them all), then:
  * 100 warm-up requests, RSS of the server;
  * per concurrency level (1, 8, 32 clients at once, each an asyncio task with its own httpx
    connection asking one request after another): --requests GET /api/search?q=...&k=10 (hybrid,
    the questions below in turn): p50/p95 latency, errors (anything but 200), requests/s;
  * more requests of every kind (search, ask, the search page, an episode page, episodes, an audio
    range when the index has local audio) at 8 clients until --total in all, then RSS again:
    memory after --total requests against after 100 (it should not grow);
  * the same searches through QueryService in one process with 8 threads, no HTTP, on the same
    cores in the same run: the HTTP layer's cost is 1 - (HTTP req/s at 8) / (in-process req/s).
Results: benchmarks/results/bench_web.{json,md}; the load average is recorded (2 cores shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench_util import REPO, load, log, machine, pct, write_results

QUESTIONS = [
    "what is consciousness",
    "how do neural networks learn",
    "the future of artificial intelligence",
    "what is the meaning of life",
    "self-driving cars and autonomous vehicles",
    "quantum computing",
    "deep learning for computer vision",
    "reinforcement learning and games",
    "how does the brain work",
    "what advice would you give to young people",
    "the simulation hypothesis",
    "robots and humans",
    "nuclear weapons and war",
    "love and relationships",
    "programming languages",
    "physics and the universe",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def _clients(base: str, targets: list[str], concurrency: int, headers: dict[str, str] | None = None):
    """``targets`` asked by ``concurrency`` clients at once; (latencies, errors, seconds)."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    queue = list(reversed(targets))

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            while queue:
                target = queue.pop()
                t0 = time.perf_counter()
                try:
                    r = await http.get(target, headers=headers if target.startswith("/audio/") else None)
                    await r.aread()
                    if r.status_code not in (200, 206):
                        errors.append(f"{r.status_code} {target}")
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__} {target}")
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - t0


def _search_targets(n: int, offset: int = 0) -> list[str]:
    from urllib.parse import urlencode

    return ["/api/search?" + urlencode({"q": QUESTIONS[(offset + i) % len(QUESTIONS)], "k": 10}) for i in range(n)]


def _mixed_targets(n: int, episodes: list[dict[str, Any]]) -> list[str]:
    from urllib.parse import quote, urlencode

    ids = [e["episode"] for e in episodes]
    audio = [e["episode"] for e in episodes if e.get("audio")]
    out = []
    for i in range(n):
        q = QUESTIONS[i % len(QUESTIONS)]
        kind = i % 10
        if kind < 4:
            out.append("/api/search?" + urlencode({"q": q, "k": 10}))
        elif kind < 6:
            out.append("/api/ask?" + urlencode({"q": q}))
        elif kind == 6:
            out.append("/?" + urlencode({"q": q}))
        elif kind == 7:
            out.append(f"/episode/{quote(ids[i % len(ids)], safe='')}?t={60 * (i % 30)}")
        elif kind == 8:
            out.append("/api/episodes")
        else:
            out.append(f"/audio/{quote(audio[i % len(audio)], safe='')}" if audio else "/api/episodes")
    return out


def in_process(index_dir: Path, n: int, threads: int) -> dict[str, Any]:
    """The same searches straight through QueryService with ``threads`` threads (no HTTP)."""
    from hmsearch.query import QueryService, SearchRequest
    from hmsearch.web.app import web_link

    service = QueryService(index_dir, link=web_link)
    service.warm()
    for q in QUESTIONS[:4]:
        service.search(SearchRequest(q, k=10)).to_dict()
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(n)]
    lock = threading.Lock()
    latencies: list[float] = []

    def worker() -> None:
        while True:
            with lock:
                if not questions:
                    return
                q = questions.pop()
            t0 = time.perf_counter()
            service.search(SearchRequest(q, k=10)).to_dict()
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "threads": threads,
        "requests": n,
        "req_s": round(n / wall, 2),
        "p50_ms": round(pct(latencies, 50) * 1000, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--requests", type=int, default=300, help="search requests per concurrency level")
    ap.add_argument("--total", type=int, default=10_000, help="requests in all before the second RSS reading")
    ap.add_argument("--label", default="", help="what the index is (for the result file)")
    ap.add_argument("--in-process-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.in_process_only:  # the comparison runs in its own process, like the server does
        print(json.dumps(in_process(args.index_dir, args.requests, 8)))
        return

    port = _free_port()
    hmsearch = Path(sys.executable).with_name("hmsearch")
    server = subprocess.Popen(
        [str(hmsearch), "-q", "--index-dir", str(args.index_dir), "web", "--port", str(port), "--rate-limit", "0"],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {"index": str(args.index_dir), "label": args.label, "machine": machine(), "levels": []}
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(base + "/api/episodes", timeout=5) as r:
                    episodes = json.loads(r.read())
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("hmsearch web did not start") from None
                time.sleep(0.5)
        results["episodes"] = len(episodes)
        results["passages"] = sum(e["chunks"] for e in episodes)
        results["load_start"] = load()
        done = 0
        lat, errs, _ = asyncio.run(_clients(base, _mixed_targets(100, episodes), 8, {"Range": "bytes=0-65535"}))
        done += len(lat)
        results["rss_after_100_mb"] = _rss_mb(server.pid)
        results["warmup_errors"] = len(errs)
        log(f"warm-up: {len(lat)} requests, {len(errs)} errors, RSS {results['rss_after_100_mb']} MB")
        for c in [int(x) for x in args.concurrency.split(",")]:
            lat, errs, wall = asyncio.run(_clients(base, _search_targets(args.requests, done), c))
            done += len(lat)
            level = {
                "clients": c,
                "requests": len(lat),
                "errors": len(errs),
                "p50_ms": round(pct(lat, 50) * 1000, 1),
                "p95_ms": round(pct(lat, 95) * 1000, 1),
                "req_s": round(len(lat) / wall, 2),
                "load": load(),
                "error_sample": errs[:3],
            }
            results["levels"].append(level)
            log(f"{c:>2} clients: {level}")
        soak = max(0, args.total - done)
        t0 = time.perf_counter()
        lat, errs, wall = asyncio.run(_clients(base, _mixed_targets(soak, episodes), 8, {"Range": "bytes=0-65535"}))
        done += len(lat)
        results["soak"] = {
            "requests": len(lat),
            "errors": len(errs),
            "req_s": round(len(lat) / max(wall, 1e-9), 2),
            "p50_ms": round(pct(lat, 50) * 1000, 1) if lat else None,
            "error_sample": errs[:3],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        results["requests_total"] = done
        results["rss_after_total_mb"] = _rss_mb(server.pid)
        log(f"after {done} requests: RSS {results['rss_after_total_mb']} MB ({results['soak']})")
    finally:
        server.terminate()
        server.wait(30)

    # the in-process comparison, after the server stopped (so each had the cores alike)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--index-dir",
            str(args.index_dir),
            "--requests",
            str(args.requests),
            "--in-process-only",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    results["in_process"] = json.loads(out.stdout.strip().splitlines()[-1])
    eight = next((lv for lv in results["levels"] if lv["clients"] == 8), None)
    if eight:
        results["http_vs_in_process_at_8"] = round(eight["req_s"] / results["in_process"]["req_s"], 3)
    results["load_end"] = load()
    log(
        f"in process, 8 threads: {results['in_process']}; HTTP/in-process at 8: {results.get('http_vs_in_process_at_8')}"
    )

    rows = "\n".join(
        f"| {lv['clients']} | {lv['requests']} | {lv['errors']} | {lv['p50_ms']} | {lv['p95_ms']} | {lv['req_s']} |"
        for lv in results["levels"]
    )
    md = (
        f"# bench_web: `hmsearch web` under load\n\nIndex: {args.label or args.index_dir} "
        f"({results['episodes']} episodes, {results['passages']} passages). Load average at start "
        f"{results['load_start']}, at end {results['load_end']} (2 cores, shared).\n\n"
        "GET /api/search (hybrid, k=10), clients asking one request after another:\n\n"
        "| clients | requests | errors | p50 ms | p95 ms | req/s |\n|---|---|---|---|---|---|\n"
        f"{rows}\n\n"
        f"In process (QueryService.search, 8 threads, same questions): {results['in_process']['req_s']} req/s; "
        f"HTTP at 8 clients / in process: **{results.get('http_vs_in_process_at_8')}**.\n\n"
        f"Server RSS after 100 requests: {results['rss_after_100_mb']} MB; after {results['requests_total']} "
        f"(mixed: search, ask, pages, episodes, audio ranges; {results['soak']['errors']} errors): "
        f"{results['rss_after_total_mb']} MB.\n"
    )
    write_results("bench_web", results, md)


if __name__ == "__main__":
    main()

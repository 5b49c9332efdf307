"""A soak of `hmsearch web` on loopback: 8 well-behaved clients searching, first alone, then beside
one hostile client (idle sockets, request heads trickled a byte at a time, bursts of costly
questions). Reports the well-behaved clients' p50/p95 latency and errors in both phases, and the
ratio of the p95s (issue 27: within 2x).

    .venv/bin/python benchmarks/bench_web_soak.py --index-dir INDEX [--seconds 30]

The index is any hmsearch index (the bundled sample indexed with the default model will do). The
server is the real `hmsearch web` process on a free port of 127.0.0.1, stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

QUESTIONS = ["sociale medier", "LinkedIn opslag", "hvor hurtigt skal man svare", "kundeservice", "leads"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(index: Path, port: int) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("hmsearch")
    proc = subprocess.Popen(
        [str(exe), "--index-dir", str(index), "web", "--port", str(port), "--rate-limit", "600"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HMSEARCH_NO_SERVER": "1"},
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/episodes", timeout=2).read()
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("hmsearch web did not start")


def client(port: int, seconds: float, out: list[float], errors: list[str], n: int) -> None:
    """One well-behaved client on its own address (127.0.0.N: each its own rate-limit bucket)."""
    end = time.monotonic() + seconds
    i = n
    while time.monotonic() < end:
        q = urllib.parse.quote(QUESTIONS[i % len(QUESTIONS)])
        i += 1
        t = time.perf_counter()
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(f"127.0.0.{n + 2}", 0))
            conn.sendall(f"GET /api/search?q={q}&k=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            conn.close()
            status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
            if status != 200:
                errors.append(str(status))
                continue
        except OSError as exc:
            errors.append(type(exc).__name__)
            continue
        out.append(time.perf_counter() - t)
        time.sleep(0.2)  # a person reading results


def hostile(port: int, seconds: float, stop: threading.Event) -> dict[str, int]:
    """Idle sockets, trickled heads and bursts of questions, all from 127.0.0.200."""
    counts = {"idle": 0, "trickle": 0, "asks": 0, "refused": 0}
    held: list[socket.socket] = []
    end = time.monotonic() + seconds
    src = ("127.0.0.200", 0)
    while time.monotonic() < end and not stop.is_set():
        for _ in range(50):
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=5, source_address=src))
                counts["idle"] += 1
            except OSError:
                counts["refused"] += 1
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=src)
            s.sendall(b"GET /api/sea")
            held.append(s)
            counts["trickle"] += 1
        except OSError:
            counts["refused"] += 1

        def ask() -> None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/ask?q=hvad+er+social+selling", timeout=60).read()
            except (OSError, urllib.error.HTTPError):
                pass

        burst = [threading.Thread(target=ask) for _ in range(20)]
        for t in burst:
            t.start()
        counts["asks"] += len(burst)
        time.sleep(1.0)
        held = held[-400:]  # the oldest are closed by the server anyway
    for s in held:
        s.close()
    return counts


def phase(port: int, seconds: float, with_hostile: bool) -> dict[str, object]:
    latencies: list[float] = []
    errors: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=client, args=(port, seconds, latencies, errors, n)) for n in range(8)]
    counts: dict[str, int] = {}
    h = threading.Thread(target=lambda: counts.update(hostile(port, seconds, stop))) if with_hostile else None
    for t in threads:
        t.start()
    if h:
        h.start()
    for t in threads:
        t.join()
    stop.set()
    if h:
        h.join()
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p95_ms": round(p95 * 1000, 1),
        "hostile": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "web_soak.json")
    args = parser.parse_args()
    port = free_port()
    proc = start(args.index_dir, port)
    try:
        phase(port, 5, False)  # warm up
        alone = phase(port, args.seconds, False)
        beside = phase(port, args.seconds, True)
    finally:
        proc.terminate()
        proc.wait(30)
    result = {
        "alone": alone,
        "beside_hostile": beside,
        "p95_ratio": round(float(beside["p95_ms"]) / float(alone["p95_ms"]), 2),  # type: ignore[arg-type]
        "load": os.getloadavg(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

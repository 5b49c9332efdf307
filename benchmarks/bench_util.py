"""Shared helpers for the bench_*.py scripts: paths, machine load, statistics, result files.

Every speed figure in these benchmarks is a ratio against the raw library doing the same work in
the same run, so a busy machine moves both sides; the load average is recorded next to each result.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
SHARED = REPO.parent / "shared" / "data"
TALKPYTHON_VTT = SHARED / "talkpython" / "vtt"
PY = sys.executable


def load() -> list[float]:
    """1/5/15-minute load averages (2 cores here: above ~2 means others compete for the CPU)."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    flags = ""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        pass
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")), "")
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "mem_gb": mem_gb,
        "python": platform.python_version(),
        "avx512_bf16": " avx512_bf16" in flags,
        "amx_bf16": " amx_bf16" in flags,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile (nearest rank on the sorted list; p in 0..100)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return float(s[k])


def rss_mb() -> float:
    """Resident set size of this process now, MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def write_results(name: str, data: dict[str, Any], markdown: str) -> None:
    """benchmarks/results/<name>.json and <name>.md (written whole, then renamed)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "machine": machine(), "load_at_end": load(), **data}
    for suffix, text in ((".json", json.dumps(data, indent=1, ensure_ascii=False)), (".md", markdown)):
        tmp = RESULTS / f"{name}{suffix}.tmp"
        tmp.write_text(text + ("\n" if not text.endswith("\n") else ""), encoding="utf-8")
        os.replace(tmp, RESULTS / f"{name}{suffix}")
    print(f"wrote {RESULTS / (name + '.json')} and .md", file=sys.stderr)


def eval_asr(dataset: Path, index_dir: Path, *flags: str) -> dict[str, Any]:
    """`hmsearch eval-asr DATASET FLAGS --json` in its own process (its peak RSS is its own), the report."""
    import subprocess

    cmd = [
        str(Path(PY).with_name("hmsearch")),
        "--index-dir",
        str(index_dir),
        "eval-asr",
        str(dataset),
        *flags,
        "--json",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"eval-asr failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ''}")
    report: dict[str, Any] = json.loads(res.stdout)
    return report


def log(*args: Any) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)

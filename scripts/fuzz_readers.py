"""Coverage-guided fuzzing of the transcript readers (SRT, WebVTT, Whisper JSON) with atheris.

The property: any bytes give a Transcript or one TranscriptFormatError (an InputError); any other
exception is a bug, and atheris saves the input that raised it as crash-<sha1> in the current
folder. The reader is picked as hmsearch picks it: JSON for what starts with { or [, WebVTT for a
WEBVTT header, else SRT.

    .venv/bin/python scripts/fuzz_readers.py -max_total_time=600
    .venv/bin/python scripts/fuzz_readers.py -runs=20000          # a bounded smoke

Arguments are libFuzzer's (-max_total_time, -runs, -timeout, corpus folders: the first one grows;
by default a temp folder, seeded from scripts/fuzz_corpus/, which is never written to). Without atheris (it has wheels for CPython up to 3.11 on
Linux) the script falls back to a plain mutation fuzzer over the same corpus with the same
property, reading -max_total_time and -runs, and says so.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

SUFFIXES = (".srt", ".vtt", ".json")
SEEDS = Path(__file__).with_name("fuzz_corpus")


def one_input(data: bytes) -> None:
    from hmsearch.errors import InputError
    from hmsearch.formats import read_transcript_bytes

    suffix = _suffix(data)
    try:
        transcript = read_transcript_bytes(data, suffix, name="fuzz")
    except InputError as exc:
        assert "\n" not in str(exc), "an error message of more than one line"
        return
    for seg in transcript.segments:
        assert 0 <= seg.start <= seg.end, f"bad times {seg.start} {seg.end}"
        seg.text.encode("utf-8")  # writable as UTF-8


def _suffix(data: bytes) -> str:
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"{", b"["):
        return ".json"
    return ".vtt" if head.startswith(b"WEBVTT") else ".srt"


def _seeds(folders: list[str]) -> list[bytes]:
    out = []
    for folder in [SEEDS, *map(Path, folders)]:
        for f in sorted(folder.glob("*")) if folder.is_dir() else []:
            if f.is_file():
                out.append(f.read_bytes())
    return out or [b"1"]


def _option(argv: list[str], name: str, default: float) -> float:
    for arg in argv:
        if arg.startswith(f"-{name}="):
            return float(arg.split("=", 1)[1])
    return default


def _mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif op == 1:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2 and b:
            del b[pos : pos + rng.randint(1, 16)]
        elif op == 3:
            other = rng.choice(seeds)
            start = rng.randrange(len(other))
            b[pos:pos] = other[start : start + rng.randint(1, 64)]
        elif op == 4:
            b[pos:pos] = rng.choice([b"-->", b"\n\n", b"<v ", b"&#", b"{\\", b"99999", b"\xff", b"\\ud800", b"["])
        elif op == 5 and b:
            chunk = b[pos : pos + rng.randint(1, 8)]
            b[pos:pos] = chunk * rng.randint(2, 200)
    return bytes(b)


def fallback(argv: list[str]) -> int:
    """A plain mutation fuzzer: seeds mutated at random, the same property checked."""
    seconds = _option(argv, "max_total_time", 60)
    runs = int(_option(argv, "runs", 0))
    seeds = _seeds([a for a in argv if not a.startswith("-")])
    rng = random.Random(int(_option(argv, "seed", 0)) or None)
    start, n = time.monotonic(), 0
    while time.monotonic() - start < seconds and (not runs or n < runs):
        data = _mutate(rng, rng.choice(seeds), seeds)
        try:
            one_input(data)
        except Exception:
            crash = Path(f"crash-fallback-{n}")
            crash.write_bytes(data)
            print(f"fuzz_readers: crash on input {n}, saved as {crash}", file=sys.stderr)
            raise
        n += 1
    print(f"fuzz_readers (fallback, no atheris): {n} inputs in {time.monotonic() - start:.1f} s, no crash")
    return 0


def main() -> int:
    try:
        import atheris
    except ImportError:
        print("fuzz_readers: atheris is not installed for this Python: plain mutation fuzzing", file=sys.stderr)
        return fallback(sys.argv[1:])
    with atheris.instrument_imports():
        import hmsearch.formats  # noqa: F401  (instrumented for coverage)
    argv = list(sys.argv)
    if not any(not a.startswith("-") for a in argv[1:]):
        import tempfile

        argv += [tempfile.mkdtemp(prefix="hmsearch-fuzz-"), str(SEEDS)]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A run killed with SIGKILL at any moment leaves the last good index, and the next run ends
with the same index as an uninterrupted one: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hmsearch.index.store import IndexStore

TOPICS = ["nyhedsbreve", "LinkedIn", "kundeservice", "annoncer", "SEO", "podcasts", "events", "video"]


def write_episodes(folder: Path, n: int) -> None:
    rng = random.Random(7)
    folder.mkdir()
    for e in range(n):
        lines, t = [], 0.0
        for i in range(30):
            topic = rng.choice(TOPICS)
            text = f"I afsnit {e} taler vi om {topic}, og punkt {i} handler om at måle effekten af {topic}."
            lines.append(f"{i + 1}\n{_ts(t)} --> {_ts(t + 4.5)}\n{text}\n")
            t += 5.0
        (folder / f"ep{e:02d}.srt").write_text("\n".join(lines), encoding="utf-8")


def _ts(s: float) -> str:
    return f"{int(s // 3600):02d}:{int(s % 3600 // 60):02d}:{int(s % 60):02d},{int(s * 1000 % 1000):03d}"


def hmsearch(*args: str, index: Path, quiet: bool = True) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("hmsearch")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hmsearch.cli"]
    return subprocess.Popen(
        [*cmd, "--index-dir", str(index), *(["-q"] if quiet else []), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def generation(index: Path) -> int:
    try:
        return json.loads((index / "manifest.json").read_text())["generation"]
    except (FileNotFoundError, ValueError):
        return 0  # not there yet, or (never, with atomic writes) half-written


def state(index: Path) -> dict[str, tuple[int, str]]:
    store = IndexStore(index)
    out = {}
    for e in store.episodes():
        store.passages(e.id)
        assert store.vectors(e.id).shape[0] == e.n_passages
        out[e.id] = (e.n_passages, e.content_hash)
    assert store.dense().size == sum(c for c, _ in out.values())
    return out


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_equals_uninterrupted(tmp_path):
    eps = tmp_path / "eps"
    write_episodes(eps, 12)

    reference = tmp_path / "reference"
    proc = hmsearch("index", str(eps), index=reference)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    expected = state(reference)
    assert len(expected) == 12

    killed = tmp_path / "killed"
    for target_generation in (1, 4, 9):  # kill three times, at different points of the run
        proc = hmsearch("index", str(eps), index=killed)
        deadline = time.time() + 300
        while generation(killed) < target_generation and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(random.Random(target_generation).uniform(0.0, 0.3))  # land anywhere in a write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Between runs the index is whole: every episode it names is complete and searchable.
        partial = state(killed)
        assert set(partial) <= set(expected)
        assert all(partial[e] == expected[e] for e in partial)

    proc = hmsearch("index", str(eps), index=killed)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert state(killed) == expected
    # The files of the killed runs were swept: one segment pair per episode, no temp files.
    segs = sorted(p.name for p in (killed / "segments").iterdir())
    assert len(segs) == 2 * len(expected)
    assert not [p for p in killed.rglob("*.tmp")]
    # And a second run finds nothing to do (said without -q, which is silent on success).
    proc = hmsearch("index", str(eps), index=killed, quiet=False)
    out, _ = proc.communicate(timeout=600)
    assert "12 unchanged (nothing to do)" in out


@pytest.mark.slow
def test_two_jobs_at_once_one_waits_or_is_refused(tmp_path):
    eps = tmp_path / "eps"
    write_episodes(eps, 10)  # enough work that the first job still holds the lock
    index = tmp_path / "index"
    first = hmsearch("index", str(eps), index=index)
    deadline = time.time() + 300
    while generation(index) < 1 and first.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    second = hmsearch("index", str(eps), index=index)
    _, err = second.communicate(timeout=300)
    assert second.returncode == 5 and "another hmsearch job is writing this index" in err
    waiting = hmsearch("index", str(eps), "--wait", index=index)
    out, err = waiting.communicate(timeout=600)
    assert first.wait(timeout=600) == 0
    assert waiting.returncode == 0, err
    assert len(state(index)) == 10

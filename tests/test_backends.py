"""Choosing where Whisper runs, and the Ray backend's checks that need no cluster."""

from __future__ import annotations

import socket

import pytest

from hmsearch.errors import BackendError, InputError
from hmsearch.ingest import make_backend
from hmsearch.ingest.backends import ProcessBackend, choose_backend


def test_auto_backend_follows_workers_and_settings(monkeypatch):
    assert choose_backend(None, None) == "local"
    assert choose_backend(None, 1) == "local"
    assert choose_backend(None, 3) == "processes"
    assert choose_backend("ray", None) == "ray"
    monkeypatch.setenv("HMSEARCH_BACKEND", "ray")
    assert choose_backend(None, None) == "ray"
    assert choose_backend("processes", None) == "processes"  # the flag wins
    with pytest.raises(InputError, match="--workers needs --backend processes or ray"):
        choose_backend("local", 2)
    monkeypatch.setenv("HMSEARCH_BACKEND", "slurm")
    with pytest.raises(InputError, match="'slurm' is not one of auto, local, processes, ray"):
        choose_backend(None, None)


def test_make_backend(tmp_path):
    from hmsearch.asr import TranscriberSpec

    spec = TranscriberSpec(model="base")
    assert make_backend("local", spec, tmp_path, workers=None, ray_address=None) is None
    procs = make_backend("processes", spec, tmp_path, workers=None, ray_address=None)
    assert isinstance(procs, ProcessBackend) and procs.workers == 2
    pytest.importorskip("ray")
    from hmsearch.ingest.ray_backend import RayBackend

    ray = make_backend("ray", spec, tmp_path, workers=3, ray_address="10.0.0.5:6379")
    assert isinstance(ray, RayBackend) and ray.workers == 3 and ray.address == "10.0.0.5:6379"


def test_ray_address_checks_fail_fast_with_one_line():
    pytest.importorskip("ray")
    from hmsearch.ingest.ray_backend import check_reachable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendError, match=rf"no Ray cluster answers at 127.0.0.1:{port} \(.*\): start one with"):
        check_reachable(f"127.0.0.1:{port}", timeout=2)
    with pytest.raises(BackendError, match="is not HOST:PORT"):
        check_reachable("head-node")
    check_reachable("auto")  # Ray's own discovery, not probed here
    with socket.socket() as s:  # something listening: passes
        s.bind(("127.0.0.1", 0))
        s.listen()
        check_reachable(f"127.0.0.1:{s.getsockname()[1]}")


def test_ray_errors_are_reduced_to_one_line():
    pytest.importorskip("ray")
    from hmsearch.ingest.ray_backend import _node_of, _reason

    class Wrapped(Exception):
        cause = ValueError("bad audio\nTraceback (most recent call last):\n  ...")

    assert _reason(Wrapped("ray::WhisperWorker.transcribe()\nlots")) == "ValueError: bad audio"
    assert _reason(RuntimeError("")) == "RuntimeError"
    assert _node_of("node 127.0.0.1 (1a2b3c4d), pid 7") == "1a2b3c4d"


def test_cli_rejects_local_backend_with_workers(cli, tmp_path):
    (tmp_path / "a.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nHej\n")
    res = cli("index", str(tmp_path / "a.srt"), "--backend", "local", "--workers", "2")
    assert res.exit_code == 2 and "--workers needs --backend processes or ray" in res.output

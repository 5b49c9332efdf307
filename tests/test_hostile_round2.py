"""Hostile round two, the smaller findings (issue 27: 12, 15 and the short list): paths that are
devices, pipes or links to them; a config nested too deeply; queries of stopwords only; `repair`
on a folder that is not there; a Range header int() would misread. Each one a test that failed on
the code before the fix; the bundled sample indexed with the HashingEncoder stand-in."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from hmsearch.index import IndexStore
from hmsearch.query.retrieve import Query, rank

from helpers import HashingEncoder, index_sample


@pytest.fixture
def deadline():
    """A regression here would read /dev/zero for ever: fail after 60 s instead of hanging the run."""

    def expired(signum, frame):
        raise TimeoutError("still reading after 60 s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def store(tmp_path: Path) -> IndexStore:
    return index_sample(tmp_path)


def test_devices_and_pipes_are_refused_not_read(cli, tmp_path: Path, deadline) -> None:
    (tmp_path / "zero.srt").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.vtt")
    (tmp_path / "gone.mp3").symlink_to(tmp_path / "nowhere.mp3")
    result = cli("--index-dir", str(tmp_path / "ix"), "index", str(tmp_path))
    assert result.exit_code == 8, result.output
    assert result.output.count("not a regular file") == 3 and "Traceback" not in result.output
    for path in ("zero.srt", "pipe.vtt"):
        one = cli("--index-dir", str(tmp_path / "ix"), "index", str(tmp_path / path))
        assert one.exit_code == 8 and "not a regular file" in one.output


@pytest.mark.parametrize("content", ["nested", "device"])
def test_a_hostile_config_file_is_one_line(cli, tmp_path: Path, monkeypatch, content: str, deadline) -> None:
    if content == "nested":
        path = tmp_path / "deep.toml"
        path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    else:
        path = Path("/dev/zero")
    monkeypatch.setenv("HMSEARCH_CONFIG", str(path))
    result = cli("config")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert ("nested too deeply" if content == "nested" else "not a regular file") in result.output


@pytest.mark.parametrize("question", ["og det er", "what is it", "hvad er det", "det"])
def test_stopwords_alone_find_nothing(store: IndexStore, question: str) -> None:
    encoder = HashingEncoder()
    assert rank(store, encoder, Query(question, store, encoder.card), mode="hybrid") == []
    assert rank(store, None, Query(question, store), mode="lexical") == []
    assert rank(store, encoder, Query("sociale medier", store, encoder.card), mode="hybrid")


def test_repair_of_a_folder_that_is_not_there_creates_nothing(cli, tmp_path: Path) -> None:
    missing = tmp_path / "typo-index"
    result = cli("--index-dir", str(missing), "repair")
    assert result.exit_code == 4 and "nothing to repair" in result.output
    assert not missing.exists()


def test_a_range_header_is_read_as_rfc_9110_or_refused(store: IndexStore) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from hmsearch.web.app import create_app, create_service

    client = TestClient(create_app(create_service(store.root)))
    ok = client.get("/audio/hm-sample-001", headers={"Range": "bytes=10-19"})
    assert ok.status_code == 206 and len(ok.content) == 10
    for bad in ("bytes=1_0-2_0", "bytes=0x10-20", "bytes= 1 - 2 ", "items=0-9"):
        got = client.get("/audio/hm-sample-001", headers={"Range": bad})
        assert got.status_code == 416, bad
        assert got.headers["content-range"].startswith("bytes */")


def test_eval_asr_reads_long_references_and_checks_audio_before_any_model(cli, tmp_path: Path) -> None:
    """A reference over csv's 128 KB field limit (a long episode's text) is read; bad audio is one
    line before a model is looked for (the model named here does not exist: that error would come
    first if the audio were checked after it)."""
    (tmp_path / "bad.mp3").write_bytes(os.urandom(5000))
    (tmp_path / "refs.tsv").write_text("bad.mp3\t" + "ord " * 60_000 + "\n", encoding="utf-8")
    result = cli("eval-asr", str(tmp_path / "refs.tsv"), "--whisper-model", "no-such-model")
    assert result.exit_code == 2, result.output
    assert "bad.mp3: not a decodable audio file" in result.output and "field larger" not in result.output


def test_a_questions_file_with_a_bom_reads_and_a_device_is_refused(tmp_path: Path, deadline) -> None:
    from hmsearch.errors import InputError
    from hmsearch.evaluate import load_questions

    line = '{"id": "q1", "question": "Hvor tit?", "episode": "e", "start": 1.0, "end": 2.0}\n'
    path = tmp_path / "q.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line.encode())
    (q,) = load_questions(path)
    assert q.question == "Hvor tit?"
    with pytest.raises(InputError, match="not a regular file"):
        load_questions(Path("/dev/zero"))

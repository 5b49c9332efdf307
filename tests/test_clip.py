"""Clips: the sample episode's audio cut between word times (mp3 and m4a through PyAV), fades,
the cut snapped to whole words, the clip's own SRT/VTT, `search '"quote"' --clip`, and the
one-line errors (bad ranges, transcript-only and remote episodes). The index is built with the
HashingEncoder stand-in: clipping needs the episode's words and audio, not a model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import srt
import webvtt

from hmsearch.asr import TranscriberSpec
from hmsearch.audio import decode_audio, probe_audio
from hmsearch.host.clip import snap
from hmsearch.index import IndexStore
from hmsearch.ingest import IndexOptions, index_paths
from hmsearch.query import QueryService

from helpers import SAMPLE_AUDIO, SAMPLE_TRANSCRIPT, HashingEncoder, write_srt

OPTIONS = IndexOptions(TranscriberSpec("turbo"))  # never runs: the sample has its transcript beside it


@pytest.fixture
def sample_index(tmp_path: Path) -> IndexStore:
    folder = tmp_path / "audio"
    folder.mkdir()
    shutil.copy(SAMPLE_AUDIO, folder)
    shutil.copy(SAMPLE_TRANSCRIPT, folder)
    write_srt(folder / "notes-only.srt", ["Et afsnit uden lyd.", "Kun en tekst."])
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        index_paths([folder], store, encoder=HashingEncoder(), options=OPTIONS)
    return IndexStore(tmp_path / "ix")


def _sample_words() -> list[tuple[str, float, float]]:
    obj = json.loads(SAMPLE_TRANSCRIPT.read_text())
    return [(w["word"].strip(), w["start"], w["end"]) for s in obj["segments"] for w in s["words"]]


@pytest.mark.parametrize("suffix", [".mp3", ".m4a"])
def test_clip_is_cut_at_whole_words_with_its_own_subtitles(sample_index, tmp_path, suffix) -> None:
    words = _sample_words()
    k = next(i for i, w in enumerate(words) if w[0] == "klare")  # "Mit klare råd er at svare ..."
    mid_start = (words[k][1] + words[k][2]) / 2  # inside "klare"
    mid_end = (words[k + 6][1] + words[k + 6][2]) / 2  # inside the 7th word from it
    out = tmp_path / f"clip{suffix}"
    result = QueryService(sample_index.root).clip("hm-sample-001", mid_start, mid_end, out)
    assert result.text.split()[0] == "klare" and len(result.text.split()) == 7  # whole words, both ends
    assert result.start <= words[k][1] + 1e-3 and result.end >= words[k + 6][2] - 0.3
    info = probe_audio(out)
    assert info.codec.startswith("mp3" if suffix == ".mp3" else "aac")
    assert info.duration == pytest.approx(result.end - result.start, abs=0.15)
    samples = decode_audio(out)
    assert np.abs(samples[:80]).max() < 0.5 * np.abs(samples).max()  # faded in
    subs = list(srt.parse(out.with_suffix(".srt").read_text()))
    assert subs[0].start.total_seconds() < 0.2
    assert subs[-1].end.total_seconds() <= result.end - result.start + 1e-3  # relative to the clip
    assert " ".join(s.content.replace("\n", " ") for s in subs) == result.text
    assert webvtt.read(str(out.with_suffix(".vtt"))).captions


def test_snap_keeps_every_word_the_range_touches() -> None:
    words = [("a", 0.0, 1.0), ("b", 1.0, 2.0), ("c", 2.0, 3.0)]
    assert snap(words, 0.5, 1.5) == (0, 2)
    assert snap(words, 1.0, 2.0) == (1, 2)
    assert snap(words, 2.9, 10.0) == (2, 3)


def test_the_index_words_are_the_transcripts(sample_index) -> None:
    got = [w for w, _, _ in QueryService(sample_index.root).transcript("hm-sample-001").words()]
    assert got == [w for w, _, _ in _sample_words()]


@pytest.mark.parametrize(
    ("start", "end", "says"),
    [
        ("10", "5", "must come after its start"),
        ("-1", "5", "not a time"),  # a negative time is no time (issue 27: "1:-5" was taken)
        ("300", "305", "after the episode's end"),
        ("0", "700", "at most"),
        ("1:02", "1:01", "must come after"),
        ("abc", "5", "not a time"),
    ],
)
def test_bad_ranges_are_one_line_errors(sample_index, cli, tmp_path, start, end, says) -> None:
    r = cli(
        "--index-dir",
        str(sample_index.root),
        "clip",
        "hm-sample-001",
        "--start",
        start,
        "--end",
        end,
        "-o",
        str(tmp_path / "x.mp3"),
    )
    assert r.exit_code == 2 and says in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.mp3").exists()


def test_transcript_only_episode_and_bad_output_are_one_line_errors(sample_index, cli, tmp_path) -> None:
    root = str(sample_index.root)
    r = cli("--index-dir", root, "clip", "notes-only", "--start", "0", "--end", "3", "-o", str(tmp_path / "x.mp3"))
    assert r.exit_code == 2 and "transcript only" in r.output and len(r.output.strip().splitlines()) == 1
    r = cli("--index-dir", root, "clip", "hm-sample-001", "--start", "0", "--end", "3", "-o", str(tmp_path / "x.wav"))
    assert r.exit_code == 2 and ".mp3 or .m4a" in r.output
    r = cli("--index-dir", root, "clip", "nope", "--start", "0", "--end", "3", "-o", str(tmp_path / "x.mp3"))
    assert r.exit_code == 6


def test_remote_enclosure_asks_for_download(sample_index, tmp_path) -> None:
    from dataclasses import replace

    from hmsearch.errors import InputError

    with sample_index.writing():
        rec = sample_index.record("hm-sample-001")
        rec.episode = replace(rec.episode, audio=None, enclosure="https://example.invalid/ep.mp3")
        sample_index._commit(sample_index.require())
    with pytest.raises(InputError, match="remote.*--download"):
        QueryService(sample_index.root).clip("hm-sample-001", 1.0, 3.0, tmp_path / "x.mp3")


def test_search_quote_clip(sample_index, cli, tmp_path) -> None:
    out = tmp_path / "quote.mp3"
    r = cli(
        "--index-dir", str(sample_index.root), "search", '"svare inden for to timer"', "-k", "1", "--clip", str(out)
    )
    assert r.exit_code == 0, r.output
    subs = list(srt.parse(out.with_suffix(".srt").read_text()))
    said = " ".join(s.content.replace("\n", " ") for s in subs)
    assert said == "Mit klare råd er at svare inden for 2 timer på hverdage mellem klokken 8 og 16."  # its sentence
    assert 4.0 < probe_audio(out).duration < 5.5
    words = tmp_path / "words.mp3"
    r = cli(
        "--index-dir",
        str(sample_index.root),
        "search",
        '"svare inden for to timer"',
        "--clip",
        str(words),
        "--words-only",
    )
    assert r.exit_code == 0, r.output
    subs = list(srt.parse(words.with_suffix(".srt").read_text()))
    assert " ".join(s.content.replace("\n", " ") for s in subs) == "svare inden for 2 timer"
    assert 0.8 < probe_audio(words).duration < 3.0
    none = cli("--index-dir", str(sample_index.root), "search", '"zebra giraffe"', "--clip", str(tmp_path / "n.mp3"))
    assert none.exit_code == 6 and not (tmp_path / "n.mp3").exists()


def test_remote_enclosure_is_downloaded_with_updates_checks(sample_index, tmp_path) -> None:
    import threading
    from dataclasses import replace
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from hmsearch.errors import InputError

    body = SAMPLE_AUDIO.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            html = self.path.endswith(".html")
            data = b"<html>not audio</html>" if html else body
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if html else "audio/mpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        for url in (f"{base}/page.html", f"{base}/ep.mp3"):
            with sample_index.writing():
                rec = sample_index.record("hm-sample-001")
                rec.episode = replace(rec.episode, audio=None, enclosure=url)
                sample_index._commit(sample_index.require())
            store = IndexStore(sample_index.root)
            if url.endswith(".html"):
                with pytest.raises(InputError, match="served text/html"):
                    QueryService(store.root).clip("hm-sample-001", 143.0, 146.0, tmp_path / "x.mp3", download=True)
                assert not (tmp_path / "x.mp3").exists()
            else:
                result = QueryService(store.root).clip("hm-sample-001", 143.0, 146.0, tmp_path / "x.mp3", download=True)
                (kept,) = (sample_index.root / "downloads").glob("hm-sample-001-*.mp3")  # named by the whole id
                assert kept.read_bytes() == body
                assert probe_audio(result.audio).duration > 2.5
    finally:
        httpd.shutdown()


@pytest.mark.parametrize("suffix", [".mp3", ".m4a"])
def test_clip_is_the_episodes_audio_at_the_same_times(sample_index, tmp_path, suffix) -> None:
    """Sample for sample (at 16 kHz) the clip is the episode from the clip's start: no shift by the
    MP3's encoder delay, no other stretch of the episode."""
    result = QueryService(sample_index.root).clip("hm-sample-001", 143.2, 151.0, tmp_path / f"c{suffix}")
    clip = decode_audio(result.audio)
    source = decode_audio(SAMPLE_AUDIO)
    a = round(result.start * 16_000)

    def similarity(lag: int) -> float:
        ref = source[a + lag : a + lag + len(clip)]
        return float(clip @ ref / (np.linalg.norm(clip) * np.linalg.norm(ref)))

    assert similarity(0) > 0.95
    assert similarity(0) >= max(similarity(lag) for lag in (-800, -400, -160, 160, 400, 800))

"""Hostile input (issue 12): transcripts, file names, queries and question files that a careless or
hostile user hands hmsearch. Each test names the finding it guards; each failed before its fix.
Model-free: the HashingEncoder stand-in embeds (tests/helpers.py), so these prove plumbing and
bounds, not search quality."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hmsearch.asr import TranscriberSpec
from hmsearch.chunk import ChunkSettings, chunk_transcript, transcript_sentences
from hmsearch.errors import InputError, TranscriptFormatError
from hmsearch.formats import parse_srt, parse_vtt, read_transcript
from hmsearch.index import IndexStore
from hmsearch.ingest import IndexOptions, index_paths
from hmsearch.types import Segment, Transcript

from helpers import HashingEncoder, write_srt

OPTIONS = IndexOptions(TranscriberSpec("turbo"))  # never runs: every input here is a transcript


def growth(run: Callable[[int], object], small: int, factor: int = 8) -> float:
    """How much longer ``run(n * factor)`` takes than ``run(n)`` (best of 3), ``n`` doubled from
    ``small`` until a run takes 20 ms: about ``factor`` for linear work (up to twice that once the
    input outgrows the CPU caches), ``factor**2`` = 64 for quadratic. A ratio, not a timing, so a
    loaded machine does not make it flaky."""

    def best(n: int) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            run(n)
            times.append(time.perf_counter() - t)
        return min(times)

    n, base = small, best(small)
    while base < 0.02 and n < small * 256:
        n *= 2
        base = best(n)
    return best(n * factor) / base


def _index(folder: Path, store: IndexStore, **kw):
    with store.writing():
        return index_paths([folder], store, encoder=HashingEncoder(), options=OPTIONS, **kw)


# ---- 10: quadratic regular expressions --------------------------------------------------------
def test_10_sentence_end_over_a_long_punctuation_run_is_linear():
    def run(n: int) -> None:
        t = Transcript(segments=(Segment(0.0, 5.0, "a" + "." * n + "b"),))
        transcript_sentences(t)

    assert growth(run, 1000) < 32


def test_10_webvtt_voice_tag_over_a_long_run_of_spaces_is_linear():
    def run(n: int) -> None:
        parse_vtt("WEBVTT\n\n00:00.000 --> 00:01.000\n<v" + " " * n + "x\n")

    assert growth(run, 1000) < 32


def test_10_broken_timing_line_of_dashes_is_linear():
    # The "was this meant to be a timing line?" check between cues had the same shape.
    def run(n: int) -> None:
        parse_srt("1\n00:00:00,000 --> 00:00:01,000\nhi\n\n1" + "-" * n + "\n")

    assert growth(run, 1000) < 32


def test_10_many_unclosed_voice_tags_are_linear():
    def run(n: int) -> None:
        parse_vtt("WEBVTT\n\n00:00.000 --> 00:01.000\n" + "<v " * n + "\n")

    assert growth(run, 1000) < 32


# ---- 13: passage amplification and size limits ------------------------------------------------
@pytest.mark.parametrize("step", [0.0, 0.001])
def test_13_zeroed_or_dense_cue_times_do_not_amplify_passages(step):
    sentences = [f"Sentence number {i} says a few more words here." for i in range(2000)]
    segs = tuple(Segment(i * step, i * step, s) for i, s in enumerate(sentences))
    enc = HashingEncoder()
    passages = chunk_transcript(Transcript(segments=segs), count_tokens=enc.count_tokens, max_tokens=enc.max_tokens)
    total_tokens = sum(enc.count_tokens(sentences)) + len(sentences)  # a joint costs a token
    limit = min(enc.max_tokens, ChunkSettings().max_tokens)
    # Each passage adds at least half a window of new text: bounded by the text's length.
    assert len(passages) <= 2 * total_tokens / limit + 2, len(passages)
    assert all(sum(enc.count_tokens([s.text for s in p.sentences])) <= limit for p in passages)


def test_13_transcript_beyond_reason_is_a_clear_error(tmp_path, monkeypatch):
    import hmsearch.formats as formats

    monkeypatch.setattr(formats, "MAX_TRANSCRIPT_BYTES", 1000)
    path = write_srt(tmp_path / "big.srt", ["word " * 50] * 10)
    with pytest.raises(TranscriptFormatError, match="too large"):
        read_transcript(path)


# ---- 17: one bad input is one failed item ------------------------------------------------------
def test_17_bad_inputs_fail_one_by_one_and_the_rest_is_indexed(tmp_path):
    folder = tmp_path / "eps"
    folder.mkdir()
    write_srt(folder / "good.srt", ["A perfectly good episode about newsletters."])
    (folder / "nested.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "bigint.json").write_text('{"segments": [{"start": ' + "9" * 5000 + ', "end": 1, "text": "x"}]}')
    (folder / "surrogate.json").write_text('{"segments": [{"start": 0, "end": 1, "text": "bad \\ud800 text"}]}')
    os.close(os.open(os.fsencode(folder) + b"/name\xff.srt", os.O_WRONLY | os.O_CREAT))
    write_srt(Path(os.fsdecode(os.fsencode(folder) + b"/name\xff.srt")), ["A file whose name is not UTF-8."])
    store = IndexStore(tmp_path / "ix")
    report = _index(folder, store)
    assert "good" in report.added
    failed = " ".join(reason for _, reason in report.failed)
    assert {"nested", "bigint"} <= {Path(f).stem for f, _ in report.failed}, report.failed
    assert "\n" not in failed
    # The surrogate is either replaced (indexed) or a failed item; the manifest is valid UTF-8 either way.
    json.loads(store.manifest_path.read_bytes().decode("utf-8"))
    assert len(report.added) + len(report.failed) == 5


def test_17_deeply_nested_and_huge_numbers_are_one_line_errors(tmp_path):
    for name, body in [("n.json", "[" * 100_000), ("i.json", '{"segments": [], "duration": ' + "1" * 5000 + "}")]:
        (tmp_path / name).write_text(body)
        with pytest.raises(TranscriptFormatError):
            read_transcript(tmp_path / name)


# ---- 19: negative and absurd cue times ---------------------------------------------------------
def test_19_negative_and_absurd_cue_times_are_refused(tmp_path):
    neg = tmp_path / "neg.json"
    neg.write_text(json.dumps({"segments": [{"start": -50.0, "end": 1.0, "text": "x"}]}))
    with pytest.raises(TranscriptFormatError, match="negative"):
        read_transcript(neg)
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"segments": [{"start": 1e300, "end": 1e301, "text": "x"}]}))
    with pytest.raises(TranscriptFormatError, match="beyond"):
        read_transcript(huge)
    srt = tmp_path / "huge.srt"
    srt.write_text("1\n99999999:00:00,000 --> 99999999:00:01,000\nx\n")
    with pytest.raises(TranscriptFormatError, match="bad cue time"):
        read_transcript(srt)
    # A rounding slip just below zero (some tools write -0.01) is read as 0.
    slip = tmp_path / "slip.json"
    slip.write_text(json.dumps({"segments": [{"start": -0.01, "end": 1.0, "text": "x"}]}))
    assert read_transcript(slip).segments[0].start == 0.0


# ---- 19: `hmsearch index .` does not index the index's own files --------------------------------
def test_19_indexing_a_folder_that_holds_the_index_skips_the_index(tmp_path):
    write_srt(tmp_path / "ep.srt", ["An episode about podcasts."])
    store = IndexStore(tmp_path / "index")
    _index(tmp_path, store)
    (store.root / "transcripts").mkdir(exist_ok=True)
    (store.root / "transcripts" / "abc.json").write_text(
        json.dumps({"segments": [{"start": 0, "end": 1, "text": "x"}]})
    )
    report = _index(tmp_path, IndexStore(tmp_path / "index"))
    assert report.added == [] and not report.failed
    assert [e.id for e in IndexStore(tmp_path / "index").episodes()] == ["ep"]


# ---- 3: control characters in printed and logged text ------------------------------------------
def test_3_escape_sequences_and_newlines_never_reach_terminal_or_log(tmp_path, cli):
    folder = tmp_path / "eps"
    folder.mkdir()
    evil = "evil\n\x1b[31mred"
    write_srt(folder / f"{evil}.srt", ["Hello \x1b]0;pwned\x07 newsletters \x1b[2J here."])
    store = IndexStore(tmp_path / "index")
    _index(folder, store)
    for args in (["episodes"], ["search", "newsletters", "--mode", "lexical"]):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output
    # An episode id with a newline is one line in the one-line-per-item log.
    from click.testing import CliRunner

    from hmsearch.cli import cli as app

    log = tmp_path / "run.log"
    (folder / "broken\nline.srt").write_text("not a transcript\n")
    with CliRunner().isolation():
        from hmsearch.cli._common import Reporter
        from hmsearch.ingest.events import IndexEvent

        ctx = app.make_context("hmsearch", ["--log-file", str(log), "episodes"])
        ctx.obj = {"log_file": log, "quiet": True}
        reporter = Reporter(ctx, quiet=True)
        reporter(IndexEvent("failed", "broken\nline", "broken\nline.srt: not\x1b[2J a transcript"))
        reporter.close()
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "\x1b" not in lines[0]


# ---- 18: non-UTF-8 bytes in a query; eval on binary or nested input ------------------------------
def test_18_non_utf8_query_is_a_one_line_error(tmp_path, cli):
    write_srt(tmp_path / "ep.srt", ["An episode about podcasts."])
    _index(tmp_path / "ep.srt", IndexStore(tmp_path / "index"))
    result = cli("search", os.fsdecode(b"caf\xe9"), "--mode", "lexical")
    assert result.exit_code == 2 and "UTF-8" in result.output, result.output


@pytest.mark.parametrize(
    "body",
    [b"\x00\xff\xfe binary \x89PNG", b"[" * 100_000, b'{"question": "q", "also": ' + b"[" * 100_000 + b"}"],
)
def test_18_eval_on_binary_or_nested_input_is_a_one_line_error(tmp_path, body):
    from hmsearch.evaluate import load_questions

    path = tmp_path / "q.jsonl"
    path.write_bytes(body)
    with pytest.raises(InputError):
        load_questions(path)
    with pytest.raises(InputError):
        load_questions(tmp_path)  # a folder


# ---- 18: config of the wrong type or a folder; --log-file in a missing folder --------------------
@pytest.mark.parametrize(
    "setup",
    [
        lambda p: (p / "cfg").mkdir(),  # HMSEARCH_CONFIG is a folder
        lambda p: (p / "cfg").write_text("index_dir = 5\n"),  # wrong type
        lambda p: (p / "cfg").write_bytes(b"\xff\xfe not toml"),
    ],
)
def test_18_bad_config_is_a_one_line_error(tmp_path, cli, monkeypatch, setup):
    setup(tmp_path)
    monkeypatch.setenv("HMSEARCH_CONFIG", str(tmp_path / "cfg"))
    monkeypatch.delenv("HMSEARCH_INDEX_DIR")  # so the file's index_dir is read
    result = cli("search", "x", "--mode", "lexical")
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output and len(result.output.strip().splitlines()) == 1


def test_18_log_file_in_a_missing_folder_is_a_one_line_error(tmp_path, cli):
    write_srt(tmp_path / "ep.srt", ["An episode."])
    result = cli("--log-file", str(tmp_path / "no" / "such" / "run.log"), "index", str(tmp_path / "ep.srt"))
    assert result.exit_code == 2 and "log file" in result.output, result.output

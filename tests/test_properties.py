"""Property tests (issue 12): whatever bytes the transcript readers, the chunker and the feed parser
are given, they return a Transcript (passages, feed items) or raise one InputError, never another
exception; and the work grows linearly with the input (checked as a ratio of times over growing
sizes, so a loaded machine does not make it flaky). Hypothesis shrinks any counterexample."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hmsearch.chunk import chunk_transcript  # noqa: E402
from hmsearch.errors import InputError  # noqa: E402
from hmsearch.formats import parse_srt, parse_vtt, parse_whisper_json, read_transcript  # noqa: E402
from hmsearch.ingest.feeds import parse_feed  # noqa: E402
from hmsearch.types import Transcript  # noqa: E402

from helpers import HashingEncoder  # noqa: E402

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

# Text that looks like captions: timing lines, arrows, tags, entities, digits and punctuation runs.
PIECES = [
    "00:00:01,000 --> 00:00:02,000",
    "00:01.000 --> 00:02.500 align:start",
    "WEBVTT",
    "NOTE x",
    "-->",
    "->",
    "<v Anna>",
    "<v ",
    "</v>",
    "<i>",
    "<c.red>",
    "&amp;",
    "&#xD800;",
    "{\\an8}",
    "\n",
    "\n\n",
    "\r\n",
    " ",
    "\t",
    "1",
    "99999999",
    ":",
    ".",
    "...",
    "!?",
    "»",
    "Hello.",
    "Hej med dig",
    "\ufeff",
    "\x1b[31m",
]
caption_text = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=60).map("".join)


def _reads(parse, text: str) -> None:
    try:
        t = parse(text)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(t, Transcript)
    for seg in t.segments:
        assert 0 <= seg.start <= seg.end
        seg.text.encode("utf-8")


@SETTINGS
@given(caption_text)
def test_srt_reader_gives_a_transcript_or_one_input_error(text):
    _reads(parse_srt, text)


@SETTINGS
@given(caption_text)
def test_vtt_reader_gives_a_transcript_or_one_input_error(text):
    _reads(parse_vtt, "WEBVTT\n\n" + text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["start", "end", "text", "words", "word", "segments", "language", "speaker", "probability", "duration"]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@SETTINGS
@given(json_values)
def test_whisper_json_reader_gives_a_transcript_or_one_input_error(obj):
    _reads(lambda _: parse_whisper_json(obj), "")


@SETTINGS
@given(st.binary(max_size=400), st.sampled_from([".srt", ".vtt", ".json"]))
def test_any_bytes_in_a_file_give_a_transcript_or_one_input_error(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("prop") / f"t{suffix}"
    path.write_bytes(data)
    try:
        read_transcript(path)
    except InputError as exc:
        assert "\n" not in str(exc)


segments = st.lists(
    st.tuples(st.floats(0, 1e5, allow_nan=False), st.floats(0, 100, allow_nan=False), st.text(max_size=200)),
    max_size=40,
)


@SETTINGS
@given(segments)
def test_chunker_bounds_every_passage_by_the_token_limit(raw):
    from hmsearch.types import Segment

    enc = HashingEncoder()
    segs = tuple(Segment(a, a + d, " ".join(text.split())) for a, d, text in raw if text.strip())
    passages = chunk_transcript(Transcript(segments=segs), count_tokens=enc.count_tokens, max_tokens=enc.max_tokens)
    words = sum(len(s.text.split()) for s in segs)
    assert len(passages) <= 2 * (words + len(segs)) / 10 + len(segs) + 2  # never more than the text allows
    for p in passages:
        assert sum(enc.count_tokens([s.text for s in p.sentences])) <= enc.max_tokens
        assert p.start <= p.end


feed_text = st.lists(
    st.sampled_from(
        [
            "<rss>",
            "</rss>",
            "<channel>",
            "<item>",
            "</item>",
            "<guid>",
            "</guid>",
            "<title>x</title>",
            '<enclosure url="http://e/a.mp3" type="audio/mpeg" length="12"/>',
            '<enclosure url="file:///etc/passwd" length="99999999999999999999999"/>',
            '<podcast:transcript url="http://e/t.srt" type="application/x-subrip"/>',
            '<!DOCTYPE x [<!ENTITY a "aaaa">]>',
            "&a;",
            "\x00",
            "\ud800",
            "<![CDATA[",
            "]]>",
            "g1",
        ]
    )
    | st.text(max_size=6),
    max_size=40,
).map("".join)


@SETTINGS
@given(feed_text)
def test_feed_parser_gives_items_or_one_input_error(text):
    data = ('<?xml version="1.0"?><rss xmlns:podcast="https://podcastindex.org/namespace/1.0">' + text).encode(
        "utf-8", "surrogatepass"
    )
    try:
        items, errors = parse_feed(data, name="feed")
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    for item in items:
        assert item.guid and (item.enclosure or item.transcripts)


# ---- linear time over growing sizes --------------------------------------------------------------
def _ratio(run, small: int, factor: int = 8, make=None) -> float:
    """Time of ``run(make(n * factor))`` over ``run(make(n))``, best of 5, where ``n`` starts at
    ``small`` and doubles until one run takes 20 ms (so timer noise and a loaded machine do not
    decide it). Linear work gives about ``factor`` (up to twice that once inputs outgrow the CPU
    caches), quadratic ``factor**2`` = 64: the tests allow 32. Inputs are built before the clock."""
    make = make or (lambda n: n)

    def best(n: int) -> float:
        arg = make(n)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            run(arg)
            times.append(time.perf_counter() - t)
        return min(times)

    n, base = small, best(small)
    while base < 0.02 and n < small * 1024:
        n *= 2
        base = best(n)
    return best(n * factor) / base


SHAPES = {
    # name: (reader, one unit of a pathological input, how many units to start from)
    "srt punctuation": (parse_srt, lambda n: "1\n00:00:00,000 --> 00:00:01,000\n" + "." * n + "x\n", 2000),
    "srt dashes": (parse_srt, lambda n: "1\n00:00:00,000 --> 00:00:01,000\nx\n\n1" + "-" * n + "\n", 2000),
    "srt digits": (parse_srt, lambda n: "1" * n + ":" + "\n", 2000),
    "vtt spaces": (parse_vtt, lambda n: "WEBVTT\n\n00:00.000 --> 00:01.000\n<v" + " " * n + "x\n", 2000),
    "vtt tags": (parse_vtt, lambda n: "WEBVTT\n\n00:00.000 --> 00:01.000\n" + "<c." * n + "\n", 2000),
    "vtt entities": (parse_vtt, lambda n: "WEBVTT\n\n00:00.000 --> 00:01.000\n" + "&#" * n + "\n", 2000),
    "srt ssa": (parse_srt, lambda n: "1\n00:00:00,000 --> 00:00:01,000\n" + "{\\" * n + "\n", 2000),
    "many cues": (
        parse_srt,
        lambda n: "".join(f"{i}\n00:00:{i % 60:02d},000 --> 00:00:{i % 60:02d},500\nHej {i}.\n\n" for i in range(n)),
        200,
    ),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_readers_take_linear_time_in_the_input(shape):
    reader, make, small = SHAPES[shape]

    def run(text: str) -> None:
        try:
            reader(text)
        except InputError:
            pass

    assert _ratio(run, small, make=make) < 32, shape


@pytest.mark.parametrize(
    "text",
    ["a" + "." * 1, "word " * 1 + "x", "!?" * 1 + "A", "-'" * 1],
)
def test_chunker_takes_linear_time_in_the_input(text):
    from hmsearch.types import Segment

    enc = HashingEncoder()

    def run(seg: Segment) -> None:
        chunk_transcript(Transcript(segments=(seg,)), count_tokens=enc.count_tokens, max_tokens=enc.max_tokens)

    assert _ratio(run, 4000, make=lambda n: Segment(0.0, 10.0, text * n)) < 32


def test_feed_parser_takes_linear_time_in_the_items():
    def make(n: int) -> bytes:
        items = "".join(
            f'<item><guid>g{i}</guid><title>t</title><enclosure url="http://e/{i}.mp3" type="audio/mpeg"/></item>'
            for i in range(n)
        )
        return f"<rss><channel>{items}</channel></rss>".encode()

    assert _ratio(lambda data: parse_feed(data, name="feed"), 50, make=make) < 32


def test_json_reader_takes_linear_time_in_the_segments(tmp_path):
    def make(n: int) -> object:
        return json.loads(json.dumps({"segments": [{"start": i, "end": i + 1, "text": f"ord {i}."} for i in range(n)]}))

    assert _ratio(parse_whisper_json, 500, make=make) < 32


# ---- the fuzz target ---------------------------------------------------------------------------
FUZZ = Path(__file__).resolve().parent.parent / "scripts" / "fuzz_readers.py"


def test_fuzz_target_holds_on_its_seed_corpus_and_the_known_hostile_inputs():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fuzz_readers", FUZZ)
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    hostile = [
        b"[" * 100_000,
        b'{"segments": [{"start": ' + b"9" * 5000 + b', "end": 1, "text": "x"}]}',
        b'{"segments": [{"start": 0, "end": 1, "text": "\\ud800"}]}',
        b'{"segments": [{"start": -5, "end": 1, "text": "x"}]}',
        b"1\n" + b"9" * 6000 + b":00:00,000 --> 00:00:01,000\nx\n",
        b"WEBVTT\n\n00:00.000 --> 00:01.000\n<v" + b" " * 5000 + b"x\n",
        b"\xff\xfe" + b"\x00\xd8" * 10,
    ]
    for data in fuzz._seeds([]) + hostile:
        fuzz.one_input(data)


@pytest.mark.slow
def test_fuzz_smoke_run(tmp_path):
    """A bounded fuzz run (seconds) in CI: atheris where it installs, else the fallback fuzzer."""
    import subprocess
    import sys

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # libFuzzer's RSS limit reads getrusage's peak, which a child started from this process
    # inherits (Linux keeps the parent's high-water mark across fork + exec: a test process that
    # has loaded models made a 53 MB fuzzer "use" 2.7 GB). The limit on one allocation stays.
    limits = ["-rss_limit_mb=0", "-malloc_limit_mb=1024"]
    result = subprocess.run(
        [
            sys.executable,
            str(FUZZ),
            "-max_total_time=5",
            "-runs=20000",
            *limits,
            str(corpus),
            str(FUZZ.parent / "fuzz_corpus"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not list(tmp_path.glob("crash-*"))

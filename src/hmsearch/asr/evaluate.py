"""How well a transcriber hears: WER and CER against reference texts, language ID, speed, memory, loops.

- **Normalising** (:func:`normalize`): both sides are lower-cased (NFKC), hyphens and dots inside a
  word are dropped ("e-mail" = "email", "h.c." = "hc"; a hyphenated number is split instead,
  "twenty-three" = 23), "%" is the word (procent), every other punctuation mark becomes a space,
  whitespace is collapsed, and numbers are compared in one form: number words become digits with
  text2num's ``alpha2digit`` (Danish, English, German, Dutch, French, Spanish, Italian,
  Portuguese), so "femogtyve", "fem og tyve" and "25" agree, and "nitten hundrede og halvfems" is
  "1990". text2num leaves an isolated "en"/"et"/"one" alone (an article more often than a number)
  and writes ordinals as "7." (the dot then goes); "nul"/"zero" are mapped to "0" here. Thousands
  separators go ("1.000" = "1000"); a decimal separator is kept as "," ("2.5" = "2,5"), but three or
  more numbers joined by commas are a list ("1,2,3" = "1 2 3": Whisper writes a counted list so).
- **Scores** (jiwer): WER = (substitutions + deletions + insertions) / reference words, CER the same
  over characters of the normalised text; the totals are summed over items (a corpus WER, not a
  mean of per-item WERs).
- **Repetition loops** (:func:`count_loops`): a loop is a run in the normalised hypothesis where the
  same n-gram of ``n >= 3`` words occurs ``>= 3`` times in a row; the smallest such n is taken at
  each position, a run counts once however long it goes on, and the scan resumes after it. One- and
  two-word stutters ("ja ja ja") are natural speech and not counted; nine equal words in a row are
  (three times the same 3-gram).
- **Speed and memory**: the model is loaded (and warmed up on one second of silence) before the
  clock starts; the real-time factor is transcription seconds / audio seconds (decoding the audio
  file is not counted), the CPU real-time factor the process's CPU seconds (all threads) / audio
  seconds, which other jobs on a shared machine disturb less; peak RSS is the whole process's high-water mark (``getrusage``), so compare
  configurations run in separate processes.
- **Long-form references that are approximate** (LibriVox): the text file is the whole tale while the
  audio also has LibriVox's spoken intro and outro, and the text is in 1800s spelling ("saa",
  "kunde", "Veien") that a modern reader does not say differently. Such items are scored against the
  text as it is (with a few spelling rules, :func:`modernize_danish`, applied to both sides) and
  flagged ``approximate``; ``wer_trimmed`` also drops the hypothesis words before and after the
  stretch that best aligns with the text (a semi-global alignment), i.e. the intro and outro.

- **Sentence starts** (:func:`sentence_start_errors`): when the reference is a timed transcript
  with exact sentence times (espeak-ng speech laid out by ``scripts/make_sample.py``), each
  reference sentence's stretch (widened halfway into the pauses around it) takes the hypothesis
  words whose middle falls in it; the error is the first such word's start minus the sentence's
  start. Reported: median and 90th percentile of |error|, the signed mean, and the sentences in
  which no word was heard. (Word starts are not scored: no reference here has exact word times.)

Datasets (:func:`read_dataset`): a TSV manifest (audio file, reference text; paths relative to the
TSV; a header row naming ``file``/``audio``/``path`` and ``reference``/``text`` columns is
recognised, so NST's ``refs.tsv`` is read as it is), a folder of ``<stem>.<audio>`` +
``<stem>.txt`` pairs (or ``<stem>.json/.srt/.vtt`` timed references), or a folder holding one TSV manifest.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import re
import resource
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import AUDIO_SUFFIXES, SAMPLE_RATE, decode_audio, probe_audio
from ..errors import HmsearchError, InputError
from . import TranscriberSpec, engine_class, load_transcriber

__all__ = [
    "AsrReport",
    "Dataset",
    "EvalItem",
    "ItemResult",
    "aligned_span",
    "count_loops",
    "evaluate_asr",
    "modernize_danish",
    "normalize",
    "read_dataset",
    "score_texts",
]

NUMBER_LANGUAGES = ("da", "en", "de", "nl", "fr", "es", "it", "pt")  # what text2num's alpha2digit reads
LOOP_MIN_WORDS = 3
LOOP_MIN_REPEATS = 3
_INSTALL = "pip install jiwer text2num (both are dependencies of hmsearch: reinstall it)"

# ----------------------------------------------------------------------------------------------
# Normalising

_ZERO = {"da": "nul", "en": "zero", "de": "null", "nl": "nul"}
_THOUSANDS = re.compile(r"(?<=\d)[.,](?=\d{3}(?!\d))")
_DECIMAL = re.compile(r"(?<=\d)[.,](?=\d)")
# Three or more numbers joined by commas with no space ("1,2,3,4,5,6,7", as Whisper writes a
# counted list): a list, not one decimal number; the commas become spaces.
_NUMBER_LIST = re.compile(r"\b\d+(?:,\d+){2,}\b")
_HYPHENATED = re.compile(r"\w+(?:[-‐‑]\w+)+")
_INNER_DOT = re.compile(r"(?<=\w)\.(?=\w)")  # h.c., f.eks.
_PERCENT = {"da": "procent", "en": "percent", "de": "prozent", "nl": "procent"}
_PUNCT = re.compile(r"(?!(?<=\d),(?=\d))[^\w\s]|_")  # every mark but a decimal comma
_SPACE = re.compile(r"\s+")


def _alpha2digit() -> Callable[..., str]:
    try:
        from text_to_num import alpha2digit
    except ImportError:
        raise HmsearchError(f"scoring ASR needs text2num for numbers: {_INSTALL}") from None
    return alpha2digit  # type: ignore[no-any-return]


def _jiwer() -> Any:
    try:
        import jiwer
    except ImportError:
        raise HmsearchError(f"scoring ASR needs jiwer: {_INSTALL}") from None
    return jiwer


# A few rules for the 1800s Danish orthography of the LibriVox texts (H.C. Andersen as printed then),
# not a full modernisation: what a reader today says, and Whisper writes, in modern spelling.
_OLD_SPELLING = (
    (re.compile(r"aa"), "å"),  # saa, Aaret, paa -> så, året, på
    (re.compile(r"åe\b"), "å"),  # gaae, saae -> gå, så
    (re.compile(r"ee"), "e"),  # see, Been, sneede -> se, ben, snede
    (re.compile(r"gj(?=[eøæ])"), "g"),  # igjen, gjerne -> igen, gerne
    (re.compile(r"kj(?=[eøæ])"), "k"),  # kjøbt -> købt
    (re.compile(r"ei"), "ej"),  # Veien, deiligt -> vejen, dejligt
    (re.compile(r"qv"), "kv"),  # Qvinde -> kvinde
    (re.compile(r"\bprinds"), "prins"),  # Prindsesse -> prinsesse
    (re.compile(r"\bkunde\b"), "kunne"),
    (re.compile(r"\bvilde\b"), "ville"),
    (re.compile(r"\bskulde\b"), "skulle"),
    (re.compile(r"\bhavt\b"), "haft"),
    (re.compile(r"\bvare\b"), "var"),  # plural of var
)


def modernize_danish(text: str) -> str:
    """Lower-cased ``text`` with the commonest 1800s Danish spellings in their modern form."""
    text = text.lower()
    for pattern, repl in _OLD_SPELLING:
        text = pattern.sub(repl, text)
    return text


def _dehyphenate(word: str, language: str | None) -> str:
    """A hyphenated word joined ("e-mail" -> "email"), unless it is a number ("twenty-three" -> 23)."""
    spaced = re.sub(r"[-‐‑]", " ", word)
    if language is not None and _alpha2digit()(spaced, language).replace(" ", "").isdigit():
        return spaced
    return re.sub(r"[-‐‑]", "", word)


def normalize(text: str, language: str | None = "da", *, old_spelling: bool = False) -> str:
    """``text`` as WER compares it: lower case, no punctuation or hyphens, single spaces, numbers as
    digits (number words of ``language``, when text2num reads it)."""
    text = unicodedata.normalize("NFKC", text).lower()
    if old_spelling:
        text = modernize_danish(text)
    numbers = language in NUMBER_LANGUAGES
    text = _THOUSANDS.sub("", text)
    text = _DECIMAL.sub(",", text)
    text = _NUMBER_LIST.sub(lambda m: m.group(0).replace(",", " "), text)
    text = _HYPHENATED.sub(lambda m: _dehyphenate(m.group(0), language if numbers else None), text)
    text = _INNER_DOT.sub("", text)
    if language in _PERCENT:
        text = text.replace("%", f" {_PERCENT[language]} ")
    text = _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()
    if numbers and text:
        text = _alpha2digit()(text, language)
        zero = _ZERO.get(language or "")
        words = ["0" if w == zero else w for w in text.split()]
        text = _SPACE.sub(" ", _PUNCT.sub(" ", " ".join(words))).strip()  # "7." -> "7"
    return text


# ----------------------------------------------------------------------------------------------
# Loops and alignment


def count_loops(words: Sequence[str], *, min_words: int = LOOP_MIN_WORDS, min_repeats: int = LOOP_MIN_REPEATS) -> int:
    """Runs in which the same n-gram (n >= ``min_words``) occurs ``min_repeats`` or more times in a row."""
    words = list(words)
    count, i, total = 0, 0, len(words)
    while i < total:
        run = 0
        for n in range(min_words, (total - i) // min_repeats + 1):
            if words[i + n] != words[i]:
                continue
            gram = words[i : i + n]
            reps = 1
            while words[i + reps * n : i + (reps + 1) * n] == gram:
                reps += 1
            if reps >= min_repeats:
                run = reps * n
                break
        if run:
            count += 1
            i += run
        else:
            i += 1
    return count


def aligned_span(reference: Sequence[str], hypothesis: Sequence[str]) -> tuple[int, int]:
    """(start, end) of the stretch of ``hypothesis`` that aligns best with the whole ``reference``:
    a word-level edit distance in which hypothesis words before and after are free (semi-global)."""
    if not reference or not hypothesis:
        return 0, len(hypothesis)
    ids: dict[str, int] = {}
    ref = [ids.setdefault(w, len(ids)) for w in reference]
    hyp = [ids.setdefault(w, len(ids)) for w in hypothesis]
    m = len(hyp)
    cost = [0] * (m + 1)  # row 0: any start is free
    start = list(range(m + 1))
    for i, r in enumerate(ref, 1):
        new_cost = [i] + [0] * m
        new_start = [0] * (m + 1)
        for j in range(1, m + 1):
            best, origin = cost[j - 1] + (r != hyp[j - 1]), start[j - 1]  # match or substitution
            if cost[j] + 1 < best:  # reference word deleted
                best, origin = cost[j] + 1, start[j]
            if new_cost[j - 1] + 1 < best:  # hypothesis word inserted
                best, origin = new_cost[j - 1] + 1, new_start[j - 1]
            new_cost[j], new_start[j] = best, origin
        cost, start = new_cost, new_start
    end = min(range(m + 1), key=lambda j: (cost[j], -j))  # ties: keep more of the hypothesis
    return start[end], end


# ----------------------------------------------------------------------------------------------
# Datasets


@dataclass(frozen=True)
class EvalItem:
    audio: Path
    reference: str
    name: str = ""
    approximate: bool = False  # the reference is not exactly what is said (see the module docstring)
    old_spelling: bool = False  # the reference is in 1800s Danish spelling
    # (start, end) of each reference sentence when the reference is a timed transcript (.json,
    # .srt, .vtt with exact times, as scripts/make_sample.py writes): start errors are then scored
    sentences: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.audio.stem)


@dataclass(frozen=True)
class Dataset:
    name: str
    items: tuple[EvalItem, ...]
    note: str = ""  # what a reader of the scores should know (approximate references)


_AUDIO_COLUMNS = ("audio", "file", "path", "filename", "wav")
_TEXT_COLUMNS = ("reference", "text", "transcript", "transcription", "sentence")
LIBRIVOX_NOTE = (
    "approximate references: LibriVox audio has a spoken intro and outro that the text lacks, and the "
    "text is in 1800s spelling (partly modernised by rules); wer_trimmed leaves out the hypothesis "
    "outside the stretch aligned with the text"
)


MAX_TEXT_BYTES = 64 << 20  # a reference list or a long episode's reference text


def _read_text(path: Path) -> str:
    from ..fsutil import read_limited

    try:
        data = read_limited(path, MAX_TEXT_BYTES)
        if len(data) > MAX_TEXT_BYTES:
            raise InputError(f"{path}: larger than {MAX_TEXT_BYTES >> 20} MB")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def _checked(item: EvalItem, where: str) -> EvalItem:
    if not item.audio.is_file():
        raise InputError(f"{where}: {item.audio}: no such audio file")
    if not normalize(item.reference, None, old_spelling=item.old_spelling):
        raise InputError(f"{where}: empty reference text for {item.audio.name}")
    return item


def _read_tsv(path: Path) -> Dataset:
    rows = [
        (n, row)
        # split, not csv: csv refuses a field over 128 KB, a long episode's reference text (issue 27, 14)
        for n, row in enumerate((line.split("\t") for line in _read_text(path).splitlines()), 1)
        if row and any(c.strip() for c in row) and not row[0].startswith("#")
    ]
    audio_col, text_col = 0, 1
    if rows:
        header = [c.strip().lower() for c in rows[0][1]]
        if any(h in _AUDIO_COLUMNS or h in _TEXT_COLUMNS for h in header):
            audio_col = next((header.index(c) for c in _AUDIO_COLUMNS if c in header), 0)
            text_col = next((header.index(c) for c in _TEXT_COLUMNS if c in header), 1)
            rows = rows[1:]
    if not rows:
        raise InputError(f"{path}: no items (expected lines of: audio file <TAB> reference text)")
    items = []
    for n, row in rows:
        if len(row) <= max(audio_col, text_col):
            raise InputError(f"{path}:{n}: expected an audio file and a reference text separated by a tab")
        audio = Path(row[audio_col].strip())
        item = EvalItem(path.parent / audio, row[text_col].strip())
        items.append(_checked(item, f"{path}:{n}"))
    return Dataset(path.stem if path.stem not in ("refs", "manifest") else path.parent.name, tuple(items))


def _is_librivox(folder: Path) -> bool:
    """LibriVoxDansk's layout: all.csv mapping each recording's id to its text's source."""
    csv_path = folder / "all.csv"
    try:
        return csv_path.is_file() and csv_path.read_text(encoding="utf-8").startswith("id,url_text")
    except (OSError, UnicodeDecodeError):
        return False


TIMED_SUFFIXES = (".json", ".srt", ".vtt")


def _reference_of(audio: Path) -> Path | None:
    """The reference beside an audio file: <stem>.txt, else a timed transcript <stem>.json/.srt/.vtt."""
    for suffix in (".txt", *TIMED_SUFFIXES):
        if audio.with_suffix(suffix).is_file():
            return audio.with_suffix(suffix)
    return None


def _timed_item(audio: Path, reference: Path) -> EvalItem:
    from ..formats import read_transcript

    transcript = read_transcript(reference)
    spans = tuple((s.start, s.end) for s in transcript.segments if s.text.strip())
    return EvalItem(audio, transcript.text, sentences=spans)


def _read_folder(folder: Path) -> Dataset:
    audio = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    paired = [(a, r) for a in audio if (r := _reference_of(a)) is not None]
    tsvs = sorted(folder.glob("*.tsv"))
    if not paired and len(tsvs) == 1:
        return _read_tsv(tsvs[0])
    if not audio:
        raise InputError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in the folder")
    if not paired:
        raise InputError(
            f"{folder}: no <stem>.txt (or timed <stem>.json/.srt/.vtt) reference beside any audio file "
            f"(and no single TSV manifest in the folder)"
        )
    unpaired = [a.name for a in audio if _reference_of(a) is None]
    if unpaired:
        raise InputError(f"{folder}: no reference text for {unpaired[0]} (expected {Path(unpaired[0]).stem}.txt)")
    librivox = _is_librivox(folder)
    items = tuple(
        _checked(
            _timed_item(a, t)
            if t.suffix.lower() in TIMED_SUFFIXES
            else EvalItem(a, _read_text(t), approximate=librivox, old_spelling=librivox),
            str(t),
        )
        for a, t in paired
    )
    return Dataset(folder.name, items, LIBRIVOX_NOTE if librivox else "")


def read_dataset(path: Path, *, only: Iterable[str] = ()) -> Dataset:
    """The items of a TSV manifest or a folder (see the module docstring); ``only``: these names
    (audio stems or file names) alone, in the dataset's order."""
    if not path.exists():
        raise InputError(f"{path}: no such dataset (a TSV manifest or a folder of audio + .txt pairs)")
    dataset = _read_folder(path) if path.is_dir() else _read_tsv(path)
    wanted = list(only)
    if wanted:
        known = {i.name for i in dataset.items} | {i.audio.name for i in dataset.items}
        missing = [w for w in wanted if w not in known]
        if missing:
            names = ", ".join(i.name for i in dataset.items[:5]) + (", …" if len(dataset.items) > 5 else "")
            raise InputError(f"{path}: no item named '{missing[0]}' (items: {names})")
        chosen = tuple(i for i in dataset.items if i.name in wanted or i.audio.name in wanted)
        dataset = Dataset(dataset.name, chosen, dataset.note)
    return dataset


# ----------------------------------------------------------------------------------------------
# Evaluating


@dataclass(frozen=True)
class ItemResult:
    name: str
    audio: str
    audio_seconds: float
    transcribe_seconds: float
    rtf: float
    cpu_seconds: float  # CPU time of the process (all threads) while transcribing
    language: str | None  # as detected (or forced)
    reference: str  # normalised
    hypothesis: str  # normalised
    raw_hypothesis: str
    ref_words: int
    word_errors: int
    substitutions: int
    deletions: int
    insertions: int
    wer: float
    ref_chars: int
    char_errors: int
    cer: float
    loops: int
    approximate: bool = False
    trimmed_word_errors: int | None = None  # approximate references only
    wer_trimmed: float | None = None
    cer_trimmed: float | None = None
    # timed references only: hypothesis start - reference start of each sentence, seconds (None:
    # no word was heard in that sentence's stretch)
    sentence_start_errors: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class AsrReport:
    dataset: str
    note: str
    spec: dict[str, Any]
    model_id: str
    expected_language: str | None  # of the references (normalisation and language-ID share)
    items: tuple[ItemResult, ...]
    audio_seconds: float
    transcribe_seconds: float
    load_seconds: float  # model load and a one-second warm-up, before the clock
    rtf: float
    cpu_seconds: float
    cpu_rtf: float  # CPU seconds / audio seconds: less sensitive than rtf to other jobs on the machine
    wer: float
    cer: float
    wer_trimmed: float | None  # when some references are approximate: their trimmed errors
    loops: int
    languages: dict[str, int]  # detected language -> items
    language_correct: int  # items detected as expected_language
    peak_rss_mb: float
    cpus: int
    load_average: tuple[float, float]  # 1-minute load at the start and at the end
    extra: dict[str, Any] = field(default_factory=dict)
    notice: str | None = None
    # timed references: |start error| of sentences over all items (median, 90th percentile, s),
    # how many were scored and how many had no word heard
    sentence_start: dict[str, Any] | None = None  # the transcriber's (``auto`` fell back to a lesser model)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _guess_language(texts: Iterable[str]) -> str | None:
    from ..text import guess_language

    return guess_language(" ".join(texts))


def score_texts(
    reference: str,
    hypothesis: str,
    language: str | None = "da",
    *,
    old_spelling: bool = False,
    approximate: bool = False,
) -> dict[str, Any]:
    """Word and character errors of ``hypothesis`` against ``reference``, both normalised; with
    ``approximate``, also the errors of the hypothesis trimmed to the stretch aligned with it."""
    jiwer = _jiwer()
    ref = normalize(reference, language, old_spelling=old_spelling)
    hyp = normalize(hypothesis, language, old_spelling=old_spelling)
    if not ref:
        raise InputError("empty reference text")
    words = jiwer.process_words(ref, hyp)
    chars = jiwer.process_characters(ref, hyp)
    ref_words, ref_chars = len(ref.split()), len(ref)
    word_errors = words.substitutions + words.deletions + words.insertions
    char_errors = chars.substitutions + chars.deletions + chars.insertions
    scores: dict[str, Any] = {
        "reference": ref,
        "hypothesis": hyp,
        "ref_words": ref_words,
        "word_errors": word_errors,
        "substitutions": words.substitutions,
        "deletions": words.deletions,
        "insertions": words.insertions,
        "wer": word_errors / ref_words,
        "ref_chars": ref_chars,
        "char_errors": char_errors,
        "cer": char_errors / ref_chars,
        "loops": count_loops(hyp.split()),
        "approximate": approximate,
    }
    if approximate:
        hyp_words = hyp.split()
        start, end = aligned_span(ref.split(), hyp_words)
        trimmed = " ".join(hyp_words[start:end])
        tw = jiwer.process_words(ref, trimmed)
        tc = jiwer.process_characters(ref, trimmed)
        trimmed_errors = tw.substitutions + tw.deletions + tw.insertions
        scores["trimmed_word_errors"] = trimmed_errors
        scores["wer_trimmed"] = trimmed_errors / ref_words
        scores["cer_trimmed"] = (tc.substitutions + tc.deletions + tc.insertions) / ref_chars
    return scores


def sentence_start_errors(
    sentences: Sequence[tuple[float, float]], words: Sequence[tuple[float, float]]
) -> tuple[float | None, ...]:
    """For each reference sentence (start, end), the start of the first hypothesis word (start, end)
    heard in it minus the sentence's start. A word belongs to the sentence whose stretch holds its
    middle, each stretch widened halfway into the pauses on either side; None when no word is in it."""
    if not sentences:
        return ()
    order = sorted(sentences)
    bounds = [-math.inf] + [(a[1] + b[0]) / 2 for a, b in itertools.pairwise(order)] + [math.inf]
    mids = sorted(((w0 + w1) / 2, w0) for w0, w1 in words)
    keys = [m for m, _ in mids]
    errors: list[float | None] = []
    for i, (start, _end) in enumerate(order):
        j = bisect.bisect_left(keys, bounds[i])
        errors.append(round(mids[j][1] - start, 3) if j < len(mids) and keys[j] < bounds[i + 1] else None)
    return tuple(errors)


def start_error_summary(errors: Iterable[float | None]) -> dict[str, Any]:
    """Median and 90th percentile of |error| (s) over the sentences that were heard."""
    values = list(errors)
    heard = np.abs(np.array([e for e in values if e is not None], dtype=float))
    return {
        "sentences": len(values),
        "missed": sum(e is None for e in values),
        "median_abs": round(float(np.median(heard)), 3) if heard.size else None,
        "p90_abs": round(float(np.percentile(heard, 90)), 3) if heard.size else None,
        "mean_signed": round(float(np.mean([e for e in values if e is not None])), 3) if heard.size else None,
    }


def evaluate_asr(
    items: Sequence[EvalItem | tuple[Path, str]],
    spec: TranscriberSpec,
    *,
    dataset: str = "",
    note: str = "",
    language: str | None = None,
    on_item: Callable[[ItemResult], None] | None = None,
) -> AsrReport:
    """Transcribe each item's audio with ``spec`` and score it against its reference.

    ``language``: of the references, for number words and the language-ID share [default: the
    forced spoken language, else guessed from the references' stopwords, else each item's detected
    language (for number words only)]. ``on_item`` is called
    with each item's result as it is done (for progress lines)."""
    _jiwer()  # fail before loading a model
    _alpha2digit()
    evaluated = [i if isinstance(i, EvalItem) else EvalItem(Path(i[0]), str(i[1])) for i in items]
    if not evaluated:
        raise InputError("no items to evaluate")
    expected = language or spec.language or _guess_language(i.reference for i in evaluated)
    for item in evaluated:  # bad audio is one line now, not after a model has loaded
        probe_audio(item.audio)
    load_before = os.getloadavg()[0]
    transcriber = load_transcriber(spec)
    transcriber.resolve()
    clock = time.perf_counter()
    transcriber.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32))  # loads the model
    load_seconds = time.perf_counter() - clock
    results = []
    for item in evaluated:
        samples = decode_audio(item.audio)
        clock, cpu = time.perf_counter(), time.process_time()
        transcript = transcriber.transcribe(samples)
        seconds, cpu = time.perf_counter() - clock, time.process_time() - cpu
        audio_seconds = len(samples) / SAMPLE_RATE
        raw = " ".join(s.text for s in transcript.segments)
        timing = sentence_start_errors(
            item.sentences, [(w.start, w.end) for seg in transcript.segments for w in seg.words]
        )
        result = ItemResult(
            name=item.name,
            audio=str(item.audio),
            audio_seconds=round(audio_seconds, 3),
            transcribe_seconds=round(seconds, 3),
            cpu_seconds=round(cpu, 3),
            rtf=seconds / audio_seconds if audio_seconds else 0.0,
            language=transcript.language,
            raw_hypothesis=raw,
            sentence_start_errors=timing,
            **score_texts(
                item.reference,
                raw,
                expected or transcript.language,
                old_spelling=item.old_spelling,
                approximate=item.approximate,
            ),
        )
        results.append(result)
        if on_item is not None:
            on_item(result)
    audio_total = sum(r.audio_seconds for r in results)
    seconds_total = sum(r.transcribe_seconds for r in results)
    cpu_total = sum(r.cpu_seconds for r in results)
    ref_words = sum(r.ref_words for r in results)
    approximate = [r for r in results if r.approximate]
    trimmed = (
        sum(r.trimmed_word_errors if r.trimmed_word_errors is not None else r.word_errors for r in results) / ref_words
        if approximate
        else None
    )
    languages = Counter(r.language or "?" for r in results)
    return AsrReport(
        dataset=dataset,
        note=note,
        spec={
            "model": spec.model,
            "engine": spec.engine,
            "language": spec.language,
            "compute_type": engine_class(spec.engine).compute_type(spec),
            "decode": {**spec.decode.to_dict(), "beam_size": spec.decode.beams(spec.engine)},
        },
        model_id=transcriber.model_id,
        expected_language=expected,
        items=tuple(results),
        audio_seconds=round(audio_total, 3),
        transcribe_seconds=round(seconds_total, 3),
        cpu_seconds=round(cpu_total, 3),
        cpu_rtf=cpu_total / audio_total if audio_total else 0.0,
        load_seconds=round(load_seconds, 3),
        rtf=seconds_total / audio_total if audio_total else 0.0,
        wer=sum(r.word_errors for r in results) / ref_words,
        cer=sum(r.char_errors for r in results) / sum(r.ref_chars for r in results),
        wer_trimmed=trimmed,
        loops=sum(r.loops for r in results),
        languages=dict(languages.most_common()),
        language_correct=sum(r.language == expected for r in results) if expected else 0,
        peak_rss_mb=round(peak_rss_mb(), 1),
        cpus=_cpus(),
        load_average=(round(load_before, 2), round(os.getloadavg()[0], 2)),
        notice=transcriber.notice,
        sentence_start=(
            start_error_summary(e for r in results for e in r.sentence_start_errors)
            if any(i.sentences for i in evaluated)
            else None
        ),
    )

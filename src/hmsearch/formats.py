"""Read and write transcripts: SRT, WebVTT and Whisper JSON in; JSON, SRT, WebVTT and plain text out.

Readers are lenient about the mess real caption files contain (line endings, encodings, markup, duplicate
cues) but raise a one-line TranscriptFormatError naming the file and line for anything that is not a transcript.
Segment text is always stored stripped with whitespace collapsed; writers add what each format needs.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Any, NoReturn

from .config import TRANSCRIPT_FORMATS
from .errors import InputError, TranscriptFormatError
from .fsutil import atomic_write, read_limited
from .types import Segment, Transcript, Word

__all__ = [
    "FORMATS",
    "TRANSCRIPT_SUFFIXES",
    "format_json",
    "format_srt",
    "format_timestamp",
    "format_txt",
    "format_vtt",
    "parse_srt",
    "parse_vtt",
    "parse_whisper_json",
    "read_transcript",
    "read_transcript_bytes",
    "write_transcript",
]

TRANSCRIPT_SUFFIXES = (".json", ".srt", ".vtt")
FORMATS = TRANSCRIPT_FORMATS

# One cue: a timing line ("[H:]MM:SS[.,]mmm --> ... [settings]") then its text lines up to a blank line.
# A text line that starts with a digit and holds "-->" is a timing line, so a missing blank line between
# cues still splits them (and a broken timing line is caught between cues rather than read as text).
_TIME = r"(\d+:\d+(?::\d+)?(?:[.,]\d+)?)"
_CUE_RE = re.compile(
    rf"^[ \t]*{_TIME}[ \t]*-->[ \t]*{_TIME}([^\n]*)(?:\n|\Z)((?:(?![ \t]*\d[^\n]*-->)[ \t]*\S[^\n]*(?:\n|\Z))*)",
    re.MULTILINE,
)
# A line that was meant to be a timing line but did not parse (checked only outside matched cues).
# (Tested by _timeish, not a regex: "1\S*[ \t]*-+>" backtracks quadratically over a run of dashes.)
# The voice tag's name stops at the next "<" as well as at ">": with "[ \t]+([^>]*)" a long run of
# spaces, or many unclosed "<v " tags, cost quadratic time (issue 12, finding 10).
_VOICE_RE = re.compile(r"<v(?:\.[^\s<>]*)?(?:[ \t]([^<>]*))?>")
# WebVTT and SRT markup (<i>, </c>, <c.color>, <v Name>, <font ...>, <lang en>, <br/>) and inline timestamps
# (<00:00:01.000>). Other <words> are text: "<everyone>" or "<laughs>" survive.
_TAG_RE = re.compile(r"</?(?:[ibus]|c|v|lang|ruby|rt|font|span)\b[^<>]*>|<\d[\d:.]*>", re.IGNORECASE)
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
# Only entities closed by ";": html.unescape alone would also turn a stray "&copy2" or "&notes" into symbols.
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_SSA_RE = re.compile(r"\{\\[^{}]*\}")  # SRT position/style codes such as {\an8}
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f\ufffd]")
_VTT_BLOCK_KEYWORDS = ("NOTE", "STYLE", "REGION")
# A repeat of the previous text that starts at its end and lasts at most this long is not new speech
# (YouTube captions add 10 ms "hold" cues between rolling lines).
_HOLD_CUE = 0.05
# Limits on what a reader accepts: a transcript file beyond this size is not a podcast episode's
# (a 10-hour Whisper JSON with word times is ~10 MB), and a time beyond 1000 hours is no cue time.
MAX_TRANSCRIPT_BYTES = 64 << 20
MAX_CUE_SECONDS = 1000 * 3600.0
# A start a little below zero is a rounding slip of the tool that wrote it: read as 0.
_NEGATIVE_SLIP = -1.0

_Cue = tuple[float, float, str, str | None, tuple[Word, ...]]  # start, end, text, speaker, words


def _fail(name: str, problem: str, line: int | None = None) -> TranscriptFormatError:
    """Build the one-line error every reader raises: "<file>: line N: <problem>"."""
    where = f"{name}: line {line}: " if line is not None else f"{name}: "
    return TranscriptFormatError((where + problem).replace("\n", " ").replace("\r", " "))


def _snip(s: str, limit: int = 40) -> str:
    """Quote a piece of input for an error message, shortened and on one line."""
    s = s.strip()
    return repr(s if len(s) <= limit else s[:limit] + "...")


def _timeish(line: str) -> bool:
    """Whether a stripped line was meant as a timing line: a digit, the rest of its first word,
    optional blanks, dashes, ">" (the old regex's rule, in linear time)."""
    if not line[:1].isdigit():
        return False
    token = line.split(None, 1)[0]
    if "->" in token:
        return True
    rest = line[len(token) :].lstrip(" \t")
    return rest.startswith("-") and rest.lstrip("-").startswith(">")


def _safe_text(s: str) -> str:
    """Text with lone surrogates (a JSON "\\ud800" escape, a non-UTF-8 file name) replaced, so that
    everything downstream can write it as UTF-8."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "replace").decode("utf-8")
    return s


def _line_of(text: str, pos: int) -> int:
    """1-based line number of a character offset (only used when raising)."""
    return text.count("\n", 0, pos) + 1


# --------------------------------------------------------------------------- reading


def _decode(data: bytes, name: str) -> str:
    """Bytes to text: BOM-marked UTF-8/UTF-16, else UTF-8, else cp1252, else latin-1 (which never fails)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise _fail(name, f"not valid UTF-16 text at byte {e.start}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Mostly-valid UTF-8 with a few broken bytes (e.g. files joined together) stays UTF-8 with U+FFFD;
    # otherwise it is a legacy 8-bit file: cp1252 (Windows captions), or latin-1 for cp1252's 5 holes.
    lenient = data.decode("utf-8", errors="replace")
    if len(_NON_ASCII_RE.findall(lenient)) > 2 * lenient.count("\ufffd"):
        return lenient
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _normalize(text: str, name: str) -> str:
    """Unify line endings (CRLF, lone CR), drop a BOM, and refuse binary data."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    nul = text.find("\x00")
    if nul >= 0:
        raise _fail(name, "binary data (NUL byte), not a text transcript", _line_of(text, nul))
    return text


def read_transcript(path: Path) -> Transcript:
    """Read a .json (Whisper), .srt or .vtt file, picking the parser by suffix (and a WEBVTT header)."""
    path = Path(path)
    name = str(path)
    suffix = path.suffix.lower()
    if suffix not in TRANSCRIPT_SUFFIXES:
        if not path.exists():
            raise InputError(f"{name}: no such file")
        raise TranscriptFormatError(
            f"{name}: unsupported transcript type {suffix or '(no suffix)'!r}; expected .json, .srt or .vtt"
        )
    try:
        size = path.stat().st_size
        if size > MAX_TRANSCRIPT_BYTES:
            raise TranscriptFormatError(
                f"{name}: too large for a transcript ({size >> 20} MB; the limit is {MAX_TRANSCRIPT_BYTES >> 20} MB)"
            )
        data = read_limited(path, MAX_TRANSCRIPT_BYTES)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a transcript file") from None
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror or e}") from None
    return read_transcript_bytes(data, suffix, name=name)


def read_transcript_bytes(data: bytes, suffix: str, *, name: str = "<transcript>") -> Transcript:
    """Read a transcript's bytes as ``read_transcript`` reads a file of that suffix (".json",
    ".srt", ".vtt"): a Transcript or one TranscriptFormatError (the fuzz target's entry point)."""
    suffix = suffix.lower()
    if suffix not in TRANSCRIPT_SUFFIXES:
        raise TranscriptFormatError(f"{name}: unsupported transcript type {suffix!r}; expected .json, .srt or .vtt")
    if len(data) > MAX_TRANSCRIPT_BYTES:
        raise TranscriptFormatError(f"{name}: too large for a transcript ({len(data) >> 20} MB)")
    text = _decode(data, name)
    if not text.lstrip("\ufeff").strip():
        raise TranscriptFormatError(f"{name}: empty file")
    if suffix == ".json":
        text = _normalize(text, name)
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise _fail(name, f"not valid JSON ({e.msg})", e.lineno) from None
        except RecursionError:
            raise _fail(name, "not a transcript: JSON nested too deeply") from None
        except ValueError as e:  # a number of thousands of digits
            raise _fail(name, f"not a transcript: {str(e)[:80]}") from None
        transcript = parse_whisper_json(obj, name=name)
    elif suffix == ".vtt" or text.lstrip("\ufeff \t\r\n").startswith("WEBVTT"):
        transcript = parse_vtt(text, name=name)
    else:
        transcript = parse_srt(text, name=name)
    if not transcript.segments:
        raise TranscriptFormatError(f"{name}: no cues found")
    return transcript


def parse_srt(text: str, *, name: str = "<srt>") -> Transcript:
    """Parse SubRip text; cue numbers may be missing or out of sequence, dot milliseconds are accepted."""
    cues, _ = _parse_cues(text, name, vtt=False)
    return Transcript(segments=_finish(cues), source="srt")


def parse_vtt(text: str, *, name: str = "<vtt>") -> Transcript:
    """Parse WebVTT text, including non-strict MM:SS.mmm / H:MM:SS.mmm times and <v Speaker> voice tags."""
    cues, language = _parse_cues(text, name, vtt=True)
    return Transcript(segments=_finish(cues), language=language, source="vtt")


def _secs(stamp: str) -> float | None:
    """A cue time ("MM:SS", "H:MM:SS", with "." or "," and any number of fraction digits) in float
    seconds; None when minutes or seconds are out of range."""
    head, _, frac = stamp.replace(",", ".").partition(".")
    if len(head) > 16:  # hours of thousands of digits: no time (and no int() of them)
        return None
    parts = head.split(":")
    sec = int(parts[-1])
    mins = int(parts[-2])
    if sec >= 60 or (len(parts) == 3 and mins >= 60):
        return None
    whole = sec + mins * 60 + (int(parts[0]) * 3600 if len(parts) == 3 else 0)
    if whole > MAX_CUE_SECONDS:  # beyond any recording
        return None
    return float(f"{whole}.{frac[:9]}") if frac else float(whole)  # exact decimal -> correctly rounded float


def _clean(raw: str) -> tuple[str, str | None]:
    """Cue text to plain text: voice tag becomes the speaker, markup and {\\an8} codes go, entities decode."""
    speaker = None
    if "<" in raw:
        voice = _VOICE_RE.search(raw)
        if voice is not None:
            speaker = " ".join((voice.group(1) or "").split()) or None
        raw = _TAG_RE.sub("", _BR_RE.sub(" ", raw))
    if "{" in raw:
        raw = _SSA_RE.sub("", raw)
    if "&" in raw:
        raw = _ENTITY_RE.sub(_unescape, raw)
    return " ".join(raw.split()), speaker  # joins lines, collapses spaces, turns &nbsp; into a space


def _unescape(m: re.Match[str]) -> str:
    """One HTML entity to its character (unknown names stay as written)."""
    return html.unescape(m.group())


def _parse_cues(text: str, name: str, *, vtt: bool) -> tuple[list[_Cue], str | None]:
    """Single regex pass over the text; only the stretches between cues get closer (slower) inspection."""
    text = _normalize(text, name)
    first = _CUE_RE.search(text)
    language = _leading(text, first.start() if first else len(text), name, vtt=vtt)
    if first is None:
        return [], language
    cues: list[_Cue] = []
    append = cues.append
    no_words: tuple[Word, ...] = ()
    seen: dict[str, float | None] = {}  # stamp -> seconds; a cue's end is often the next one's start
    size = len(text)
    pos = first.start()
    for m in _CUE_RE.finditer(text, pos):
        start, end = m.span()
        if start - pos > 1:  # more than the one blank line that separates cues
            gap = text[pos:start]
            if not gap.isspace() and not gap.strip().isdigit():
                _gap(text, pos, start, name, vtt=vtt, cues=cues, before_cue=True)
        pos = end
        a, b, settings, raw = m.groups()
        t0 = seen.get(a)
        if t0 is None:
            t0 = seen[a] = _secs(a)
        t1 = seen.get(b)
        if t1 is None:
            t1 = seen[b] = _secs(b)
        if t0 is None or t1 is None or (settings and not settings[0].isspace()):
            _bad_timing(text, start, name, a if t0 is None else b if t1 is None else None)
        if not raw:
            append((t0, t1, "", None, no_words))
            continue
        if end < size and text[end] != "\n" and raw.count("\n") > 1:
            # No blank line before the next timing line: its cue number was read as text.
            head, _, last = raw[:-1].rpartition("\n")
            if last.strip().isdigit():
                raw = head
        if "<" in raw or "&" in raw or "{" in raw:
            txt, speaker = _clean(raw)
            append((t0, t1, txt, speaker, no_words))
        else:
            append((t0, t1, " ".join(raw.split()), None, no_words))
    if pos < size and not text[pos:].isspace():
        _gap(text, pos, size, name, vtt=vtt, cues=cues, before_cue=False)
    return cues, language


def _bad_timing(text: str, start: int, name: str, stamp: str | None) -> NoReturn:
    """Raise for the timing line at ``start``: an out-of-range time, or junk glued to the end time."""
    if stamp is not None:
        raise _fail(name, f"bad cue time {_snip(stamp)}", _line_of(text, start))
    line_end = text.find("\n", start)
    line = text[start : line_end if line_end >= 0 else len(text)]
    raise _fail(name, f"bad cue time line {_snip(line)}", _line_of(text, start))


def _leading(text: str, end: int, name: str, *, vtt: bool) -> str | None:
    """Check what precedes the first cue (or a cue-less file): the WEBVTT header, whose Language: line is
    returned, then NOTE/STYLE/REGION blocks and a cue id/number. Anything else means it is no transcript."""
    before_cue = end < len(text)
    lines = text[:end].split("\n")
    idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if idx is None:
        return None
    language = None
    rest = idx
    if lines[idx].strip().startswith("WEBVTT"):
        if not vtt:
            raise _fail(name, "a WebVTT file, not SRT", idx + 1)
        rest = idx + 1
        while rest < len(lines) and lines[rest].strip():
            key, sep, value = lines[rest].partition(":")
            if sep and key.strip().lower() == "language" and value.strip():
                language = value.strip()
            rest += 1
    offset = sum(len(ln) + 1 for ln in lines[:rest])
    if offset < end:
        what = (
            "a WebVTT file (no 'WEBVTT' header)"
            if vtt and rest == idx
            else ("an SRT file (expected a cue number or time)" if not vtt else "")
        )
        _gap(text, offset, end, name, vtt=vtt, cues=[], before_cue=before_cue, not_a=what)
    return language


def _gap(
    text: str, start: int, end: int, name: str, *, vtt: bool, cues: list[_Cue], before_cue: bool, not_a: str = ""
) -> None:
    """Inspect non-blank text between cues: skip NOTE/STYLE/REGION blocks and cue ids, reject broken timing
    lines, and append stray text (from a blank line inside a cue) to the previous cue."""
    lines = text[start:end].split("\n")
    if before_cue:
        lines.pop()  # the empty remainder after the newline that ends the gap
        if lines and lines[-1].strip():
            lines.pop()  # the cue identifier / SRT number directly above the timing line
    orphan: list[tuple[int, str]] = []
    skipping = False
    prev_blank = True
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            prev_blank = True
            skipping = False
            continue
        if prev_blank and vtt and s.split(None, 1)[0] in _VTT_BLOCK_KEYWORDS:
            skipping = True
        prev_blank = False
        if skipping:
            continue
        if _timeish(s):
            raise _fail(name, f"bad cue time line {_snip(s)}", _line_of(text, start) + i)
        if s.isdigit():
            continue  # an SRT cue number (or numeric id) with a blank line before its timing line
        orphan.append((i, s))
    if not orphan:
        return
    if not cues:
        problem = f"not {not_a}" if not_a else "text outside any cue"
        raise _fail(name, f"{problem}; found {_snip(orphan[0][1])}", _line_of(text, start) + orphan[0][0])
    t0, t1, txt, speaker, words = cues[-1]
    extra, extra_speaker = _clean(" ".join(s for _, s in orphan))
    cues[-1] = (t0, t1, f"{txt} {extra}".strip(), speaker or extra_speaker, words)


def _finish(cues: list[_Cue]) -> tuple[Segment, ...]:
    """Drop blank cues, sort by start, clamp end < start, and merge exact repeats: same text and speaker with
    the same start or an overlapping time, or a short "hold" cue right after (YouTube captions, Whisper loops)."""
    starts = [c[0] for c in cues]
    if starts != sorted(starts):
        cues = sorted(cues, key=lambda c: c[0])  # stable: equal starts keep file order
    out: list[_Cue] = []
    last: dict[tuple[str, str | None], int] = {}  # (text, speaker) -> index in out of its latest cue
    for cue in cues:
        t0, t1, txt, speaker, words = cue
        if not txt:
            continue
        if t1 < t0:
            cue = (t0, t0, txt, speaker, words)
            t1 = t0
        key = (txt, speaker)
        j = last.get(key)
        if j is not None:
            k0, k1, *rest = out[j]
            if t0 < k1 or t0 == k0 or (t0 == k1 and t1 - t0 <= _HOLD_CUE):
                if t1 > k1:
                    out[j] = (k0, t1, *rest)  # type: ignore[assignment]
                continue
        last[key] = len(out)
        out.append(cue)
    return tuple([Segment(t0, t1, txt, words, speaker) for t0, t1, txt, speaker, words in out])


# --------------------------------------------------------------------------- Whisper JSON


def _num(value: Any, name: str, where: str) -> float:
    """A finite JSON number (bools and strings rejected) as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(name, f"{where}: expected a number, got {_snip(json.dumps(value))}")
    return float(value)


def _time(value: Any, name: str, where: str) -> float:
    """A cue or word time: a number of seconds from 0 (a slip just below 0 reads as 0) to a week."""
    t = _num(value, name, where)
    if t < 0:
        if t < _NEGATIVE_SLIP:
            raise _fail(name, f"{where}: negative time {t:g}")
        return 0.0
    if t > MAX_CUE_SECONDS:
        raise _fail(name, f"{where}: time {t:g} s is beyond {MAX_CUE_SECONDS / 3600:.0f} hours")
    return t


def parse_whisper_json(obj: Any, *, name: str = "<json>") -> Transcript:
    """Parse openai-whisper's transcribe() result (or our own to_dict output, or a bare segment list).

    Words missing times (as WhisperX leaves numerals) inherit their neighbour's time; ``score`` is read
    as the probability when ``probability`` is absent.
    """
    segments: Any
    if isinstance(obj, list):
        segments, obj = obj, {}
    elif isinstance(obj, dict):
        segments = obj.get("segments")
        if not isinstance(segments, list):
            raise _fail(name, "expected a 'segments' list (Whisper JSON)")
    else:
        raise _fail(name, f"expected a JSON object with 'segments', got {type(obj).__name__}")
    language = obj.get("language")
    if language is not None and not isinstance(language, str):
        raise _fail(name, f"language: expected a string, got {_snip(json.dumps(language))}")
    source = obj.get("source")
    if not isinstance(source, str) or not source:
        source = "whisper-json"
    duration = obj.get("duration")
    duration = None if duration is None else _time(duration, name, "duration")
    cues: list[_Cue] = []
    for i, seg in enumerate(segments):
        where = f"segments[{i}]"
        if not isinstance(seg, dict):
            raise _fail(name, f"{where}: expected an object, got {type(seg).__name__}")
        if "start" not in seg or "end" not in seg:
            raise _fail(name, f"{where}: missing 'start' or 'end'")
        t0 = _time(seg["start"], name, where + ".start")
        t1 = _time(seg["end"], name, where + ".end")
        words = _words(seg.get("words"), name, where, t0)
        text = seg.get("text")
        if text is None:
            text = "".join(w.text for w in words)
        if not isinstance(text, str):
            raise _fail(name, f"{where}.text: expected a string, got {_snip(json.dumps(text))}")
        speaker = seg.get("speaker")
        if speaker is not None and not isinstance(speaker, str):
            raise _fail(name, f"{where}.speaker: expected a string, got {_snip(json.dumps(speaker))}")
        speaker = _safe_text(speaker) if speaker else None
        cues.append((t0, t1, " ".join(_safe_text(text).split()), speaker, words))
    language = _safe_text(language) if language else None
    return Transcript(segments=_finish(cues), language=language, source=_safe_text(source), duration=duration)


def _words(raw: Any, name: str, where: str, seg_start: float) -> tuple[Word, ...]:
    """Validate a segment's word list; a missing or null list is no words."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(name, f"{where}.words: expected a list, got {type(raw).__name__}")
    words: list[Word] = []
    prev_end = seg_start
    for k, w in enumerate(raw):
        wwhere = f"{where}.words[{k}]"
        if not isinstance(w, dict):
            raise _fail(name, f"{wwhere}: expected an object, got {type(w).__name__}")
        text = w.get("word", w.get("text"))
        if not isinstance(text, str):
            raise _fail(name, f"{wwhere}.word: expected a string, got {_snip(json.dumps(text))}")
        start = prev_end if w.get("start") is None else _time(w["start"], name, wwhere + ".start")
        end = start if w.get("end") is None else _time(w["end"], name, wwhere + ".end")
        prob = w.get("probability", w.get("score"))
        prob = None if prob is None else _num(prob, name, wwhere + ".probability")
        words.append(Word(start=start, end=max(end, start), text=_safe_text(text), probability=prob))
        prev_end = max(end, start)
    return tuple(words)


# --------------------------------------------------------------------------- writing


def format_timestamp(seconds: float, *, decimal_marker: str | None = None) -> str:
    """HH:MM:SS, floored to the second (a jump to it lands before the first word); with a
    ``decimal_marker`` HH:MM:SS<marker>mmm, rounded to the millisecond (SRT ",", WebVTT ".")."""
    if decimal_marker is None:
        s = int(max(0.0, seconds))
        return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
    ms = max(0, round(seconds * 1000))
    s, ms = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal_marker}{ms:03d}"


def _stamp(seconds: float, sep: str) -> str:
    return format_timestamp(seconds, decimal_marker=sep)


def format_srt(t: Transcript) -> str:
    """SubRip: numbered cues, comma milliseconds. SRT has no speaker syntax, so speakers are not written."""
    parts = []
    n = 0
    for seg in t.segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        n += 1
        parts.append(f"{n}\n{_stamp(seg.start, ',')} --> {_stamp(seg.end, ',')}\n{text}\n")
    return "\n".join(parts)


def format_vtt(t: Transcript) -> str:
    """WebVTT with a Language: header when known, <v Speaker> voice tags, and & < > escaped."""
    head = "WEBVTT\n" + (f"Language: {t.language}\n" if t.language else "")
    parts = [head]
    for seg in t.segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if seg.speaker:
            speaker = " ".join(seg.speaker.replace(">", "").replace("<", "").split())
            text = f"<v {speaker}>{text}"
        parts.append(f"{_stamp(seg.start, '.')} --> {_stamp(seg.end, '.')}\n{text}\n")
    return "\n".join(parts)


def format_txt(t: Transcript) -> str:
    """Show-notes text: one "[HH:MM:SS] text" line per segment, "Speaker: " added when the speaker changes."""
    lines = []
    speaker = None
    for seg in t.segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        stamp = f"[{format_timestamp(seg.start)}]"
        if seg.speaker and seg.speaker != speaker:
            text = f"{seg.speaker}: {text}"
        speaker = seg.speaker
        lines.append(f"{stamp} {text}\n")
    return "".join(lines)


def format_json(t: Transcript) -> str:
    """Whisper-compatible JSON (Transcript.to_dict), UTF-8 kept readable, one trailing newline."""
    return json.dumps(t.to_dict(), ensure_ascii=False) + "\n"


_WRITERS = {"json": format_json, "srt": format_srt, "vtt": format_vtt, "txt": format_txt}


def write_transcript(t: Transcript, path: Path, format_: str) -> None:
    """Write ``t`` as one of FORMATS atomically: temp file in the same folder, fsync, then os.replace."""
    writer = _WRITERS.get(format_)
    if writer is None:
        raise InputError(f"unknown transcript format {format_!r}; expected one of {', '.join(FORMATS)}")
    path = Path(path)
    try:
        atomic_write(path, writer(t).encode("utf-8"), make_parents=False)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror or e}") from None

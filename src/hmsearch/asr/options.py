"""Decoding options for both Whisper engines, and Whisper's languages without importing torch.

One dataclass says how to decode; each engine maps it to its own keyword names. ``LANGUAGES`` is
openai-whisper's table (whisper/tokenizer.py), kept here as data because importing ``whisper``
imports torch (a test checks the two agree), so ``--language`` stays cheap with either engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InputError

_LANGUAGE_TABLE = """
    en=english zh=chinese de=german es=spanish ru=russian ko=korean fr=french ja=japanese
    pt=portuguese tr=turkish pl=polish ca=catalan nl=dutch ar=arabic sv=swedish it=italian
    id=indonesian hi=hindi fi=finnish vi=vietnamese he=hebrew uk=ukrainian el=greek ms=malay
    cs=czech ro=romanian da=danish hu=hungarian ta=tamil no=norwegian th=thai ur=urdu
    hr=croatian bg=bulgarian lt=lithuanian la=latin mi=maori ml=malayalam cy=welsh sk=slovak
    te=telugu fa=persian lv=latvian bn=bengali sr=serbian az=azerbaijani sl=slovenian kn=kannada
    et=estonian mk=macedonian br=breton eu=basque is=icelandic hy=armenian ne=nepali
    mn=mongolian bs=bosnian kk=kazakh sq=albanian sw=swahili gl=galician mr=marathi pa=punjabi
    si=sinhala km=khmer sn=shona yo=yoruba so=somali af=afrikaans oc=occitan ka=georgian
    be=belarusian tg=tajik sd=sindhi gu=gujarati am=amharic yi=yiddish lo=lao uz=uzbek
    fo=faroese ht=haitian_creole ps=pashto tk=turkmen nn=nynorsk mt=maltese sa=sanskrit
    lb=luxembourgish my=myanmar bo=tibetan tl=tagalog mg=malagasy as=assamese tt=tatar
    haw=hawaiian ln=lingala ha=hausa ba=bashkir jw=javanese su=sundanese yue=cantonese
"""
# Whisper's code -> English name ("da" -> "danish"), in Whisper's token order.
# (Names with a space are written with "_" in the table.)
LANGUAGES: dict[str, str] = {
    code: name.replace("_", " ") for code, name in (item.split("=", 1) for item in _LANGUAGE_TABLE.split())
}
_ALIASES = {
    "burmese": "my",
    "valencian": "ca",
    "flemish": "nl",
    "haitian": "ht",
    "letzeburgesch": "lb",
    "pushto": "ps",
    "panjabi": "pa",
    "moldavian": "ro",
    "moldovan": "ro",
    "sinhalese": "si",
    "castilian": "es",
    "mandarin": "zh",
}
TO_LANGUAGE_CODE: dict[str, str] = {**{name: code for code, name in LANGUAGES.items()}, **_ALIASES}


def language_code(value: str | None) -> str | None:
    """A language code Whisper knows for a code or English name ("da", "Danish"); None = detect."""
    if value in (None, "", "auto"):
        return None
    code = str(value).lower()
    code = TO_LANGUAGE_CODE.get(code, code)
    if code not in LANGUAGES:
        raise InputError(f"unknown language '{value}': use a code such as da or en, or auto")
    return code


FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
DEFAULT_BEAMS = {"openai": 1, "faster-whisper": 5}  # see DecodeOptions


@dataclass(frozen=True)
class DecodeOptions:
    """How Whisper decodes, the same for both engines.

    The defaults come from ``hmsearch eval-asr`` on real Danish speech (README, "Transcription
    accuracy"), not from habit:
    - beam_size None = the engine's own best: 5 in faster-whisper (NST read speech WER 59 -> 48 %
      with base, at no measurable extra CPU: CTranslate2 decodes the beams as one batch), 1 with
      temperature fallback in openai-whisper (its ``transcribe()`` default: there five beams cost
      about 5x the decoding CPU, ~40 s against ~7 s on one 6.5 s NST clip, because its Python
      decoding loop pays per beam and every fallback temperature is decoded at that width);
    - condition_on_previous_text=False stops one hallucinated window from seeding the next (the
      classic repetition loop): conditioning gained nothing on the LibriVox readings and
      hallucinated 39 words after one outro;
    - vad_filter=True (faster-whisper only: its bundled Silero VAD; openai-whisper has none):
      LibriVox WER 44.1 -> 42.4 %, and silence is not decoded at all;
    - compression_ratio_threshold / logprob_threshold send repetitive or unsure windows to a
      higher temperature, no_speech_threshold drops silent ones, and
      hallucination_silence_threshold skips long silences in which text was hallucinated (needs
      word timestamps, which we always compute).
    ``greedy`` decodes once at temperature 0 with one beam (fast; no fallback when a window looks
    like a loop).
    """

    greedy: bool = False
    condition_on_previous_text: bool = False
    compression_ratio_threshold: float = 2.4
    logprob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    hallucination_silence_threshold: float = 2.0
    beam_size: int | None = None  # None: DEFAULT_BEAMS of the engine
    vad_filter: bool = True  # faster-whisper only (Silero VAD)

    def beams(self, engine: str) -> int:
        """The beam width ``engine`` decodes with: one when greedy, else as set, else its default."""
        if self.greedy:
            return 1
        return max(1, self.beam_size) if self.beam_size is not None else DEFAULT_BEAMS[engine]

    @property
    def temperatures(self) -> tuple[float, ...]:
        return (0.0,) if self.greedy else FALLBACK_TEMPERATURES

    def anti_loop(self) -> dict[str, Any]:
        """The anti-loop settings under openai-whisper's names."""
        return {
            "condition_on_previous_text": self.condition_on_previous_text,
            "compression_ratio_threshold": self.compression_ratio_threshold,
            "logprob_threshold": self.logprob_threshold,
            "no_speech_threshold": self.no_speech_threshold,
            "hallucination_silence_threshold": self.hallucination_silence_threshold,
        }

    def openai_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``whisper.transcribe``."""
        temperature: float | tuple[float, ...] = 0.0 if self.greedy else self.temperatures
        beams = self.beams("openai")
        extra = {"beam_size": beams} if beams > 1 else {}
        return {"temperature": temperature, **self.anti_loop(), **extra}

    def faster_whisper_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of faster-whisper's ``WhisperModel.transcribe`` (its own names; it
        defaults to best of 5 samples at a raised temperature, openai-whisper's to one: matched)."""
        loop = self.anti_loop()
        loop["log_prob_threshold"] = loop.pop("logprob_threshold")
        temperature: float | list[float] = 0.0 if self.greedy else list(self.temperatures)
        return {
            "temperature": temperature,
            "beam_size": self.beams("faster-whisper"),
            "best_of": 1,
            "vad_filter": self.vad_filter,
            **loop,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

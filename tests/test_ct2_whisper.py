"""The optional faster-whisper (CTranslate2) engine: offline conversion of an openai-whisper checkpoint,
a tokenizer with Whisper's exact ids, transcription to a Transcript, and fast offline errors.

Skipped when faster-whisper is not installed. The model is the session's tiny random Whisper
(conftest.tiny_whisper), converted here: it proves conversion, decoding, timestamps and plumbing,
not accuracy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, espeak

pytest.importorskip("faster_whisper")
pytest.importorskip("ctranslate2")

from hmsearch.asr import DecodeOptions
from hmsearch.asr import convert as ct2_convert
from hmsearch.asr import ctranslate2 as ct2_whisper
from hmsearch.errors import ModelUnavailableError

SRC = REPO / "src"


@pytest.fixture(scope="module")
def ct2_dirs(tiny_whisper: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny random checkpoint converted twice: float32 (exactness checks) and int8 (the default)."""
    base = tmp_path_factory.mktemp("ct2")
    return {q: ct2_convert.convert_openai_checkpoint(tiny_whisper, base / q, q) for q in ("float32", "int8")}


def _run(code: str, env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(PYTHONPATH=str(SRC), **env_extra)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_import_is_lazy(tmp_path: Path) -> None:
    proc = _run(
        "import sys, hmsearch, hmsearch.asr, hmsearch.asr.ctranslate2, hmsearch.asr.convert\n"
        "print(sorted(m for m in ('ctranslate2', 'faster_whisper', 'torch', 'transformers', 'whisper') "
        "if m in sys.modules))",
        {},
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("n_vocab", [51865, 51866, 51864])  # multilingual, large-v3 (100 languages), .en
def test_tokenizer_ids_equal_openai_whisper(n_vocab: int) -> None:
    from whisper.tokenizer import get_tokenizer

    multilingual = n_vocab >= 51865
    ours = ct2_convert.build_tokenizer(n_vocab)
    theirs = get_tokenizer(multilingual, num_languages=n_vocab - 51765 - int(multilingual))
    assert ours.get_vocab_size(with_added_tokens=True) == theirs.encoding.n_vocab == n_vocab
    for token, i in theirs.encoding._special_tokens.items():
        assert ours.token_to_id(token) == i, token
    texts = [
        " Hej og velkommen til podcasten. I dag taler vi om markedsføringen på Århus Rådhus!",
        "Rødgrød med fløde, æbleskiver & ØL — 1.234,56 kr.",
        "It's 2024: we've seen 3.14159 things.",
        "  spaces   and\nnewlines\t",
        "emoji 😀 日本語 ß ü",
    ]
    for text in texts:
        ids = theirs.encode(text)
        assert ours.encode(text, add_special_tokens=False).ids == ids, text
        assert ours.decode(ids) == theirs.decode(ids) == text
    if multilingual:
        assert [ours.token_to_id(t) for t in ("<|startoftranscript|>", "<|da|>", "<|transcribe|>")] == list(
            get_tokenizer(True, language="da", task="transcribe", num_languages=n_vocab - 51766).sot_sequence
        )


def test_conversion_is_exact_in_float32(tiny_whisper: Path, ct2_dirs: dict[str, Path]) -> None:
    """The mapped weights compute what openai-whisper computes: encoder output and language scores."""
    import ctranslate2
    import torch
    import whisper

    ref = whisper.load_model(str(tiny_whisper), device="cpu")
    rng = np.random.default_rng(0)
    samples = (0.1 * rng.standard_normal(16_000 * 3)).astype(np.float32)
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(samples), 80)[None]
    with torch.no_grad():
        enc_ref = ref.encoder(mel).numpy()
        _, probs = ref.detect_language(mel)
    model = ctranslate2.models.Whisper(str(ct2_dirs["float32"]), device="cpu", compute_type="float32", intra_threads=2)
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.numpy()))
    enc = np.array(model.encode(features, to_cpu=True))
    assert enc.shape == enc_ref.shape
    assert np.abs(enc - enc_ref).max() <= 1e-4 * np.abs(enc_ref).max()
    ct2_probs = {tok.strip("<|>"): p for tok, p in model.detect_language(features)[0]}
    top = sorted(probs[0], key=probs[0].get, reverse=True)[:5]
    assert [round(ct2_probs[lang], 4) for lang in top] == [round(probs[0][lang], 4) for lang in top]

    config = json.loads((ct2_dirs["int8"] / "config.json").read_text())
    assert config["alignment_heads"] == [[0, 0]]  # openai-whisper's default: second half of the layers
    assert (ct2_dirs["int8"] / "model.bin").stat().st_size < (ct2_dirs["float32"] / "model.bin").stat().st_size


@pytest.mark.parametrize("greedy", [True, False])
def test_transcribe_danish_speech(ct2_dirs: dict[str, Path], tmp_path: Path, greedy: bool) -> None:
    from hmsearch.audio import decode_audio

    wav = espeak(
        "Hej og velkommen til podcasten. I dag taler vi om markedsføring og gode tekster.", tmp_path / "da.wav"
    )
    samples = decode_audio(wav)
    duration = len(samples) / 16_000
    spec = ct2_whisper.resolve(str(ct2_dirs["int8"]))
    assert spec.model_id.startswith("dir:") and spec.model_id.endswith("@int8")
    model = ct2_whisper.load(spec)
    transcript = ct2_whisper.transcribe_samples(
        model, samples, language=None, decode=DecodeOptions(greedy=greedy), model_id=spec.model_id
    )

    assert transcript.source == f"faster-whisper:{spec.model_id}"
    assert transcript.duration == pytest.approx(duration)
    assert transcript.language  # detected (random weights: any language)
    assert transcript.segments, "the seeded tiny model emits text for this clip"
    previous_end = 0.0
    for seg in transcript.segments:
        assert seg.text == seg.text.strip() and seg.text
        assert previous_end - 1e-6 <= seg.start <= seg.end <= duration + 1e-6
        previous_end = seg.end
        assert seg.words
        for word in seg.words:
            assert seg.start - 1e-6 <= word.start <= word.end <= seg.end + 1e-6
            assert word.text.strip()
            assert word.probability is None or 0.0 <= word.probability <= 1.0
    assert transcript.to_dict()["segments"][0]["words"]


@pytest.mark.parametrize(
    "env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}], ids=["HF_HUB_OFFLINE", "unreachable-hub"]
)
def test_uncached_size_name_fails_fast_in_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    code = (
        "import time; t = time.time()\n"
        "from hmsearch.asr import ctranslate2 as ct2_whisper\n"
        "from hmsearch.errors import ModelUnavailableError\n"
        "try:\n    ct2_whisper.resolve('small')\n"
        "except ModelUnavailableError as exc:\n    print(repr(str(exc))); print(time.time() - t)\n"
    )
    start = time.monotonic()
    proc = _run(code, {"HF_HOME": str(tmp_path / "hf"), **env}, tmp_path)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    message_repr, seconds = proc.stdout.strip().splitlines()
    message = eval(message_repr)
    assert "\n" not in message
    assert "'small'" in message and "Hugging Face cache" in message and "CTranslate2 model directory" in message
    # Not a speed figure: the hub client's own retries would hang for over a minute; 30 s leaves
    # room for a loaded machine.
    assert float(seconds) < 30 and elapsed < 30


def test_cached_hub_model_resolves_without_network(ct2_dirs: dict[str, Path], tmp_path: Path) -> None:
    """A size name found in the Hugging Face cache loads from there, with the hub unreachable."""
    repo = tmp_path / "hf" / "hub" / "models--Systran--faster-whisper-tiny"
    snapshot = repo / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    for f in ct2_dirs["int8"].iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    code = (
        "from hmsearch.asr import ctranslate2 as ct2_whisper\n"
        "spec = ct2_whisper.resolve('tiny')\n"
        "model = ct2_whisper.load(spec)\n"
        "print(spec.load_arg); print(spec.model_id)\n"
    )
    proc = _run(code, {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": "http://127.0.0.1:9"}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(snapshot), "tiny@int8"]


def test_local_path_errors(tiny_whisper: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="convert it with"):
        ct2_whisper.resolve(str(tiny_whisper))  # a .pt file, not a CTranslate2 directory
    with pytest.raises(ModelUnavailableError, match="no model.bin"):
        ct2_whisper.resolve(str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="no such CTranslate2 model directory"):
        ct2_whisper.resolve(str(tmp_path / "missing" / "model"))
    with pytest.raises(ModelUnavailableError, match="unknown faster-whisper model"):
        ct2_whisper.resolve("huge-v9")


def test_cli_indexes_and_transcribes_with_the_faster_whisper_engine(
    ct2_dirs: dict[str, Path], cli, hermetic: Path
) -> None:
    """`--whisper-engine faster-whisper` end to end: a converted model folder transcribes new
    audio into the index, the transcript store keeps it apart from openai-whisper's."""
    audio = hermetic / "audio"
    audio.mkdir()
    espeak("Velkommen til podcasten. I dag taler vi om salg på sociale medier.", audio / "ep1.wav")
    model = str(ct2_dirs["int8"])
    res = cli(
        "index",
        str(audio),
        "--whisper-engine",
        "faster-whisper",
        "--whisper-model",
        model,
        "--language",
        "da",
        "--greedy",
        "--json",
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["added"] == ["ep1"]
    stored = list((hermetic / "index" / "transcripts").glob("*-fw_dir_*.json"))
    assert len(stored) == 1
    res = cli("episodes", "--json")
    assert json.loads(res.stdout)[0]["transcript_source"].startswith("faster-whisper:dir:")
    res = cli(
        "transcribe",
        str(audio / "ep1.wav"),
        "--whisper-engine",
        "faster-whisper",
        "--whisper-model",
        model,
        "--language",
        "da",
        "--greedy",
        "--format",
        "json",
        "--out-dir",
        str(hermetic / "out"),
    )
    assert res.exit_code == 0, res.output
    assert (hermetic / "out" / "ep1.json").is_file()
    res = cli(
        "transcribe",
        str(audio / "ep1.wav"),
        "--whisper-engine",
        "faster-whisper",
        "--whisper-model",
        str(hermetic / "nope"),
    )
    assert res.exit_code != 0 and "Traceback" not in res.output

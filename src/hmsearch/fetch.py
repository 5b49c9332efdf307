"""HTTP(S) downloads from servers hmsearch does not trust: feeds, the enclosures and transcripts
they name, and the audio a clip needs.

What a hostile or broken server cannot do here (issue 12): make hmsearch read local files or
speak another protocol (only http and https, redirects included), fill the disk (a size cap,
checked against the promised length and while reading), hold a job forever (an overall deadline
as well as a per-read timeout: a server trickling a byte every few seconds never times out one
read), pass off a web page as audio (content types), or leave a half-written file under its
final name (a ``.<name>.part`` file, resumed with a Range request by the next run, renamed when
whole). Errors are one-line :class:`DownloadError` messages that quote outside text only
shortened and with control characters escaped.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from .config import setting
from .errors import InputError

TIMEOUT = 30.0  # seconds per network read (the whole download has setting download_deadline)
BLOCK = 1 << 16  # bytes read at a time
SCHEMES = ("http", "https")  # what is fetched, redirects included: never file:, ftp: ...
USER_AGENT = "hmsearch/0.1 (+podcast search)"
AUDIO_TYPES = ("audio/", "video/", "application/octet-stream", "binary/octet-stream", "application/ogg")
AUDIO_SUFFIXES = (".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wav", ".flac", ".mp4")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class DownloadError(InputError):
    """An enclosure or transcript that could not be downloaded as promised."""


def excerpt(text: object, limit: int = 80) -> str:
    """Text from outside (a server's reason phrase, a URL from a feed) for an error message: at
    most ``limit`` characters, control characters escaped."""
    s = str(text)
    s = s if len(s) <= limit else s[:limit] + "..."
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


def check_url(url: str) -> None:
    """A URL to fetch must be http(s): a remote feed must not make hmsearch read local files
    (file://) or speak other protocols (issue 12, finding 1)."""
    scheme = urlparse(url).scheme.lower()
    if scheme not in SCHEMES:
        raise DownloadError(f"{excerpt(url, 120)}: not fetched: a feed's URLs must be http or https, not {scheme!r}")


def safe_name(text: str, limit: int = 60) -> str:
    """A file name made from outside text (a title, an episode id): lower-case word characters
    and dashes, at most ``limit`` of them; "episode" when nothing is left."""
    s = re.sub(r"[^\w-]+", "-", text.lower(), flags=re.UNICODE).strip("-")[:limit].strip("-")
    return s or "episode"


class _Budget:
    """The limits of one download: bytes at most and an overall deadline (a server trickling a
    byte every few seconds never times out a single read: issue 12, finding 11). ``hint``: the
    setting that sets the size limit, named in the error."""

    def __init__(
        self,
        url: str,
        max_bytes: int,
        what: str,
        hint: str | None,
        deadline: float | None,
        deadline_setting: str = "download_deadline",
    ) -> None:
        self.url, self.max_bytes, self.what, self.hint = url, max_bytes, what, hint
        self.seconds = float(setting(deadline_setting) if deadline is None else deadline)
        self.deadline_hint = f" (setting {deadline_setting})" if deadline is None else ""
        self.deadline = time.monotonic() + self.seconds
        self._watchdogs: list[threading.Timer] = []

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def watch(self, sock: socket.socket) -> None:
        """Cut ``sock`` off when the deadline passes: a server that trickles its status line and
        headers (each byte within the read timeout) cannot hold a run past it (issue 27, finding 9)."""

        def cut() -> None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), cut)
        timer.daemon = True
        timer.start()
        self._watchdogs.append(timer)

    def close(self) -> None:
        for timer in self._watchdogs:
            timer.cancel()
        self._watchdogs.clear()

    def too_slow(self) -> DownloadError:
        return DownloadError(
            f"{excerpt(self.url, 120)}: {self.what} took longer than {self.seconds:.0f} s; given up{self.deadline_hint}"
        )

    def check(self, size: int) -> None:
        if size > self.max_bytes:
            raise DownloadError(
                f"{excerpt(self.url, 120)}: {self.what} larger than {self.max_bytes >> 20} MB; not downloaded"
                + (f" (setting {self.hint})" if self.hint else "")
            )
        if self.expired():
            raise self.too_slow()


def _budget(
    url: str,
    max_bytes: int | None,
    what: str,
    setting_name: str,
    deadline: float | None,
    deadline_setting: str = "download_deadline",
) -> _Budget:
    if max_bytes is None:
        return _Budget(url, int(setting(setting_name)) << 20, what, setting_name, deadline, deadline_setting)
    return _Budget(url, max_bytes, what, None, deadline, deadline_setting)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only (urllib's own also follows ftp://)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        scheme = urlparse(newurl).scheme.lower()
        if scheme not in SCHEMES:
            raise DownloadError(
                f"{excerpt(req.full_url, 120)}: not fetched: redirected to {excerpt(newurl, 120)}, "
                f"not an http or https URL"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _WatchedHTTP(urllib.request.HTTPHandler):
    def __init__(self, budget: _Budget | None) -> None:
        super().__init__()
        self.budget = budget

    def http_open(self, req: urllib.request.Request) -> Any:
        budget = self.budget

        class Connection(http.client.HTTPConnection):
            def connect(self) -> None:
                super().connect()
                if budget is not None:
                    budget.watch(self.sock)

        return self.do_open(Connection, req)


class _WatchedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, budget: _Budget | None) -> None:
        super().__init__()
        self.budget = budget

    def https_open(self, req: urllib.request.Request) -> Any:
        budget = self.budget

        class Connection(http.client.HTTPSConnection):
            def connect(self) -> None:
                super().connect()
                if budget is not None:
                    budget.watch(self.sock)

        return self.do_open(Connection, req, context=self._context)  # type: ignore[attr-defined]


def _opener(budget: _Budget | None = None) -> urllib.request.OpenerDirector:
    """http and https only (plus the environment's proxies): no file:, ftp: or data: handler. Each
    connection is cut off at ``budget``'s deadline, headers included."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        _WatchedHTTP(budget),
        _WatchedHTTPS(budget),
        _HttpOnlyRedirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),
    ):
        opener.add_handler(handler)
    return opener


def _open(url: str, headers: dict[str, str] | None = None, budget: _Budget | None = None) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})  # noqa: S310
    try:
        return _opener(budget).open(request, timeout=TIMEOUT)
    except _NET_ERRORS:
        if budget is not None and budget.expired():
            raise budget.too_slow() from None
        raise


def _read_block(response: Any) -> bytes:
    """What the server has sent, up to BLOCK bytes, without waiting for a whole block."""
    read1 = getattr(response, "read1", None)
    return bytes(read1(BLOCK) if read1 is not None else response.read(BLOCK))


def net_reason(exc: BaseException) -> str:
    """A network failure in one line, outside text shortened."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {excerpt(exc.reason, 60)}"
    if isinstance(exc, urllib.error.URLError):
        return f"network error ({excerpt(exc.reason, 80)})"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed after {len(exc.partial)} bytes, {exc.expected} short"
    return f"{type(exc).__name__}: {excerpt(exc, 80)}" if str(exc) else type(exc).__name__


_NET_ERRORS = (urllib.error.URLError, OSError, ValueError, http.client.HTTPException)


def fetch_bytes(url: str, *, max_bytes: int | None = None, deadline: float | None = None, what: str = "feed") -> bytes:
    """The body of ``url`` (http or https) in memory, such as a feed: at most ``max_bytes`` (None:
    setting feed_max_mb) within ``deadline`` seconds, headers included (None: setting feed_deadline)."""
    check_url(url)
    budget = _budget(url, max_bytes, what, "feed_max_mb", deadline, "feed_deadline")
    try:
        with _open(url, budget=budget) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit():
                budget.check(int(length))
            parts, size = [], 0
            while block := _read_block(response):
                parts.append(block)
                size += len(block)
                budget.check(size)
            if length and length.isdigit() and size < int(length):
                raise http.client.IncompleteRead(b"".join(parts), int(length) - size)
            return b"".join(parts)
    except _NET_ERRORS as exc:
        if budget.expired():
            raise budget.too_slow() from None
        raise DownloadError(f"{url}: cannot fetch {what}: {net_reason(exc)}") from None
    finally:
        budget.close()


def download(
    url: str,
    dest: Path,
    *,
    max_bytes: int | None = None,
    deadline: float | None = None,
    expect: tuple[str, ...] | None = None,
    expected_length: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download ``url`` (http or https) to ``dest``: into ``.<name>.part`` first (resumed with a
    Range request when a previous run left one), checked for content type (one of the prefixes in
    ``expect``), length, size (``max_bytes``; None: setting download_max_mb) and time
    (``deadline`` seconds; None: setting download_deadline), then renamed. Files are private to
    the user. ``expected_length``: what the feed says (a file far shorter is refused);
    ``progress(bytes so far, total or None)`` after each block."""
    check_url(url)
    budget = _budget(url, max_bytes, "download", "download_max_mb", deadline)
    part = dest.with_name(f".{dest.name}.part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        return _download(url, dest, part, have, headers, budget, expect, expected_length, progress)
    finally:
        budget.close()


def _download(
    url: str,
    dest: Path,
    part: Path,
    have: int,
    headers: dict[str, str],
    budget: _Budget,
    expect: tuple[str, ...] | None,
    expected_length: int | None,
    progress: Callable[[int, int | None], None] | None,
) -> Path:
    try:
        response = _open(url, headers, budget)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part is already whole
            response = None
        else:
            raise DownloadError(f"{url}: download failed: {net_reason(exc)}") from None
    except _NET_ERRORS as exc:
        raise DownloadError(f"{url}: download failed: {net_reason(exc)}") from None
    total = None
    if response is not None:
        with response:
            ctype = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if expect and ctype and not ctype.startswith(expect):
                raise DownloadError(
                    f"{url}: served {excerpt(ctype, 40)}, not {' or '.join(e.rstrip('/') for e in expect)}"
                )
            length = response.headers.get("Content-Length")
            if response.status == 206:
                m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != have:
                    have, mode = 0, "wb"  # a range we did not ask for: start again
                else:
                    mode = "ab"
                total = int(m.group(2)) if m and m.group(2) != "*" else None
            else:
                have, mode = 0, "wb"  # the server ignored the range: start again
                total = int(length) if length and length.isdigit() else None
            if total:
                try:
                    budget.check(total)
                except DownloadError:
                    part.unlink(missing_ok=True)
                    raise
            try:
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "ab" else os.O_TRUNC), 0o600)
                os.fchmod(fd, 0o600)  # private, like everything downloaded (a part of an older run too)
                with os.fdopen(fd, mode) as fh:
                    while block := _read_block(response):
                        fh.write(block)
                        have += len(block)
                        if have > budget.max_bytes:
                            fh.close()
                            part.unlink(missing_ok=True)  # an endless body: nothing to resume
                            budget.check(have)
                        budget.check(0)  # the deadline; what came so far is kept for the next run
                        if progress:
                            progress(have, total)
                    fh.flush()
                    os.fsync(fh.fileno())
            except (OSError, ValueError, http.client.HTTPException) as exc:  # cut off, reset, timeout: keep the part
                if budget.expired():
                    raise budget.too_slow() from None
                raise DownloadError(
                    f"{url}: download interrupted after {have} bytes ({net_reason(exc)}); the next run resumes it"
                ) from None
    if budget.expired():  # the watchdog cut the connection: an end of data that is no end
        raise budget.too_slow()
    size = part.stat().st_size if part.exists() else 0
    want = total or expected_length
    if total and size != total:
        raise DownloadError(f"{url}: truncated download ({size} of {total} bytes); the next run resumes it")
    if size == 0:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: empty download")
    if want and not total and size < want * 0.9:
        # The feed's own length is often slightly off; far short is a cut-off file.
        raise DownloadError(f"{url}: truncated download ({size} bytes; the feed says {want})")
    os.replace(part, dest)
    return dest

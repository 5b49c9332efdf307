"""User-facing errors. Library code raises these; only the CLI turns them into exit codes.

Every message is one line, names the file or thing at fault, and where possible the fix.
"""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): for wrapping a
    library's error into our one-line messages."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


class HmsearchError(Exception):
    """Base class: a problem the user can act on (bad input, missing model, damaged index)."""

    exit_code = 1


class InputError(HmsearchError):
    """A file given to hmsearch is missing, empty, unreadable or malformed."""

    exit_code = 2


class AudioError(InputError):
    """Audio that cannot be decoded (empty, not audio, truncated)."""


class TranscriptFormatError(InputError):
    """A transcript file (SRT, WebVTT, Whisper JSON) that cannot be parsed."""


class ModelUnavailableError(HmsearchError):
    """A Whisper or embedding model that is neither on disk nor downloadable."""

    exit_code = 3


class IndexStateError(HmsearchError):
    """The index on disk is damaged, locked, or was built with another model."""

    exit_code = 4


class IndexLockedError(IndexStateError):
    """Another hmsearch job holds the index's write lock."""

    exit_code = 5


class NotFoundError(HmsearchError):
    """An episode id or path that is not in the index."""

    exit_code = 6


class BackendError(HmsearchError):
    """The backend that runs transcription cannot: no Ray installed, a cluster that does not
    answer, workers that never start (raised before anything is written), a cluster that goes away
    mid-run (what was committed stays; a rerun continues)."""

    exit_code = 7


# Exit codes beyond the error classes' own: a batch in which some inputs failed and others did not,
# and a bug (an exception that is not an HmsearchError), as sysexits' EX_SOFTWARE.
EXIT_SOME_FAILED = 8
EXIT_INTERNAL = 70

ERROR_CLASSES: dict[str, type[HmsearchError]] = {
    cls.__name__: cls
    for cls in (
        HmsearchError,
        InputError,
        AudioError,
        TranscriptFormatError,
        ModelUnavailableError,
        IndexStateError,
        IndexLockedError,
        NotFoundError,
        BackendError,
    )
}


def error_from_wire(kind: str, message: str, exit_code: int | None = None) -> HmsearchError:
    """Rebuild an error sent across a process boundary (the query server) with its own class,
    so a caller can still tell a missing episode from a damaged index."""
    cls = ERROR_CLASSES.get(kind)
    if cls is None:
        err = HmsearchError(message)
        if exit_code is not None:
            err.exit_code = int(exit_code)
        return err
    return cls(message)

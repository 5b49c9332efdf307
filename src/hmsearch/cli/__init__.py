"""The hmsearch command line: parse, call one library function, format the result.

Only this package talks to the terminal. Heavy libraries (torch, whisper, sentence-transformers,
faiss) are imported inside commands so that `hmsearch --help` stays fast. Commands live by theme:
``index`` (index, update, remove, repair, episodes), ``query`` (search, ask, serve, eval),
``transcripts`` (transcribe, whisper-convert).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..config import setting
from ..errors import EXIT_INTERNAL, HmsearchError, one_line
from ._common import err


def _raise_errors() -> bool:
    try:
        return bool(setting("raise_errors"))
    except HmsearchError:
        return False


_GLOBAL_VALUE = ("--index-dir", "--log-file")  # the global options that take a value
_GLOBAL_FLAGS = ("-q", "--quiet", "-v", "-vv", "-vvv", "--verbose")


def hoist_global_options(args: list[str], commands: Mapping[str, click.Command]) -> list[str]:
    """``hmsearch search X --index-dir I`` as ``hmsearch --index-dir I search X``: the global
    options given after the command (one the command does not have itself) move before it.
    Nothing after ``--`` moves."""
    i = 0
    while i < len(args) and args[i].startswith("-"):  # the global options already before it
        i += 2 if args[i] in _GLOBAL_VALUE else 1
    if i >= len(args) or args[i] not in commands:
        return args
    own = {name for p in commands[args[i]].params for name in (*p.opts, *p.secondary_opts)}
    before, after = list(args[:i]), [args[i]]
    rest = args[i + 1 :]
    j = 0
    while j < len(rest):
        a = rest[j]
        if a == "--":
            after += rest[j:]
            break
        name = a.split("=", 1)[0]
        if name in _GLOBAL_VALUE and name not in own:
            if "=" in a:
                before.append(a)
            else:
                before += rest[j : j + 2]
                j += 1
        elif a in _GLOBAL_FLAGS and a not in own:
            before.append(a)
        else:
            after.append(a)
        j += 1
    return before + after


class HmsearchGroup(click.Group):
    """Turns library errors into one line on stderr and an exit code; never a traceback
    (set HMSEARCH_RAISE_ERRORS=1 to see one). Global options are accepted after the command too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(list(args), self.commands))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HmsearchError as exc:
            if _raise_errors():
                raise
            err(f"Error: {exc}")
            ctx.exit(exc.exit_code)
        except BrokenPipeError:  # `hmsearch ... | head`: the reader left; leave quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)
        except KeyboardInterrupt:
            err("Interrupted: the index keeps everything committed before the interruption.")
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug: still one line, with the way to the details
            if _raise_errors():
                raise
            err(
                f"Error: internal error: {type(exc).__name__}: {one_line(exc) if str(exc) else ''} "
                f"(set HMSEARCH_RAISE_ERRORS=1 for the traceback)"
            )
            ctx.exit(EXIT_INTERNAL)


def _setup_logging(verbose: int) -> None:
    """-v: what hmsearch decided (engines, fallbacks, rebuilt caches); -vv: debug detail."""
    if not verbose:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger("hmsearch")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


@click.group(cls=HmsearchGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--index-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Index folder [env HMSEARCH_INDEX_DIR; default ./index].",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress or per-episode lines on stderr.")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Say on stderr what was decided (engines, fallbacks, rebuilt caches); -vv for more.",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append a timestamped line per episode and a summary per run (for cron).",
)
@click.version_option(__version__, prog_name="hmsearch")
@click.pass_context
def cli(ctx: click.Context, index_dir: Path | None, quiet: bool, verbose: int, log_file: Path | None) -> None:
    """Search every word said on a podcast.

    \b
    Index episodes (audio is transcribed with Whisper; SRT, WebVTT and Whisper
    JSON transcripts are read as they are), then ask questions:
      hmsearch index audio/
      hmsearch ask "hvad skal salgsafdelingen gøre på sociale medier?"
      hmsearch search "kundeservice på sociale medier" -k 5 --json
      hmsearch transcribe audio/episode.mp3 --format srt
      hmsearch update --feed https://example.com/podcast.rss
      hmsearch episodes
      hmsearch chapters hm-sample-001 --format podcast
      hmsearch notes hm-sample-001 -o notes.md
      hmsearch clip hm-sample-001 --start 2:23 --end 2:32 -o svar.mp3

    \b
    Exit codes: 0 ok, 1 error, 2 bad input, 3 model unavailable, 4 index damaged
    or mismatched, 5 index locked, 6 not found, 8 some inputs of a batch failed.
    """
    _setup_logging(verbose)
    ctx.ensure_object(dict)
    ctx.obj["index_dir"] = Path(setting("index_dir", index_dir))
    ctx.obj["quiet"] = quiet
    ctx.obj["log_file"] = log_file


def main() -> None:
    cli(prog_name="hmsearch")


from . import host, index, query, settings, speakers, transcripts, web  # noqa: E402,F401  (the commands register themselves)

"""What the commands share: output helpers, common options, the progress reporter, and the
preludes that turn options into library objects (a transcriber spec, the indexing encoder)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sys
import textwrap
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..config import WHISPER_ENGINES, setting
from ..text import INVISIBLE

if TYPE_CHECKING:  # --help stays free of numpy, FAISS and torch
    from ..index import IndexStore
    from ..query import QueryService

F = TypeVar("F", bound=Callable[..., Any])
_CONTROL = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{INVISIBLE}]")


def clean(text: str) -> str:
    """Text from a transcript, feed or file name made safe for a terminal or a log line: control
    characters (escape sequences, carriage returns, newlines) and the invisible marks that can
    reorder or hide what a line shows (bidi overrides, zero-width characters) become spaces."""
    return _CONTROL.sub(" ", text).replace("\n", " ")


def fmt_time(seconds: float) -> str:
    from ..formats import format_timestamp  # not at import: `hmsearch --help` stays light

    return format_timestamp(seconds)


_C1 = re.compile(r"[\x7f-\x9f]")


def echo_json(obj: Any) -> None:
    """JSON for scripts: no NaN, and C1 control codes (which some terminals read as escapes) written
    as \\u escapes, as JSON already writes C0 ones."""
    text = json.dumps(obj, ensure_ascii=False, indent=2, allow_nan=False)
    click.echo(_C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def err(message: str) -> None:
    click.echo(clean(message), err=True)


def wrap(text: str, indent: str = "   ", max_chars: int | None = None) -> str:
    text = clean(text)
    if max_chars and len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] + " …"
    width = min(shutil.get_terminal_size((100, 20)).columns, 100)
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent)


def store_of(ctx: click.Context) -> IndexStore:
    """The index, for the writing commands (index, update, remove, repair, reindex)."""
    from ..index import IndexStore

    return IndexStore(ctx.obj["index_dir"])


def service_of(ctx: click.Context) -> QueryService:
    """The read API over the index (in process): what every reading command uses."""
    if "service" not in ctx.obj:
        from ..query import QueryService

        ctx.obj["service"] = QueryService(ctx.obj["index_dir"])
    service: QueryService = ctx.obj["service"]
    return service


def whisper_model_option(f: F) -> F:
    f = click.option(
        "--whisper-engine",
        type=click.Choice(list(WHISPER_ENGINES)),
        default=None,
        help="faster-whisper (CTranslate2 int8, beam 5, VAD: on CPU the faster and more accurate), or "
        "openai-whisper (torch; takes checkpoint files) [env HMSEARCH_WHISPER_ENGINE; default faster-whisper].",
    )(f)
    return click.option(
        "--whisper-model",
        metavar="NAME|PATH",
        default=None,
        help="Whisper model name (turbo, small, medium, large-v3, ...), a CTranslate2 model folder or a "
        "Hugging Face (transformers) Whisper folder, converted once; with --whisper-engine openai also a "
        "checkpoint file; auto: the most accurate for the language (a Danish fine-tune, large-v3, turbo, "
        "small) that this machine's cores/GPU run in a third of real time, said once; offline the "
        "packaged base [env HMSEARCH_WHISPER_MODEL; default auto].",
    )(f)


language_option = click.option(
    "--language",
    metavar="CODE",
    default=None,
    help="Spoken language, e.g. da or en [env HMSEARCH_LANGUAGE; default: a feed's <language>, else "
    "heard in windows across each episode, the majority wins].",
)
greedy_option = click.option(
    "--greedy", is_flag=True, help="Decode once at temperature 0: faster, but no retry of windows that loop."
)


def workers_option(f: Any) -> Any:
    """--workers, --backend and --ray-address: where Whisper runs."""
    f = click.option(
        "--ray-address",
        metavar="HOST:PORT",
        default=None,
        help="With --backend ray: the head node's address [env HMSEARCH_RAY_ADDRESS or RAY_ADDRESS; "
        "default: a Ray started on this machine for the run].",
    )(f)
    f = click.option(
        "--backend",
        type=click.Choice(["auto", "local", "processes", "ray"]),
        default=None,
        help="Where Whisper runs: local (this process), processes (--workers on this machine), ray "
        "(a Ray cluster: pip install 'hmsearch[ray]') [env HMSEARCH_BACKEND; default auto: processes "
        "when --workers > 1, else local].",
    )(f)
    return click.option(
        "--workers",
        default=None,
        type=click.IntRange(1, 1024),
        help="Whisper workers, each with its own model: processes [default 2], or Ray actors [default: as "
        "many as the cluster's CPUs allow, HMSEARCH_RAY_CPUS_PER_WORKER each].",
    )(f)


def index_options(spec: Any, *, force: bool, workers: int | None, backend: str | None, ray_address: str | None) -> Any:
    """The IndexOptions of the indexing commands' flags (settings applied). Whisper's own progress
    bars stay off: the Reporter draws one bar for the run from the "progress" events."""
    from ..ingest import IndexOptions
    from ..ingest.backends import choose_backend

    return IndexOptions(
        transcriber=spec,
        force=force,
        workers=workers,
        backend=choose_backend(backend, workers),
        ray_address=ray_address,
    )


wait_option = click.option("--wait", is_flag=True, help="Wait for another job's lock instead of failing.")


def transcriber_spec(whisper_model: str | None, whisper_engine: str | None, language: str | None, greedy: bool) -> Any:
    """The options of the Whisper flags as one picklable spec (setting precedence applied)."""
    from ..asr import DecodeOptions, TranscriberSpec, language_code

    return TranscriberSpec(
        model=setting("whisper_model", whisper_model),
        engine=setting("whisper_engine", whisper_engine),
        language=language_code(setting("language", language)),
        decode=DecodeOptions(greedy=greedy),
    )


def indexing_encoder(store: Any, embedding_model: str | None) -> Any:
    """The engine that embeds new passages: the flag's model, else the index's own, else the default."""
    from ..embed import load_encoder

    manifest = store.manifest
    name = embedding_model or (manifest.embedding_model if manifest else setting("embedding_model"))
    return load_encoder(name, role="index")


def parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    import datetime

    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date (use YYYY-MM-DD)") from None


class Reporter:
    """What an indexing run shows: one line per episode on stderr, one progress bar per run in
    minutes of audio for Whisper to hear (terminal only: done/total and an ETA from the work left;
    unchanged and already transcribed episodes are not in it), and the log file.

    Episode lines are written above the bar (``tqdm.write``). Where stderr is not a terminal
    (cron, a pipe), a long episode says how far Whisper has got every PROGRESS_STEP %; the log
    file gets those lines even with ``--quiet``."""

    PROGRESS_STEP = 10  # percent between progress lines without a terminal
    LONG_EPISODE = 300.0  # seconds of audio from which an episode gets progress lines

    def __init__(self, ctx: click.Context, *, quiet: bool) -> None:
        self.quiet = quiet or ctx.obj["quiet"]
        self.show_bar = not self.quiet and sys.stderr.isatty()
        self._stack = contextlib.ExitStack()
        self.bar: Any = None
        self._total = 0.0  # seconds of audio Whisper hears in this run
        self._done = 0.0  # of which in finished episodes
        self._episode = ""  # the episode Whisper hears now, its length, and the last step said
        self._length = 0.0
        self._said = 0
        self.planned = 0  # episodes the run set out to index, and how many were unchanged,
        self.skipped = 0  # committed and failed: for "N of M committed" after Ctrl-C
        self.committed = 0
        path = ctx.obj.get("log_file")
        self.log = None
        if path:
            try:
                self.log = self._stack.enter_context(open(path, "a", encoding="utf-8"))  # noqa: SIM115  (closed by close())
            except OSError as exc:
                from ..errors import InputError

                raise InputError(f"{path}: cannot open the log file ({exc.strerror})") from None

    def line(self, text: str) -> None:
        if self.log:
            self.log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {clean(text)}\n")
            self.log.flush()

    def say(self, text: str) -> None:
        """A line on stderr (above the bar, when there is one) and in the log."""
        self.line(text)
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(clean(text), file=sys.stderr)
        else:
            err(text)

    def interrupted(self) -> str:
        """What to say after Ctrl-C: how far the run got, and that running it again continues."""
        todo = max(self.planned - self.skipped, self.committed)
        return f"interrupted: {self.committed} of {todo} episodes committed; run the same command to continue"

    def __call__(self, event: Any) -> None:
        kind = event.kind
        if kind == "plan":
            self.planned += event.count
            return
        if kind == "unchanged" and self.planned:
            self.skipped += 1
        elif kind in ("added", "replaced"):
            self.committed += 1
        if kind == "download":
            return
        if kind == "work":
            self._total = event.seconds
            return
        if kind == "loading":
            self.say(f"loading Whisper model {event.detail}…")
            return
        if kind == "start":
            if event.seconds > 0:
                self._episode, self._length, self._said = event.episode, event.seconds, 0
                self._draw(event.episode, 0.0)
            return
        if kind == "progress":
            if event.episode == self._episode:
                self._progress(min(event.seconds, self._length))
            return
        if kind == "notice":
            self.say(f"note: {event.detail}")
            return
        if kind == "warning":  # shown even with --quiet: the run went on without something
            self.line(f"warning: {event.detail}")
            if self.bar is not None:
                self.bar.write(clean(f"warning: {event.detail}"), file=sys.stderr)
            else:
                err(f"warning: {event.detail}")
            return
        if event.episode == self._episode and kind in ("added", "replaced", "failed"):
            self._done += self._length
            self._episode, self._length = "", 0.0
            self._draw("", 0.0)
        detail = event.detail
        text = (
            f"failed    {detail}"
            if kind == "failed"
            else f"{kind:9s} {event.episode}" + (f": {detail}" if detail else "")
        )
        if kind != "unchanged":
            self.say(text)

    def _progress(self, heard: float) -> None:
        self._draw(self._episode, heard)
        if self.show_bar or self._length < self.LONG_EPISODE:
            return
        step = int(heard / self._length * 100) // self.PROGRESS_STEP * self.PROGRESS_STEP
        if self._said < step < 100:
            self._said = step
            self.say(f"hearing   {self._episode}: {step} % ({fmt_time(heard)} of {fmt_time(self._length)})")

    def _draw(self, episode: str, heard: float) -> None:
        """The bar at the audio heard so far (created at the first episode: the model is loaded
        by then, so the ETA counts only hearing)."""
        if not self.show_bar or self._total <= 0:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = self._stack.enter_context(
                tqdm(
                    total=round(self._total / 60, 1),
                    unit="min",
                    file=sys.stderr,
                    dynamic_ncols=True,
                    bar_format="{desc}{percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} min of audio "
                    "[{elapsed}<{remaining}]",
                )
            )
        self.bar.set_description_str(clean(episode)[:30] + ": " if episode else "", refresh=False)
        done = min(round((self._done + heard) / 60, 1), self.bar.total)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self._stack.close()
        self.bar = None

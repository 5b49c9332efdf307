"""The hmsearch command line: parse, call one library function, format the result.

Only this module talks to the terminal. Heavy libraries (torch, whisper, sentence-transformers,
faiss) are imported inside commands so that `hmsearch --help` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import ChunkSettings, setting
from .errors import EXIT_SOME_FAILED, HmsearchError, InputError

EXIT_INTERNAL = 70


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


def _err(message: str) -> None:
    click.echo(message, err=True)


def _wrap(text: str, indent: str = "   ", max_chars: int | None = None) -> str:
    if max_chars and len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] + " …"
    width = min(shutil.get_terminal_size((100, 20)).columns, 100)
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent)


class HmsearchGroup(click.Group):
    """Turns library errors into one line on stderr and an exit code; never a traceback
    (set HMSEARCH_RAISE_ERRORS=1 to see one)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HmsearchError as exc:
            if os.environ.get("HMSEARCH_RAISE_ERRORS"):
                raise
            _err(f"Error: {exc}")
            ctx.exit(exc.exit_code)
        except BrokenPipeError:  # `hmsearch ... | head`: the reader left; leave quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)
        except KeyboardInterrupt:
            _err("Interrupted: the index keeps everything committed before the interruption.")
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug: still one line, with the way to the details
            if os.environ.get("HMSEARCH_RAISE_ERRORS"):
                raise
            reason = str(exc).splitlines()[0] if str(exc) else ""
            _err(f"Error: internal error: {type(exc).__name__}: {reason} "
                 f"(set HMSEARCH_RAISE_ERRORS=1 for the traceback)")
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=HmsearchGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--index-dir", type=click.Path(file_okay=False, path_type=Path), envvar="HMSEARCH_INDEX_DIR",
              default=None, help="Index folder [env HMSEARCH_INDEX_DIR; default ./index].")
@click.option("-q", "--quiet", is_flag=True, help="No progress or per-episode lines on stderr.")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append a timestamped line per episode and a summary per run (for cron).")
@click.version_option(__version__, prog_name="hmsearch")
@click.pass_context
def cli(ctx: click.Context, index_dir: Path | None, quiet: bool, log_file: Path | None) -> None:
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

    \b
    Exit codes: 0 ok, 1 error, 2 bad input, 3 model unavailable, 4 index damaged
    or mismatched, 5 index locked, 6 not found, 8 some inputs of a batch failed.
    """
    ctx.ensure_object(dict)
    ctx.obj["index_dir"] = Path(setting("index_dir", index_dir))
    ctx.obj["quiet"] = quiet
    ctx.obj["log_file"] = log_file


def _store(ctx: click.Context):
    from .store import IndexStore

    return IndexStore(ctx.obj["index_dir"])


def _language(value: str | None) -> str | None:
    value = setting("language", value)
    if value in (None, "", "auto"):
        return None
    from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

    code = value.lower()
    code = TO_LANGUAGE_CODE.get(code, code)
    if code not in LANGUAGES:
        raise InputError(f"unknown language '{value}': use a code such as da or en, or auto")
    return code


def whisper_model_option(f):
    f = click.option(
        "--whisper-engine", type=click.Choice(["openai", "faster-whisper"]), default=None,
        help="openai-whisper (torch), or faster-whisper (CTranslate2 int8: several times faster on CPU; "
             "pip install 'hmsearch[faster-whisper]') [env HMSEARCH_WHISPER_ENGINE; default openai].")(f)
    return click.option(
        "--whisper-model", metavar="NAME|PATH", default=None,
        help="Whisper model name (turbo, small, medium, large-v3, ...) or checkpoint path; with "
             "faster-whisper a size name or a CTranslate2 model folder [env HMSEARCH_WHISPER_MODEL; default turbo].")(f)
language_option = click.option("--language", metavar="CODE", default=None,
                               help="Spoken language, e.g. da or en [default: detect].")
greedy_option = click.option("--greedy", is_flag=True,
                             help="Decode once at temperature 0: faster, but no retry of windows that loop.")


class _Reporter:
    """Per-episode lines on stderr, a progress bar only on a terminal, and the log file."""

    def __init__(self, ctx: click.Context, *, quiet: bool) -> None:
        self.quiet = quiet or ctx.obj["quiet"]
        self.show_bar = not self.quiet and sys.stderr.isatty()
        self.bar: Any = None
        self.log = open(ctx.obj["log_file"], "a", encoding="utf-8") if ctx.obj.get("log_file") else None  # noqa: SIM115

    def line(self, text: str) -> None:
        if self.log:
            import time

            self.log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")
            self.log.flush()

    def __call__(self, kind: str, episode: str, detail: str) -> None:
        if kind == "plan":
            if self.show_bar and int(detail):
                self.bar = click.progressbar(length=int(detail), label="Indexing", file=sys.stderr)
                self.bar.__enter__()
            return
        if kind in ("start", "download"):
            return
        if self.bar is not None:
            self.bar.update(1)
        text = f"failed    {detail}" if kind == "failed" else f"{kind:9s} {episode}" + (f": {detail}" if detail else "")
        if kind != "unchanged":
            self.line(text)
            if not self.quiet:
                _err(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        if self.log:
            self.log.close()


workers_option = click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
                              help="Transcribe in this many processes (each loads its own Whisper model).")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@whisper_model_option
@language_option
@greedy_option
@click.option("--embedding-model", metavar="NAME|PATH", default=None,
              help="sentence-transformers model for a new index [default all-MiniLM-L6-v2, bundled].")
@click.option("--force", is_flag=True, help="Re-index episodes even when their inputs are unchanged.")
@workers_option
@click.option("--wait", is_flag=True, help="Wait for another job's lock instead of failing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def index(ctx: click.Context, paths: tuple[Path, ...], whisper_model: str | None, whisper_engine: str | None, language: str | None,
          greedy: bool, embedding_model: str | None, force: bool, workers: int, wait: bool, as_json: bool) -> None:
    """Transcribe what is new, chunk it, embed it and add it to the index.

    PATHS are audio files, transcripts (.json/.srt/.vtt) or folders of them. An audio file
    with a transcript of the same name beside it uses that transcript. Unchanged episodes
    are skipped, changed ones replaced.

    \b
    Examples:
      hmsearch index audio/
      hmsearch index episode.mp3 --whisper-model small --language da
      hmsearch index transcripts/*.vtt --json
    """
    from .embed import Embedder
    from .ingest import WhisperOptions, index_paths

    store = _store(ctx)
    reporter = _Reporter(ctx, quiet=as_json)
    try:
        with store.writing(wait=wait):
            manifest = store.manifest
            model_name = embedding_model or (manifest.embedding_model if manifest else setting("embedding_model"))
            whisper = WhisperOptions(model=setting("whisper_model", whisper_model), language=_language(language),
                                     engine=setting("whisper_engine", whisper_engine),
                                     greedy=greedy, show_progress=reporter.show_bar)
            report = index_paths(paths, store, embedder=Embedder(model_name), whisper=whisper,
                                 settings=ChunkSettings(), force=force, workers=workers, on_event=reporter)
        nothing = not (report.added or report.replaced or report.failed)
        summary = report.summary() + (" (nothing to do)" if nothing else "")
        reporter.line(f"index: {summary}")
    finally:
        reporter.close()
    if as_json:
        _echo_json(report.to_dict())
    else:
        click.echo(summary)
    if report.failed:
        ctx.exit(EXIT_SOME_FAILED)


@cli.command()
@click.option("--feed", required=True, metavar="URL|FILE", help="RSS 2.0 or Atom feed.")
@click.option("--audio-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("audio"),
              show_default=True, help="Where downloaded episodes are kept.")
@click.option("--since", metavar="DATE", callback=lambda c, p, v: _date(c, p, v),
              help="Only items published on or after DATE.")
@click.option("--limit", type=click.IntRange(0), default=None, help="Only the newest N items.")
@click.option("--dry-run", is_flag=True, help="Say what would be done; download and change nothing.")
@click.option("--prune", is_flag=True, help="Remove indexed episodes of this feed that it no longer lists.")
@click.option("--force", is_flag=True, help="Re-index every listed item.")
@workers_option
@whisper_model_option
@language_option
@greedy_option
@click.option("--embedding-model", metavar="NAME|PATH", default=None, help="Model for a new index.")
@click.option("--wait", is_flag=True, help="Wait for another job's lock instead of failing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def update(ctx: click.Context, feed: str, audio_dir: Path, since: str | None, limit: int | None, dry_run: bool,
           prune: bool, force: bool, workers: int, whisper_model: str | None, whisper_engine: str | None, language: str | None, greedy: bool,
           embedding_model: str | None, wait: bool, as_json: bool) -> None:
    """Index what is new in a podcast feed (a batch job: safe to kill, safe to run twice).

    Items are identified by GUID. A published transcript (<podcast:transcript>: SRT, VTT,
    JSON) is indexed as it is; otherwise the audio is downloaded to --audio-dir (resumably)
    and transcribed. Items already indexed are skipped, changed ones replaced; a failed
    item is reported and retried next run. Exit 0 when all succeeded, 8 when some failed.

    \b
    Examples:
      hmsearch update --feed https://example.com/podcast.rss
      hmsearch update --feed feed.xml --since 2024-01-01 --limit 10 --dry-run
      hmsearch --log-file /var/log/hmsearch.log -q update --feed URL --workers 2   # cron
    """
    from .embed import Embedder
    from .feeds import update_feed
    from .ingest import WhisperOptions

    store = _store(ctx)
    reporter = _Reporter(ctx, quiet=as_json)
    try:
        lock = contextlib.nullcontext() if dry_run else store.writing(wait=wait)
        with lock:
            manifest = store.manifest
            model_name = embedding_model or (manifest.embedding_model if manifest else setting("embedding_model"))
            whisper = WhisperOptions(model=setting("whisper_model", whisper_model), language=_language(language),
                                     engine=setting("whisper_engine", whisper_engine),
                                     greedy=greedy, show_progress=reporter.show_bar)
            report = update_feed(feed, store, audio_dir=audio_dir, embedder=Embedder(model_name), whisper=whisper,
                                 since=since, limit=limit, dry_run=dry_run, prune=prune, force=force,
                                 workers=workers, on_event=reporter)
        summary = report.summary()
        reporter.line(f"update {feed}: {summary}")
    finally:
        reporter.close()
    if as_json:
        _echo_json(report.to_dict())
    elif dry_run:
        for guid, action in report.planned:
            if action != "unchanged":
                click.echo(f"would index ({action}): {guid}")
        for guid in report.pruned:
            click.echo(f"would prune: {guid}")
        click.echo(f"dry run: {sum(a == 'new' for _, a in report.planned)} new, "
                   f"{sum(a == 'changed' for _, a in report.planned)} changed, "
                   f"{sum(a == 'unchanged' for _, a in report.planned)} unchanged")
    else:
        click.echo(summary)
    if report.failed:
        ctx.exit(EXIT_SOME_FAILED)


def _hit_lines(i: int, hit: dict[str, Any], max_chars: int | None = None) -> list[str]:
    lines = [f"{i}. {hit['title']}  [{_fmt_time(hit['start'])}–{_fmt_time(hit['end'])}]  score {hit['score']:.3f}",
             _wrap(hit["text"], max_chars=max_chars)]
    if hit["link"]:
        lines.append(f"   ▶ {hit['link']}")
    return lines


def _query(ctx: click.Context, request: dict[str, Any]) -> dict[str, Any]:
    """Answer through a warm `hmsearch serve` of this index when one runs, else in process."""
    from .serve import ask_server, query

    if not os.environ.get("HMSEARCH_NO_SERVER"):
        result = ask_server(ctx.obj["index_dir"], request)
        if result is not None:
            return result
    store = _store(ctx)
    store.require()
    # ask scores the answer sentences with the model whatever the mode
    embedder = _embedder(store, "hybrid" if request["op"] == "ask" else request.get("mode") or "hybrid")
    return query(store, embedder, request)


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    import datetime

    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date (use YYYY-MM-DD)") from None


def filter_options(f):
    f = click.option("--until", metavar="DATE", callback=_date, help="Episodes published on or before DATE.")(f)
    f = click.option("--since", metavar="DATE", callback=_date, help="Episodes published on or after DATE.")(f)
    f = click.option("--episode", metavar="ID", default=None, help="Search one episode only.")(f)
    f = click.option("--mode", type=click.Choice(["hybrid", "semantic", "lexical"]), default="hybrid",
                     show_default=True, help="Fused BM25 + embeddings, embeddings only, or BM25 only.")(f)
    return f


def _embedder(store: Any, mode: str) -> Any:
    from .search import embedder_for

    return None if mode == "lexical" else embedder_for(store)


@cli.command()
@click.argument("query")
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1, 1000), help="Passages to return.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {query, hits: [...]}.")
@click.pass_context
def search(ctx: click.Context, query: str, k: int, mode: str, episode: str | None, since: str | None,
           until: str | None, as_json: bool) -> None:
    """Find the passages that match QUERY, best first, with time and a playback link.

    A QUERY in double quotes finds that exact phrase (tolerating case, punctuation and a
    misheard word) and returns the quote's own start and end, for citing and clipping.

    \b
    Examples:
      hmsearch search "kundeservice på sociale medier"
      hmsearch search "LinkedIn profile tips" -k 10 --json
      hmsearch search '"svare inden for to timer"'
      hmsearch search "nyhedsbreve" --since 2024-01-01 --mode lexical
    """
    out = _query(ctx, {"op": "search", "query": query, "k": k, "mode": mode, "episode": episode,
                       "since": since, "until": until})
    if as_json:
        _echo_json(out)
        return
    if not out["hits"]:
        click.echo("No matches.")
        return
    for i, hit in enumerate(out["hits"], 1):
        click.echo("\n".join(_hit_lines(i, hit)) + "\n")


@cli.command()
@click.argument("question")
@click.option("-k", "k", default=3, show_default=True, type=click.IntRange(1, 100),
              help="Supporting passages to show.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {question, answer: [...], hits: [...]}.")
@click.pass_context
def ask(ctx: click.Context, question: str, k: int, mode: str, episode: str | None, since: str | None,
        until: str | None, as_json: bool) -> None:
    """Answer QUESTION with the sentences that say it, each with its own time.

    \b
    Examples:
      hmsearch ask "hvad skal salgsafdelingen gøre på sociale medier?"
      hmsearch ask "how fast should we answer customers?" --json
    """
    out = _query(ctx, {"op": "ask", "question": question, "k": k, "mode": mode, "episode": episode,
                       "since": since, "until": until})
    if as_json:
        _echo_json(out)
        return
    if not out["answer"]:
        click.echo("No answer found in the index.")
        return
    click.echo("Answer:")
    for s in out["answer"]:
        click.echo(f"  [{_fmt_time(s['start'])}] {s['text']}")
        click.echo(f"     — {s['title']}" + (f"  ▶ {s['link']}" if s["link"] else ""))
    click.echo("\nSupporting passages (full text: `hmsearch search` or --json):")
    for i, hit in enumerate(out["hits"], 1):
        click.echo("\n".join(_hit_lines(i, hit, max_chars=300)) + "\n")


@cli.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Keep the model and index loaded for fast repeated searches (Ctrl-C stops it).

    While it runs, `hmsearch search` and `ask` on the same --index-dir are answered by it in
    milliseconds instead of loading torch and the model every time (several seconds). It
    listens on a Unix socket in the index folder and picks up index updates by itself.

    \b
    Example:
      hmsearch serve &          # once
      hmsearch ask "hvordan måler man leads fra LinkedIn?"
    """
    from .serve import serve as run_server

    _store(ctx).require()
    run_server(ctx.obj["index_dir"], on_ready=lambda path: _err(f"serving {ctx.obj['index_dir']} on {path}"))


@cli.command()
@click.argument("audio", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "format_", type=click.Choice(["json", "srt", "vtt", "txt"]), default="json",
              show_default=True, help="Transcript format to write.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write transcripts here [default: beside each audio file].")
@whisper_model_option
@language_option
@greedy_option
@click.pass_context
def transcribe(ctx: click.Context, audio: tuple[Path, ...], format_: str, out_dir: Path | None,
               whisper_model: str | None, whisper_engine: str | None, language: str | None, greedy: bool) -> None:
    """Transcribe AUDIO files with Whisper into <stem>.<format> (for show notes or subtitles).

    Transcripts already made for the same audio and model (by `index` or an earlier
    `transcribe`) are reused from the index folder.

    \b
    Examples:
      hmsearch transcribe audio/episode.mp3 --format srt
      hmsearch transcribe audio/*.mp3 --format vtt --out-dir subtitles/ --language da
    """
    from .audio import file_hash
    from .formats import write_transcript
    from .ingest import WhisperOptions, whisper_transcript

    quiet = ctx.obj["quiet"]
    whisper = WhisperOptions(model=setting("whisper_model", whisper_model), language=_language(language),
                             engine=setting("whisper_engine", whisper_engine),
                             greedy=greedy, show_progress=not quiet and sys.stderr.isatty())
    whisper.spec()  # fail once, up front, when the model cannot be had
    cache_dir = ctx.obj["index_dir"] / "transcripts"
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in audio:
        try:
            transcript = whisper_transcript(path, file_hash(path), whisper, cache_dir)
            target = (out_dir or path.parent) / f"{path.stem}.{format_}"
            write_transcript(transcript, target, format_)
            if not quiet:
                _err(f"wrote {target} ({len(transcript.segments)} segments, language {transcript.language})")
        except HmsearchError as exc:
            failed += 1
            _err(f"Error: {exc}")
    if failed:
        if len(audio) > 1:
            _err(f"{len(audio) - failed} transcribed, {failed} failed")
        ctx.exit(EXIT_SOME_FAILED if failed < len(audio) else 2)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON: [{episode, title, duration, chunks, ...}].")
@click.pass_context
def episodes(ctx: click.Context, as_json: bool) -> None:
    """List what is indexed: id, title, duration and passages."""
    store = _store(ctx)
    eps = store.episodes()
    if as_json:
        _echo_json([e.to_dict() for e in eps])
        return
    if not eps:
        click.echo(f"No episodes indexed in {store.root}.")
        return
    width = max(len(e.id) for e in eps)
    for e in eps:
        click.echo(f"{e.id:<{width}}  {_fmt_time(e.duration)}  {e.chunks:5d} passages  {e.title}")
    total = sum(e.duration for e in eps)
    click.echo(f"{len(eps)} episodes, {_fmt_time(total)} in all, {sum(e.chunks for e in eps)} passages")


@cli.command()
@click.argument("episode_ids", nargs=-1, required=True, metavar="EPISODE...")
@click.option("--wait", is_flag=True, help="Wait for another job's lock instead of failing.")
@click.pass_context
def remove(ctx: click.Context, episode_ids: tuple[str, ...], wait: bool) -> None:
    """Remove episodes from the index by id (see `hmsearch episodes`)."""
    store = _store(ctx)
    with store.writing(wait=wait):
        store.require()
        for episode_id in episode_ids:
            store.episode(episode_id)  # all exist, or nothing is removed
        for episode_id in episode_ids:
            removed = store.remove_episode(episode_id)
            if not ctx.obj["quiet"]:
                _err(f"removed {removed.id} ({removed.chunks} passages)")
        store.finish()


@cli.command("eval")
@click.argument("questions", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mode", type=click.Choice(["hybrid", "semantic", "lexical", "all"]), default="all",
              show_default=True, help="Search mode to score; 'all' compares the three side by side.")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 100), help="Hits per question.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: per mode, metrics per group and per-question ranks.")
@click.pass_context
def eval_(ctx: click.Context, questions: Path, mode: str, k: int, as_json: bool) -> None:
    """Score search on QUESTIONS (JSONL with known answers): R@1, R@5, R@10, MRR@10, nDCG@10,
    overall and per question type and language.

    \b
    A line: {"id", "question", "episode", "start", "end", "type": "topical|known-item|quote",
             "lang", "also": [{"episode", "start", "end"}] (optional)}
    A hit counts when its episode matches and it overlaps the answer span by a second.

    \b
    Examples:
      hmsearch --index-dir index-dev eval benchmarks/data/da_dev/questions.jsonl
      hmsearch eval questions.jsonl --mode hybrid --json
    """
    from .evaluate import evaluate, load_questions

    qs = load_questions(questions)
    store = _store(ctx)
    store.require()
    modes = ["lexical", "semantic", "hybrid"] if mode == "all" else [mode]
    embedder = _embedder(store, "hybrid") if any(m != "lexical" for m in modes) else None
    reports = []
    show_bar = not ctx.obj["quiet"] and not as_json and sys.stderr.isatty()
    for m in modes:
        if show_bar:
            with click.progressbar(length=len(qs), label=f"{m:8s}", file=sys.stderr) as bar:
                reports.append(evaluate(store, embedder, qs, mode=m, k=k, progress=bar.update))
        else:
            reports.append(evaluate(store, embedder, qs, mode=m, k=k))
    if as_json:
        _echo_json({"questions": str(questions), "k": k, "modes": [r.to_dict() for r in reports]})
        return
    metrics = ["R@1", "R@5", "R@10", "MRR@10", "nDCG@10"]
    click.echo(f"{'group':<18} {'n':>4} {'mode':<9} " + " ".join(f"{m:>7}" for m in metrics))
    tables = [(r.mode, r.table()) for r in reports]
    for group in tables[0][1]:
        for name, table in tables:
            row = table[group]
            click.echo(f"{group:<18} {row['n']:>4} {name:<9} " + " ".join(f"{row[m]:>7.3f}" for m in metrics))


@cli.command()
@click.pass_context
def repair(ctx: click.Context) -> None:
    """Bring a damaged index back to its last good state.

    Restores a damaged manifest from the previous version, drops episodes whose files are
    damaged (index them again afterwards) and rebuilds the search cache.
    """
    store = _store(ctx)
    with store.writing():
        done = store.repair()
    click.echo("\n".join(done) if done else "nothing to repair")


def main() -> None:
    cli(prog_name="hmsearch")

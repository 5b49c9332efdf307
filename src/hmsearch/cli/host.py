"""Commands for the host: chapters (topic changes with times and titles), notes (a show-notes
draft), clip (a quote's audio with its own subtitles)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from . import cli
from ._common import clean, echo_json, err, service_of

CHAPTER_FORMATS = ("text", "podcast", "vtt", "json")


@cli.command()
@click.argument("episode")
@click.option(
    "--format",
    "format_",
    type=click.Choice(CHAPTER_FORMATS),
    default="text",
    show_default=True,
    help="text: `00:00 Title` show-notes lines (YouTube chapters); podcast: Podcasting 2.0 chapters "
    "JSON (<podcast:chapters>); vtt: WebVTT chapters (<track kind=chapters>); json: with keywords and "
    'their source ("feed": the publisher\'s, "found": hmsearch\'s).',
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to this file."
)
@click.pass_context
def chapters(ctx: click.Context, episode: str, format_: str, as_json: bool, output: Path | None) -> None:
    """Chapters of EPISODE: where the topic changes, each with its start and a title made of the
    chapter's own key words (see `hmsearch episodes` for ids).

    The publisher's own when the episode's feed item has <podcast:chapters> (read by `update`);
    otherwise found from the index's passage vectors (no model is loaded) and kept in the index
    folder, so the second time is instant; an episode indexed again gets new ones.

    \b
    Examples:
      hmsearch chapters hm-sample-001
      hmsearch chapters hm-sample-001 --format podcast -o chapters.json
      hmsearch chapters hm-sample-001 --format vtt -o chapters.vtt
    """
    from ..host.chapters import format_show_notes, format_webvtt_chapters, podcast_chapters

    service = service_of(ctx)
    ep = service.episode(episode)
    found = service.chapters(episode)
    fmt = "json" if as_json else format_
    if fmt == "text":
        text = format_show_notes(found)
    elif fmt == "vtt":
        text = format_webvtt_chapters(found)
    elif fmt == "podcast":
        text = json.dumps(podcast_chapters(found, title=ep.title), ensure_ascii=False, indent=2) + "\n"
    else:
        from ..query.episodes import feed_chapters

        source = "feed" if feed_chapters(service.store().record(episode).feed) else "found"
        text = (
            json.dumps(
                {"episode": ep.id, "title": ep.title, "source": source, "chapters": [c.to_dict() for c in found]},
                ensure_ascii=False,
                indent=2,
            )
            + "\n"
        )
    _emit(ctx, text, output)


def _emit(ctx: click.Context, text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    from ..errors import InputError
    from ..fsutil import atomic_write

    try:
        atomic_write(output, text.encode("utf-8"), make_parents=False)
    except OSError as exc:
        raise InputError(f"{output}: cannot write ({exc.strerror or exc})") from None
    if not ctx.obj["quiet"]:
        err(f"wrote {output}")


def _seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Seconds as 83.5, 1:23.5 or 0:01:23.5."""
    return None if value is None else _clock_seconds(value)


def _clock_seconds(value: str) -> float:
    parts = value.strip().split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    # each field a plain non-negative number, minutes and seconds below 60 after the first field
    if (
        not numbers
        or len(numbers) > 3
        or any(not re.fullmatch(r"\d+(?:\.\d+)?", p.strip()) for p in parts)
        or any(n >= 60 for n in numbers[1:])
    ):
        raise click.BadParameter(f"'{value}' is not a time (use seconds, M:SS or H:MM:SS)")
    total = 0.0
    for n in numbers:
        total = total * 60 + n
    return total


@cli.command()
@click.argument("episode")
@click.option("--start", required=True, callback=_seconds, metavar="TIME", help="Start: seconds, M:SS or H:MM:SS.")
@click.option("--end", required=True, callback=_seconds, metavar="TIME", help="End: seconds, M:SS or H:MM:SS.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The clip: .mp3 or .m4a (its .srt and .vtt are written beside it).",
)
@click.option("--download", is_flag=True, help="Fetch a remote enclosure first (into the index folder's downloads/).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT and its .srt/.vtt when they are already there.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {audio, subtitles, start, end, duration, text}.")
@click.pass_context
def clip(
    ctx: click.Context,
    episode: str,
    start: float,
    end: float,
    output: Path,
    download: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Cut EPISODE's audio from --start to --end into a clip for social media.

    The cut is widened to whole words (no word is cut in half), faded in and out, and
    re-encoded by the output's extension (.mp3 or .m4a); OUTPUT.srt and OUTPUT.vtt hold the
    clip's words with times from the clip's start. To clip a quote, search for it:
    `hmsearch search '"the quote"' --clip out.mp3`.

    \b
    Examples:
      hmsearch clip hm-sample-001 --start 143 --end 152 -o svar.mp3
      hmsearch clip hm-sample-001 --start 2:23 --end 2:32 -o svar.m4a --json
    """
    assert start is not None and end is not None  # required options
    result = service_of(ctx).clip(episode, start, end, output, download=download, force=force)
    _report_clip(ctx, result, as_json)


def _report_clip(ctx: click.Context, result: object, as_json: bool) -> None:
    from ..host.clip import ClipResult

    assert isinstance(result, ClipResult)
    if as_json:
        echo_json(result.to_dict())
        return
    if not ctx.obj["quiet"]:
        subs = ", ".join(str(p) for p in result.subtitles)
        err(f"wrote {result.audio} ({result.end - result.start:.1f} s from {result.start:.2f} s) and {subs}")
    click.echo(clean(result.text))


@cli.command()
@click.argument("episode")
@click.option("--quotes", default=5, show_default=True, type=click.IntRange(0, 50), help="Quotable sentences.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {episode, title, chapters, quotes, key_terms, ...}.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to this file."
)
@click.option(
    "--base-url",
    metavar="URL",
    default=None,
    help="Link to `hmsearch web` served at URL (its episode page from each time).",
)
@click.option(
    "--local-links", is_flag=True, help="Link to the local audio file (file://) where there is no public one."
)
@click.pass_context
def notes(
    ctx: click.Context,
    episode: str,
    quotes: int,
    as_json: bool,
    output: Path | None,
    base_url: str | None,
    local_links: bool,
) -> None:
    """A Markdown draft of EPISODE's show notes: title and date, chapters with links that play
    from each start, the most quotable sentences with who said them, times and links, key terms.

    Links are public: the feed's episode page (with the time where it takes one) or its enclosure
    URL with #t=SECONDS, or with --base-url the `hmsearch web` page at URL; a local file:// link
    only with --local-links.

    \b
    Examples:
      hmsearch notes hm-sample-001
      hmsearch notes hm-sample-001 -o notes.md --base-url https://search.example.com
      hmsearch notes hm-sample-001 --json
    """
    from ..query.links import playback_link, public_link, web_link

    if base_url is not None and local_links:
        raise click.UsageError("--base-url and --local-links choose the links two ways: pass one")
    if base_url is not None:
        from urllib.parse import urlsplit

        if urlsplit(base_url).scheme.lower() not in ("http", "https") or not urlsplit(base_url).netloc:
            raise click.BadParameter(f"{base_url!r} is not an http(s) URL", param_hint="--base-url")
        link = web_link(base_url)
    else:
        link = playback_link if local_links else public_link
    draft = service_of(ctx).notes(episode, quotes=quotes, link=link)
    text = json.dumps(draft.to_dict(), ensure_ascii=False, indent=2) + "\n" if as_json else draft.markdown()
    _emit(ctx, text, output)


@cli.command()
@click.argument("episodes", nargs=-1, required=True)
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="The folder to write to."
)
@click.option("--base-url", metavar="URL", required=True, help="Where the files will be served (the tags point there).")
@click.option(
    "--soundbites",
    default=3,
    show_default=True,
    type=click.IntRange(0, 20),
    help="<podcast:soundbite>s from the episode's most quotable sentences.",
)
@click.option(
    "--soundbite",
    "picked",
    multiple=True,
    metavar="START-END",
    help="A soundbite the host picked (times as for `clip`: 2:23-2:32); replaces the quotable ones. "
    "With several EPISODEs it applies to each.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: per episode, the files written and the XML tags.")
@click.pass_context
def publish(
    ctx: click.Context,
    episodes: tuple[str, ...],
    out: Path,
    base_url: str,
    soundbites: int,
    picked: tuple[str, ...],
    as_json: bool,
) -> None:
    """Write what a podcast feed can carry for each EPISODE (Podcasting 2.0) into --out: its
    transcript as WebVTT and JSON (word times), its chapters JSON, and the <item> tags that point
    at them under --base-url (<podcast:transcript>, <podcast:chapters>, <podcast:soundbite>,
    <podcast:person>) as EPISODE.item.xml; the tags are also printed.

    \b
    Examples:
      hmsearch publish hm-sample-001 --out public/ --base-url https://example.com/podcast/
      hmsearch publish ep1 ep2 --out public/ --base-url https://example.com/p --soundbites 0 --json
      hmsearch publish hm-sample-001 --out public/ --base-url https://example.com/p --soundbite 2:22-2:28
    """
    from urllib.parse import urlsplit

    from ..errors import InputError
    from ..fsutil import atomic_write
    from ..host.publish import Soundbite
    from ..host.publish import publish as publish_episode

    parts = urlsplit(base_url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{base_url!r} is not an http(s) URL", param_hint="--base-url")
    ranges = []
    for value in picked:
        start_text, _, end_text = value.partition("-")
        start = _clock_seconds(start_text)
        end = _clock_seconds(end_text) if end_text else None
        if end is None or end <= start:
            raise click.BadParameter(f"'{value}' is not START-END with END after START", param_hint="--soundbite")
        ranges.append((start, end))
    service = service_of(ctx)
    made = []
    for episode_id in episodes:
        text = service.transcript(episode_id)
        if ranges:  # the host's own picks, titled with what is said there
            bites = [
                Soundbite(a, b - a, " ".join(s.text for s in text.between(a, b)) or text.episode.title)
                for a, b in ranges
            ]
        else:
            picks = service.notes(episode_id, quotes=soundbites).quotes if soundbites else []
            bites = [Soundbite(q.start, max(0.1, q.end - q.start), q.text) for q in picks]
        result = publish_episode(
            text.episode,
            list(text.sentences),
            service.chapters(episode_id),
            bites,
            base_url=base_url,
            names=service.speaker_names(episode_id),
        )
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name, content in result.files.items():
                atomic_write(out / name, content.encode("utf-8"), make_parents=False)
                (out / name).chmod(0o644)  # to be served: readable by the web server
        except OSError as exc:
            raise InputError(f"{out}: cannot write ({exc.strerror or exc})") from None
        if not ctx.obj["quiet"] and not as_json:
            err(f"wrote {', '.join(str(out / n) for n in result.files)}")
        made.append({"episode": episode_id, "files": [str(out / n) for n in result.files], "tags": result.snippet})
    if as_json:
        echo_json(made)
        return
    for m in made:
        click.echo(m["tags"], nl=False)

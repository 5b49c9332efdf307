"""Commands that read the index: search, ask, serve (keeps it warm), eval (scores search)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..config import SEARCH_MODES as MODES
from ..config import setting
from . import cli
from ._common import clean, echo_json, err, fmt_time, parse_date, service_of, wrap

F = TypeVar("F", bound=Callable[..., Any])


def filter_options(f: F) -> F:
    f = click.option("--until", metavar="DATE", callback=parse_date, help="Episodes published on or before DATE.")(f)
    f = click.option("--since", metavar="DATE", callback=parse_date, help="Episodes published on or after DATE.")(f)
    f = click.option(
        "--speaker",
        metavar="NAME",
        default=None,
        help="Only passages where this speaker talks (a name given with `hmsearch speakers --name`, or S1...).",
    )(f)
    f = click.option("--episode", metavar="ID", default=None, help="Search one episode only.")(f)
    f = click.option(
        "--mode",
        type=click.Choice(list(MODES)),
        default="hybrid",
        show_default=True,
        help="Fused BM25 + embeddings, embeddings only, or BM25 only.",
    )(f)
    return f


def _answer(ctx: click.Context, request: Any) -> Any:
    """Answer through a warm `hmsearch serve` of this index when one runs, else in process."""
    from ..query.service import AnswerResult, AskRequest, QueryService, SearchResult
    from ..serve import ask_server

    result_type = AnswerResult if isinstance(request, AskRequest) else SearchResult
    if not setting("no_server"):
        reply = ask_server(ctx.obj["index_dir"], request.to_dict())
        if reply is not None:
            try:
                return result_type.from_dict(reply)
            except (KeyError, TypeError, ValueError, AttributeError):
                pass  # a reply that is not one: answer in process
    service = QueryService(ctx.obj["index_dir"])
    return service.ask(request) if isinstance(request, AskRequest) else service.search(request)


def _hit_lines(i: int, hit: Any, max_chars: int | None = None) -> list[str]:
    lines = [
        clean(f"{i}. {hit.title}  [{fmt_time(hit.start)}–{fmt_time(hit.end)}]  score {hit.score:.3f}"),
        wrap(hit.text, max_chars=max_chars),
    ]
    if getattr(hit, "chapter", None):
        lines.insert(1, clean(f"   § {hit.chapter}"))
    if hit.link:
        lines.append(clean(f"   ▶ {hit.link}"))
    return lines


@cli.command()
@click.argument("query")
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1, 1000), help="Passages to return.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {query, hits: [...]}.")
@click.option(
    "--clip",
    "clip_to",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also cut the best hit's audio into this .mp3 or .m4a (see `hmsearch clip`): a quote's whole sentence(s).",
)
@click.option(
    "--pad",
    type=click.FloatRange(0, 30),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="With --clip: this much more audio before and after.",
)
@click.option(
    "--max-clip",
    type=click.FloatRange(1, 600),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="With --clip: the longest clip (cut back evenly around the quote).",
)
@click.option("--words-only", is_flag=True, help="With --clip: only the quoted words, not their whole sentence(s).")
@click.pass_context
def search(
    ctx: click.Context,
    query: str,
    k: int,
    mode: str,
    episode: str | None,
    since: str | None,
    until: str | None,
    speaker: str | None,
    as_json: bool,
    clip_to: Path | None,
    pad: float,
    max_clip: float,
    words_only: bool,
) -> None:
    """Find the passages that match QUERY, best first, with time and a playback link.

    A QUERY in double quotes finds that exact phrase (tolerating case, punctuation and a
    misheard word) and returns the quote's own start and end, for citing and clipping; a quote
    remembered slightly wrong gets "No exact match; closest:" and the places said most like it.
    --clip cuts a quote's whole sentence(s) (--words-only: its words), --pad more, --max-clip at most.

    \b
    Examples:
      hmsearch search "kundeservice på sociale medier"
      hmsearch search "LinkedIn profile tips" -k 10 --json
      hmsearch search '"svare inden for to timer"'
      hmsearch search "nyhedsbreve" --since 2024-01-01 --mode lexical
      hmsearch search '"svare inden for to timer"' --clip svar.mp3 --pad 1.5
    """
    from ..query import Filters, SearchRequest

    result = _answer(ctx, SearchRequest(query, k=k, mode=mode, filters=Filters(episode, since, until, speaker)))
    if clip_to is not None and not result.hits:
        from ..errors import NotFoundError

        near = "".join(f'; closest: "{h.text}" ({h.episode} {fmt_time(h.start)})' for h in result.closest[:1])
        raise NotFoundError(
            f"nothing matches {query!r}{near}: no clip written" + (" (quote it as said)" if near else "")
        )
    if clip_to is not None:
        top = result.hits[0]
        made = service_of(ctx).clip(
            top.episode, top.start, top.end, clip_to, sentences=not words_only, pad=pad, max_seconds=max_clip
        )
        if not ctx.obj["quiet"]:
            err(f"wrote {made.audio} ({made.end - made.start:.1f} s of {top.episode}) and its .srt/.vtt")
    if as_json:
        echo_json(result.to_dict())
        return
    if not result.hits and result.closest:
        click.echo("No exact match; closest:\n")
        for i, hit in enumerate(result.closest, 1):
            click.echo("\n".join(_hit_lines(i, hit)) + "\n")
        return
    if not result.hits:
        click.echo("No matches.")
        return
    for i, hit in enumerate(result.hits, 1):
        click.echo("\n".join(_hit_lines(i, hit)) + "\n")


NOT_DISCUSSED = "Not discussed in the indexed episodes."


@cli.command()
@click.argument("question")
@click.option("-k", "k", default=3, show_default=True, type=click.IntRange(1, 100), help="Supporting passages to show.")
@filter_options
@click.option("--full", is_flag=True, help="Show each supporting passage whole, not a line or two of it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {question, answer: [...], hits: [...], abstained}.")
@click.pass_context
def ask(
    ctx: click.Context,
    question: str,
    k: int,
    mode: str,
    episode: str | None,
    since: str | None,
    until: str | None,
    speaker: str | None,
    full: bool,
    as_json: bool,
) -> None:
    """Answer QUESTION with the sentences that say it, each with its own time, then the passages
    they come from as a line or two around the answer (--full: whole).

    \b
    Examples:
      hmsearch ask "hvad skal salgsafdelingen gøre på sociale medier?"
      hmsearch ask "how fast should we answer customers?" --json
      hmsearch ask "hvor tit skal sælgere poste?" --full
    """
    from ..query import AskRequest, Filters

    result = _answer(ctx, AskRequest(question, k=k, mode=mode, filters=Filters(episode, since, until, speaker)))
    if as_json:
        echo_json(result.to_dict())
        return
    if result.abstained:
        click.echo(NOT_DISCUSSED)
        if not result.hits:
            return
        click.echo("\nClosest passages:")
    else:
        click.echo("Answer:")
        for s in result.answer:
            click.echo(clean(f"  [{fmt_time(s.start)}] {s.text}"))
            click.echo(clean(f"     — {s.title}" + (f"  ▶ {s.link}" if s.link else "")))
        click.echo("\nSupporting passages" + ("" if full else " (whole: --full)") + ":")
    if full:
        for i, hit in enumerate(result.hits, 1):
            click.echo("\n".join(_hit_lines(i, hit)) + "\n")
        return
    from ..query.snippets import query_terms, snippet

    service = service_of(ctx)
    episodes = {e.id: e for e in service.episodes()}
    for i, hit in enumerate(result.hits, 1):
        ep = episodes.get(hit.episode)
        lang = ep.language if ep else None
        snip = snippet(hit, query_terms(question, lang), lang, around=result.answer)
        link = service.link(ep, snip.start) if ep and hit.link else hit.link  # plays from the snippet
        who = f"{snip.speaker}: " if snip.speaker else ""
        lines = [
            clean(f"{i}. {hit.title}  [{fmt_time(snip.start)}]  score {hit.score:.3f}"),
            wrap(who + snip.text),
        ]
        if hit.chapter:
            lines.insert(1, clean(f"   § {hit.chapter}"))
        if link:
            lines.append(clean(f"   ▶ {link}"))
        click.echo("\n".join(lines) + "\n")


@cli.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Keep the model and index loaded for fast repeated searches (Ctrl-C stops it).

    While it runs, `hmsearch search` and `ask` on the same --index-dir are answered by it in
    milliseconds instead of loading the model every time. It listens on a Unix socket in the
    index folder and picks up index updates by itself.

    \b
    Example:
      hmsearch serve &          # once
      hmsearch ask "hvordan måler man leads fra LinkedIn?"
    """
    from ..serve import serve as run_server

    service_of(ctx).check_index()
    run_server(ctx.obj["index_dir"], on_ready=lambda path: err(f"serving {ctx.obj['index_dir']} on {path}"))


@cli.command("eval")
@click.argument("questions", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--mode",
    type=click.Choice([*MODES, "all"]),
    default="all",
    show_default=True,
    help="Search mode to score; 'all' compares the three side by side.",
)
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 100), help="Hits per question.")
@click.option("--split", default=None, help="Score only the questions of this split (e.g. dev, test).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: per mode, metrics per group and per-question ranks.")
@click.pass_context
def eval_(ctx: click.Context, questions: Path, mode: str, k: int, split: str | None, as_json: bool) -> None:
    """Score search on QUESTIONS (JSONL with known answers): R@1, R@5, R@10, MRR@10, nDCG@10,
    overall and per question type and language, and (hybrid) answer@1 / answer@3: the first (or
    one of the first three) sentences `ask` answers with overlaps the answer; abst-P / abst-R: how
    many of ask's refusals were unanswerable questions, and how many of those it refused;
    intro@1: the first answer sentence lies in the episode's first 3 minutes (5 % of a shorter one).

    \b
    A line: {"id", "question", "episode", "start", "end", "type": "topical|known-item|quote",
             "lang", "also": [{"episode", "start", "end"}] (optional), "split" (optional)}
    or, for a question the episodes never answer: {"id", "question", "answerable": false}
    A hit counts when its episode matches and it overlaps the answer span by a second.

    \b
    Examples:
      hmsearch --index-dir index-dev eval benchmarks/data/da_dev/questions.jsonl
      hmsearch eval questions.jsonl --mode hybrid --json
    """
    from ..evaluate import evaluate, load_questions

    qs = load_questions(questions, split=split)
    service = service_of(ctx)
    service.check_index()
    modes = ["lexical", "semantic", "hybrid"] if mode == "all" else [mode]
    reports = []
    show_bar = not ctx.obj["quiet"] and not as_json and sys.stderr.isatty()
    for m in modes:
        if show_bar:
            with click.progressbar(length=len(qs), label=f"{m:8s}", file=sys.stderr) as bar:
                reports.append(evaluate(service, qs, mode=m, k=k, answers=m == "hybrid", progress=bar.update))
        else:
            reports.append(evaluate(service, qs, mode=m, k=k, answers=m == "hybrid"))
    if as_json:
        echo_json({"questions": str(questions), "k": k, "modes": [r.to_dict() for r in reports]})
        return
    metrics = [
        "R@1",
        "R@5",
        "R@10",
        "MRR@10",
        "nDCG@10",
        "answer@1",
        "answer@3",
        "intro@1",
        "refused",
        "abst-P",
        "abst-R",
    ]
    click.echo(f"{'group':<18} {'n':>4} {'mode':<9} " + " ".join(f"{m:>8}" for m in metrics))
    tables = [(r.mode, r.table()) for r in reports]
    for group in tables[0][1]:
        for name, table in tables:
            row = table[group]
            cells = [f"{row[m]:>8.3f}" if m in row else f"{'–':>8}" for m in metrics]
            click.echo(f"{group:<18} {row['n']:>4} {name:<9} " + " ".join(cells))

"""HTML pages of the web app, rendered on the server from the query service's result dataclasses.

No template engine: each page is built from small functions, and every piece of text that comes
from the index (titles, transcripts, ids, the question) goes through ``esc`` on its way in: there
is no other way for data to reach the markup. The pages carry no inline script or style (the
Content-Security-Policy forbids both); ``/static/app.js`` only enhances playback and read-along,
so search results, links and the episode page all work without JavaScript.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Protocol
from urllib.parse import quote, urlsplit

from ..query.links import episode_href, http_url
from ..query.snippets import query_terms, snippet
from ..text import analyze
from ..types import AnswerSentence, Episode, Hit, Sentence

_WORD = re.compile(r"\w+(?:[-'’]\w+)*", re.UNICODE)


def esc(value: object) -> str:
    """Text for HTML content or a double-quoted attribute."""
    return html.escape(str(value), quote=True)


def clock(seconds: float) -> str:
    """[mm:ss] under an hour, [h:mm:ss] from there (floored: a jump lands before the first word)."""
    s = int(max(0.0, seconds))
    h, m, sec = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def date_html(iso: str | None) -> str:
    """A date as <time datetime="ISO">ISO</time>: app.js shows it in the reader's own locale."""
    return f'<time datetime="{esc(iso)}">{esc(iso)}</time>' if iso else ""


def duration_text(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600} h {s // 60 % 60:02d} min" if s >= 3600 else f"{s // 60} min {s % 60:02d} s"


_HOST_NAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def origin(url: str) -> str | None:
    """The CSP source of an http(s) URL's origin (``https://host[:port]``), or None when its host is
    not a plain DNS name: a feed chooses the URL, and nothing it writes may add a directive to the
    page's policy (``;``, quotes, spaces) or make the header unencodable (an IDN host is sent as
    its ASCII form, which is what browsers match)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    try:
        host, port = parts.hostname, parts.port
        ascii_host = host.encode("idna").decode("ascii") if host else ""
    except (ValueError, UnicodeError):
        return None
    if not _HOST_NAME.fullmatch(ascii_host.lower()):
        return None
    return f"{parts.scheme}://{ascii_host.lower()}" + (f":{port}" if port else "")


def audio_src(episode: Episode) -> str | None:
    """Where the page's player gets an episode's audio: the app's own /audio/ID for a local file,
    the feed's enclosure URL for a feed episode, nothing otherwise."""
    if episode.audio:
        return f"/audio/{quote(episode.id, safe='')}"
    return http_url(episode.enclosure)


def highlight(text: str, terms: frozenset[str], lang: str | None) -> str:
    """``text`` escaped, with the words whose stem is one of ``terms`` in <mark>."""
    if not terms:
        return esc(text)
    out, pos = [], 0
    for m in _WORD.finditer(text):
        stems = analyze(m.group(0), lang)
        if stems and stems[0] in terms:
            out.append(esc(text[pos : m.start()]))
            out.append(f"<mark>{esc(m.group(0))}</mark>")
            pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


@dataclass(frozen=True)
class SearchForm:
    """What the search box and filters hold (echoed back into the form)."""

    q: str = ""
    episode: str = ""
    since: str = ""
    until: str = ""


def layout(title: str, body: str, *, page_class: str = "") -> str:
    return (
        "<!doctype html>\n"
        '<html lang="da">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n"
        '<link rel="stylesheet" href="/static/app.css">\n'
        '<link rel="icon" href="/static/icon.svg" type="image/svg+xml">\n'
        '<link rel="manifest" href="/static/manifest.webmanifest">\n'
        '<meta name="theme-color" content="#0b57d0">\n'
        '<script src="/static/app.js" defer></script>\n'
        "</head>\n"
        f'<body class="{esc(page_class)}">\n'
        '<a class="skip" href="#main">Skip to content</a>\n'
        '<header class="top"><a class="brand" href="/">hmsearch</a>'
        '<nav aria-label="Site"><a href="/episodes">Episodes</a> <a href="/api/openapi.json">API</a></nav></header>\n'
        f'<main id="main">\n{body}\n</main>\n'
        "</body>\n</html>\n"
    )


def _search_form(form: SearchForm, episodes: Sequence[Episode], max_query: int) -> str:
    options = ['<option value="">All episodes</option>']
    for ep in episodes:
        selected = " selected" if ep.id == form.episode else ""
        options.append(f'<option value="{esc(ep.id)}"{selected}>{esc(ep.title)}</option>')
    filtered = bool(form.episode or form.since or form.until)
    summary = "Filters (on)" if filtered else "Filters"
    return (
        '<form class="search" role="search" action="/" method="get">\n'
        '<label for="q">Ask a question, or search a "quoted phrase" (Danish or English)</label>\n'
        '<div class="box">'
        f'<input id="q" name="q" type="search" value="{esc(form.q)}" maxlength="{max_query}" '
        'required autocomplete="off" placeholder="Hvad skal salgsafdelingen gøre på sociale medier?">'
        '<button type="submit">Search</button></div>\n'
        # folded away unless one is set: on a phone open filters pushed the answer below the fold
        f'<details class="filters-box"{" open" if filtered else ""}><summary>{summary}</summary>'
        '<fieldset class="filters"><legend class="sr">Filters</legend>\n'
        f'<label for="episode">Episode</label> <select id="episode" name="episode">{"".join(options)}</select>\n'
        f'<label for="since">From</label> <input id="since" name="since" type="date" value="{esc(form.since)}">\n'
        f'<label for="until">To</label> <input id="until" name="until" type="date" value="{esc(form.until)}">\n'
        "</fieldset></details>\n</form>\n"
    )


SPEEDS = ("0.75", "1", "1.25", "1.5", "1.75", "2")


def _controls(*, sentence: bool = False) -> str:
    """Skip, speed and share (this second; on the episode page also this sentence): buttons only
    script can work, so hidden until app.js shows them."""
    speeds = "".join(f'<option value="{v}"{" selected" if v == "1" else ""}>{v}×</option>' for v in SPEEDS)
    return (
        '<div class="controls" id="controls" hidden>'
        '<button type="button" id="back15"><span aria-hidden="true">↺</span> 15 s<span class="sr"> back</span></button>'
        '<button type="button" id="fwd30">30 s<span class="sr"> forward</span> <span aria-hidden="true">↻</span></button>'
        f'<label for="speed">Speed</label> <select id="speed">{speeds}</select>'
        '<button type="button" id="share">Share this moment</button>'
        + ('<button type="button" id="share-sentence">Share this sentence</button>' if sentence else "")
        + '<span id="share-out" role="status" aria-live="polite"></span>'
        '<details class="keys"><summary>Keys</summary><p><kbd>/</kbd> search · <kbd>Space</kbd> play/pause · '
        "<kbd>j</kbd>/<kbd>k</kbd> next/previous sentence or result · <kbd>←</kbd>/<kbd>→</kbd> 15 s back/30 s on</p></details>"
        "</div>"
    )


def _player() -> str:
    # Hidden until app.js takes over the result links (without script they open the episode page).
    return (
        '<div class="player-bar" id="player-bar" hidden>'
        '<audio id="player" controls preload="none"></audio>'
        f'{_controls()}<p id="now-playing" aria-live="polite"></p></div>\n'
    )


def _speaker(item: object) -> str:
    """``Name: `` when the item carries a speaker (issue 24 adds them; absent before)."""
    name = getattr(item, "speaker", None)
    return f'<span class="speaker">{esc(name)}:</span> ' if name else ""


def _play_attrs(episode: Episode, start: float, end: float) -> str:
    src = audio_src(episode)
    attrs = (
        f' data-start="{start:.3f}" data-end="{end:.3f}" data-title="{esc(episode.title)}"'
        f' data-episode="{esc(episode.id)}"'
    )
    return attrs + (f' data-audio="{esc(src)}"' if src else "")


def episodes_table(episodes: Sequence[Episode]) -> str:
    if not episodes:
        return "<p>No episodes are indexed yet: run <code>hmsearch index AUDIO_OR_TRANSCRIPTS</code>.</p>"
    rows = [
        f'<tr><td><a href="{esc(episode_href(ep.id))}">{esc(ep.title)}</a></td>'
        f"<td>{date_html(ep.published)}</td><td>{esc(duration_text(ep.duration))}</td>"
        f"<td>{ep.n_passages}</td></tr>"
        for ep in episodes
    ]
    return (
        '<table class="episodes"><caption>Indexed episodes</caption>'
        '<thead><tr><th scope="col">Title</th><th scope="col">Published</th>'
        '<th scope="col">Length</th><th scope="col">Passages</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def search_page(
    form: SearchForm,
    episodes: Sequence[Episode],
    *,
    answer: Sequence[AnswerSentence] = (),
    hits: Sequence[Hit] = (),
    max_query: int = 500,
    asked: bool = False,
) -> str:
    """The home page: the box and filters; after a question, the answer sentences and the hits
    grouped by episode; before one, the episodes list."""
    by_id = {ep.id: ep for ep in episodes}
    parts = [_search_form(form, episodes, max_query), _player()]
    if not asked:
        parts.append(episodes_table(episodes))
        return layout("hmsearch", "".join(parts), page_class="search-page")
    if answer:
        items = []
        for s in answer:
            ep = by_id.get(s.episode)
            if ep is None:
                continue
            items.append(
                f'<li><a class="play" href="{esc(episode_href(s.episode, s.start, s.end))}"{_play_attrs(ep, s.start, s.end)}>'
                f'<span class="ts">[{clock(s.start)}]</span></a> {_speaker(s)}<q>{esc(s.text)}</q> '
                f'<span class="from">— <a href="{esc(episode_href(s.episode, s.start, s.end))}">{esc(s.title)}</a></span></li>'
            )
        parts.append(
            '<section class="answer" aria-labelledby="answer-h"><h2 id="answer-h">Answer</h2>'
            f'<ol class="answer-list">{"".join(items)}</ol></section>'
        )
    elif hits:  # nothing close enough to answer with: say so, and show the closest passages
        parts.append(
            '<section class="answer abstained" aria-labelledby="answer-h"><h2 id="answer-h">Answer</h2>'
            '<p role="status">Not discussed in the indexed episodes. The closest passages:</p></section>'
        )
    if not hits:
        parts.append('<p class="none" role="status">No matches in the index.</p>')
        return layout(f"{form.q} – hmsearch", "".join(parts), page_class="search-page")
    groups: dict[str, list[Hit]] = {}
    for h in hits:
        groups.setdefault(h.episode, []).append(h)
    sections = []
    for episode_id, group in groups.items():
        ep = by_id.get(episode_id)
        if ep is None:
            continue
        terms = query_terms(form.q, ep.language)
        items = []
        for h in group:
            snip = snippet(h, terms, ep.language, around=answer)  # read around the answer's sentences
            href = episode_href(h.episode, snip.start, snip.end)
            why = "matches your words" if snip.by_words else "related in meaning"
            who = f'<span class="speaker">{esc(snip.speaker)}:</span> ' if snip.speaker else ""
            chapter = f' <span class="chapter-name">{esc(h.chapter)}</span>' if h.chapter else ""
            whole = ""
            if h.sentences and snip.text != h.text:
                whole = (
                    f'<details class="whole"><summary>Whole passage [{clock(h.start)}–{clock(h.end)}]</summary>'
                    f'<p class="passage">{highlight(h.text, terms, ep.language)}</p></details>'
                )
            items.append(
                f'<li class="hit"><a class="play" href="{esc(href)}"{_play_attrs(ep, snip.start, snip.end)}>'
                f'<span class="ts">[{clock(snip.start)}]</span><span class="sr"> play from here</span></a> '
                f'<span class="why">{why}</span>{chapter}'
                f'<p class="snippet">{who}{highlight(snip.text, terms, ep.language)}</p>{whole}'
                f'<a class="read" href="{esc(episode_href(h.episode, h.start, h.end))}">Read along</a></li>'
            )
        date = f' <span class="date">{date_html(ep.published)}</span>' if ep.published else ""
        sections.append(
            f'<article class="episode-group"><h3><a href="{esc(episode_href(ep.id))}">{esc(ep.title)}</a>{date}</h3>'
            f'<ol class="hits">{"".join(items)}</ol></article>'
        )
    parts.append(
        f'<section class="results" aria-labelledby="results-h"><h2 id="results-h">Results</h2>{"".join(sections)}</section>'
    )
    return layout(f"{form.q} – hmsearch", "".join(parts), page_class="search-page")


def asked_span(sentences: Sequence[Sentence], t: float | None, end: float | None) -> tuple[int, int]:
    """Indices [first, last] of the sentences that the passage asked for covers: those overlapping
    [t, end), or the one being said at t (the next one when t falls in a pause); (-1, -1) for none."""
    if t is None or not sentences:
        return -1, -1
    if end is not None and end > t:
        inside = [i for i, s in enumerate(sentences) if s.end > t + 0.05 and s.start < end - 0.05]
        if inside:
            return inside[0], inside[-1]
    for i, s in enumerate(sentences):
        if s.end > t:
            return i, i
    return len(sentences) - 1, len(sentences) - 1


class ChapterLike(Protocol):
    """What the page reads of a chapter (the service's ``chapters`` gives host/chapters.Chapter)."""

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...

    @property
    def title(self) -> str: ...


DOWNLOADS = {"vtt": "WebVTT", "srt": "SRT", "json": "JSON", "txt": "Text"}


def download_href(episode_id: str, format_: str) -> str:
    """The transcript as a file: /download/FORMAT/ID (the id last, so any id, slashes and all, maps
    to exactly one URL and never shadows an episode page)."""
    return f"/download/{format_}/{quote(episode_id, safe='')}"


def source_note(episode: Episode) -> str:
    """Where the transcript came from, in words: the feed or file, and Whisper's model or the
    transcript file's format."""
    how = episode.transcript_source or ""
    if how.startswith("whisper:"):
        made = f"transcribed by Whisper ({how.partition(':')[2]})"
    elif how:
        made = f"read from a {how.upper() if len(how) <= 4 else how} transcript"
    else:
        made = "transcript"
    if http_url(episode.enclosure) or http_url(episode.url):
        where = "an episode of a feed"
    else:
        where = f"the file {PurePath(episode.source).name}" if episode.source else "a file"
    return f"{made[0].upper()}{made[1:]}, from {where}" + (f"; language {episode.language}" if episode.language else "")


def _chapters(episode: Episode, chapters: Sequence[ChapterLike]) -> str:
    if not chapters:
        return ""
    items = [
        f'<li><a class="chapter" href="{esc(episode_href(episode.id, c.start))}" data-start="{c.start:.3f}" '
        f'data-end="{c.end:.3f}"><span class="ts">[{clock(c.start)}]</span> {esc(c.title)}</a></li>'
        for c in chapters
    ]
    return (
        f'<details class="chapters" open><summary><h2 id="chapters-h">Chapters ({len(chapters)})</h2></summary>'
        f'<ol id="chapters" aria-labelledby="chapters-h">{"".join(items)}</ol></details>'
    )


def _find_in_episode(episode: Episode, max_query: int) -> str:
    return (
        '<form class="find" role="search" action="/" method="get">'
        f'<input type="hidden" name="episode" value="{esc(episode.id)}">'
        '<label for="find-q">Search this episode</label> '
        f'<input id="find-q" name="q" type="search" maxlength="{max_query}" required autocomplete="off">'
        '<button type="submit">Find</button></form>'
    )


def _downloads(episode: Episode) -> str:
    links = " ".join(
        f'<a href="{esc(download_href(episode.id, fmt))}" download>{name}</a>' for fmt, name in DOWNLOADS.items()
    )
    return f'<p class="downloads">Download the transcript: {links}</p>'


def episode_page(
    episode: Episode,
    sentences: Sequence[Sentence],
    *,
    t: float | None,
    end: float | None,
    chapters: Sequence[ChapterLike] = (),
    max_query: int = 500,
) -> str:
    """The whole transcript with timestamps, the passage asked for highlighted (and scrolled to by
    its fragment or by app.js), each sentence a link that seeks there; above it the chapters, a
    search within the episode, the transcript as files and where it came from."""
    first, last = asked_span(sentences, t, end)
    src = audio_src(episode)
    start_at = t if t is not None else 0.0
    meta = [esc(duration_text(episode.duration))]
    if episode.published:
        meta.insert(0, date_html(episode.published))
    page = http_url(episode.url)
    if page:
        meta.append(f'<a href="{esc(page)}" rel="noopener noreferrer">Episode page</a>')
    if src:
        fragment = f"#t={start_at:.3f}" if t is not None else ""
        player = (
            f'<div class="player-bar episode-player"><audio id="player" controls preload="metadata" '
            f'src="{esc(src + fragment)}" data-start="{start_at:.3f}"></audio>{_controls(sentence=True)}'
            '<label class="follow"><input type="checkbox" id="follow" checked> Follow the transcript</label></div>'
        )
    else:
        player = '<p class="no-audio">No audio for this episode in the index.</p>'
    items = []
    speaker = None
    for i, s in enumerate(sentences):
        cls = "sentence asked" if first <= i <= last and first >= 0 else "sentence"
        # a speaker's name where their turn begins (Sentence.speaker arrives with issue 24)
        said_by = getattr(s, "speaker", None)
        turn = _speaker(s) if said_by and said_by != speaker else ""
        speaker = said_by
        if turn:
            cls += " turn"
        href = episode_href(episode.id, s.start) + f"#s-{i}"
        items.append(
            f'<li id="s-{i}" class="{cls}" data-start="{s.start:.3f}" data-end="{s.end:.3f}">'
            f'<a class="ts" href="{esc(href)}" aria-label="Play from {clock(s.start)}">[{clock(s.start)}]</a> '
            f'{turn}<span class="text">{esc(s.text)}</span></li>'
        )
    asked = f' data-asked="s-{first}"' if first >= 0 else ""
    body = (
        f'<article class="episode" data-episode="{esc(episode.id)}">'
        f"<h1>{esc(episode.title)}</h1>"
        f'<p class="meta">{" · ".join(meta)}</p>'
        f'<p class="source">{esc(source_note(episode))}</p>'
        f"{player}"
        f"{_chapters(episode, chapters)}"
        f'<div class="tools">{_find_in_episode(episode, max_query)}{_downloads(episode)}</div>'
        f'<h2 class="sr">Transcript</h2>'
        f'<ol class="transcript" id="transcript"{asked}>{"".join(items)}</ol></article>'
    )
    return layout(f"{episode.title} – hmsearch", body, page_class="episode-page")


def episodes_page(episodes: Sequence[Episode]) -> str:
    return layout("Episodes – hmsearch", f"<h1>Episodes</h1>{episodes_table(episodes)}", page_class="episodes-page")


def _did_you_mean(episodes: Sequence[Episode]) -> str:
    if not episodes:
        return ""
    items = "".join(f'<li><a href="{esc(episode_href(e.id))}">{esc(e.title)}</a> ({esc(e.id)})</li>' for e in episodes)
    return f'<p>Did you mean:</p><ul class="suggest">{items}</ul>'


def error_page(status: int, message: str, *, q: str = "", max_query: int = 500, suggest: Sequence[Episode] = ()) -> str:
    """The error in one line, the episodes meant when an id was mistyped, and the search box
    holding the question that was asked (if any)."""
    titles = {400: "Bad request", 404: "Not found", 429: "Too many requests", 503: "Index unavailable"}
    title = titles.get(status, "Error")
    q = q[:max_query].replace("\x00", "")
    box = (
        '<form class="search" role="search" action="/" method="get">'
        '<label for="q">Search again</label><div class="box">'
        f'<input id="q" name="q" type="search" value="{esc(q)}" maxlength="{max_query}" required autocomplete="off">'
        '<button type="submit">Search</button></div></form>'
    )
    body = (
        f'<h1>{esc(title)}</h1><p class="error" role="alert">{esc(message)}</p>{_did_you_mean(suggest)}{box}'
        '<p><a href="/">Back to search</a></p>'
    )
    return layout(f"{title} – hmsearch", body, page_class="error-page")

"""`hmsearch speakers`: who speaks when in an episode, and names for its speakers."""

from __future__ import annotations

import click

from . import cli
from ._common import clean, echo_json, err, fmt_time, service_of, store_of

QUOTE_CHARS = 90


@cli.command()
@click.argument("episode")
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="SPEAKER=NAME",
    help='Name a speaker of this episode, e.g. --name S1="Anne Hansen" (repeatable; kept in the index folder).',
)
@click.option(
    "--detect",
    is_flag=True,
    help="Find the turns now from the episode's audio (for an episode indexed without them; no Whisper).",
)
@click.option(
    "--recognise",
    is_flag=True,
    help="Name the speakers whose voice was named in another episode (the index's voice registry; needs the audio).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: episode, speakers [{id, name}], turns.")
@click.pass_context
def speakers(
    ctx: click.Context, episode: str, names: tuple[str, ...], detect: bool, recognise: bool, as_json: bool
) -> None:
    """Speaker turns of EPISODE: who speaks when, with a sample of what each turn says.

    Audio episodes get their turns when they are indexed (voices told apart by resemblyzer's
    speaker encoder, speakers S1, S2, ... in order of appearance); imported WebVTT/JSON transcripts
    keep their own voices. A feed's <podcast:person> hosts and guests name the speakers of its
    episodes by themselves (README: "Who speaks"); --json lists those persons too. Naming a
    speaker of an episode whose audio is here also registers the voice, and --recognise names it
    in other episodes.

    \b
    Examples:
      hmsearch speakers hm-sample-001
      hmsearch speakers hm-sample-001 --name S1="Anne Hansen" --name S2="Bo Jensen"
      hmsearch speakers hm-sample-001 --json
      hmsearch speakers old-episode --detect          # an episode indexed before speaker turns
      hmsearch speakers next-episode --recognise      # the host named in an earlier one
    """
    from ..errors import InputError
    from ..speakers.names import parse_naming, save_names
    from ..speakers.voices import recognise_episode, register_named
    from ..types import Turn

    service = service_of(ctx)
    if detect:
        from ..ingest.speakers import detect_episode_speakers, name_from_feed
        from ._common import indexing_encoder

        service.episode(episode)  # NotFoundError before any model loads
        with store_of(ctx).writing() as store:
            detect_episode_speakers(store, indexing_encoder(store, None), episode)
            named = name_from_feed(store, episode)  # the feed's <podcast:person>, as `update` does
        if named and not ctx.obj["quiet"]:
            err(f"named from the feed: {', '.join(f'{k}={v}' for k, v in named.items())}")
    found = service.speakers(episode)
    if names:
        given = dict(parse_naming(n) for n in names)
        known = {i for i, _ in found.speakers}
        unknown = sorted(set(given) - known)
        if unknown:
            have = ", ".join(sorted(known)) or "none: the episode has no speaker turns"
            raise InputError(f"{episode} has no speaker {', '.join(unknown)} (its speakers: {have})")
        with store_of(ctx).writing() as store:
            save_names(store.root, episode, given)
            audio = service.episode(episode).audio
            turns = [Turn(t.start, t.end, t.speaker) for t in found.turns]
            if _speakers_here() and not register_named(store.root, audio, turns, given) and not ctx.obj["quiet"]:
                err("note: the voices were not registered (the episode's audio is not on this machine)")
        found = service.speakers(episode)
    if recognise:
        if not _speakers_here():
            raise InputError("--recognise needs resemblyzer: `uv pip install 'hmsearch[speakers]'`")
        turns = [Turn(t.start, t.end, t.speaker) for t in found.turns if t.name is None]
        with store_of(ctx).writing() as store:
            heard = recognise_episode(store.root, service.episode(episode).audio, turns)
            if heard:
                save_names(store.root, episode, heard)
        if not ctx.obj["quiet"]:
            err(f"recognised: {', '.join(f'{k}={v}' for k, v in heard.items()) or 'no registered voice'}")
        found = service.speakers(episode)
    if as_json:
        echo_json(found.to_dict())
        return
    if not found.turns:
        click.echo(f"{episode}: no speaker turns (indexed without speakers, or a transcript without voices)")
        return
    for sid, name in found.speakers:
        label = f"{sid} ({name})" if name and name != sid else sid
        click.echo(f"{label}: {fmt_time(found.seconds(sid))} in {sum(t.speaker == sid for t in found.turns)} turns")
    click.echo()
    for t in found.turns:
        who = t.name or t.speaker
        quote = clean(t.quote)
        if len(quote) > QUOTE_CHARS:
            quote = quote[: QUOTE_CHARS - 1].rstrip() + "…"
        click.echo(f"{fmt_time(t.start)}-{fmt_time(t.end)}  {who}: {quote}")


def _speakers_here() -> bool:
    from ..speakers import speakers_available

    return speakers_available()

"""Commands that make transcripts: transcribe (audio -> JSON/SRT/VTT/TXT), whisper-convert."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import EXIT_SOME_FAILED, HmsearchError
from ..formats import FORMATS
from . import cli
from ._common import err, greedy_option, language_option, transcriber_spec, whisper_model_option


@cli.command()
@click.argument("audio", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "format_",
    type=click.Choice(list(FORMATS)),
    default="json",
    show_default=True,
    help="Transcript format to write.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write transcripts here [default: beside each audio file].",
)
@whisper_model_option
@language_option
@greedy_option
@click.pass_context
def transcribe(
    ctx: click.Context,
    audio: tuple[Path, ...],
    format_: str,
    out_dir: Path | None,
    whisper_model: str | None,
    whisper_engine: str | None,
    language: str | None,
    greedy: bool,
) -> None:
    """Transcribe AUDIO files with Whisper into <stem>.<format> (for show notes or subtitles).

    Transcripts already made for the same audio and model (by `index` or an earlier
    `transcribe`) are reused from the index folder.

    \b
    Examples:
      hmsearch transcribe audio/episode.mp3 --format srt
      hmsearch transcribe audio/*.mp3 --format vtt --out-dir subtitles/ --language da
    """
    from ..asr import load_transcriber
    from ..asr.store import transcribe_cached
    from ..audio import file_hash
    from ..formats import write_transcript

    quiet = ctx.obj["quiet"]
    transcriber = load_transcriber(transcriber_spec(whisper_model, whisper_engine, language, greedy))
    transcriber.resolve()  # fail once, up front, when the model cannot be had
    cache_dir = ctx.obj["index_dir"] / "transcripts"
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    show_progress = not quiet and sys.stderr.isatty()
    for path in audio:
        try:
            transcript = transcribe_cached(path, file_hash(path), transcriber, cache_dir, show_progress=show_progress)
            target = (out_dir or path.parent) / f"{path.stem}.{format_}"
            write_transcript(transcript, target, format_)
            if not quiet:
                err(f"wrote {target} ({len(transcript.segments)} segments, language {transcript.language})")
        except HmsearchError as exc:
            failed += 1
            err(f"Error: {exc}")
    if failed:
        if len(audio) > 1:
            err(f"{len(audio) - failed} transcribed, {failed} failed")
        ctx.exit(EXIT_SOME_FAILED if failed < len(audio) else 2)


@cli.command("whisper-convert")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--quantization",
    default="int8",
    show_default=True,
    type=click.Choice(["int8", "int8_float16", "float16", "bfloat16", "float32", "none"]),
    help="How the weights are stored (the compute type at load time may differ).",
)
@click.option("--force", is_flag=True, help="Overwrite a non-empty OUT_DIR.")
@click.pass_context
def whisper_convert(ctx: click.Context, checkpoint: Path, out_dir: Path, quantization: str, force: bool) -> None:
    """Convert an openai-whisper checkpoint (.pt) into a CTranslate2 model folder for
    --whisper-engine faster-whisper, offline (needs torch and transformers).

    \b
    Example:
      hmsearch whisper-convert ~/models/small.pt ~/models/small-ct2
      hmsearch index audio/ --whisper-engine faster-whisper --whisper-model ~/models/small-ct2
    """
    from ..asr.convert import convert_openai_checkpoint

    out = convert_openai_checkpoint(checkpoint, out_dir, None if quantization == "none" else quantization, force=force)
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    if not ctx.obj["quiet"]:
        err(f"{out}: CTranslate2 Whisper model, {size:.0f} MB")

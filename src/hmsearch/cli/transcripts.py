"""Commands that make transcripts: transcribe (audio -> JSON/SRT/VTT/TXT), whisper-convert, and
eval-asr (how well a Whisper configuration transcribes a dataset with reference texts)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..config import TRANSCRIPT_FORMATS as FORMATS
from ..errors import EXIT_SOME_FAILED, HmsearchError, InputError
from . import cli
from ._common import (
    clean,
    echo_json,
    err,
    greedy_option,
    language_option,
    transcriber_spec,
    whisper_model_option,
)


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
@click.option("--force", is_flag=True, help="Overwrite a transcript that is already there.")
@whisper_model_option
@language_option
@greedy_option
@click.pass_context
def transcribe(
    ctx: click.Context,
    audio: tuple[Path, ...],
    format_: str,
    out_dir: Path | None,
    force: bool,
    whisper_model: str | None,
    whisper_engine: str | None,
    language: str | None,
    greedy: bool,
) -> None:
    """Transcribe AUDIO files with Whisper into <stem>.<format> (for show notes or subtitles).

    SRT and WebVTT are cut for players: cues of at most two lines of 42 characters, 1-7 s on
    screen, split at word times.

    Transcripts already made for the same audio and model (by `index` or an earlier
    `transcribe`) are reused from the index folder. A file already at the target (such as
    a transcript that came with the episode, which `index` prefers) is left alone unless
    --force is given.

    \b
    Examples:
      hmsearch transcribe audio/episode.mp3 --format srt
      hmsearch transcribe audio/*.mp3 --format vtt --out-dir subtitles/ --language da
    """
    from ..asr import load_transcriber
    from ..asr.store import transcribe_cached
    from ..audio import file_hash
    from ..formats import write_transcript
    from ..host.subtitles import write_subtitles
    from ..speakers import speakers_enabled, transcript_with_speakers

    quiet = ctx.obj["quiet"]
    transcriber = load_transcriber(transcriber_spec(whisper_model, whisper_engine, language, greedy))
    transcriber.resolve()  # fail once, up front, when the model cannot be had
    if transcriber.notice and not quiet:
        err(f"note: {transcriber.notice}")
    cache_dir = ctx.obj["index_dir"] / "transcripts"
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    show_progress = not quiet and sys.stderr.isatty()
    for path in audio:
        try:
            target = (out_dir or path.parent) / f"{path.stem}.{format_}"
            if (target.exists() or target.is_symlink()) and not force:
                raise InputError(f"{clean(str(target))} exists: pass --force to overwrite it, or --out-dir")
            transcript = transcribe_cached(path, file_hash(path), transcriber, cache_dir, show_progress=show_progress)
            if speakers_enabled():  # VTT gets <v S1> voices, JSON "speaker" fields (setting speakers)
                transcript = transcript_with_speakers(transcript, path)
            if format_ in ("srt", "vtt"):  # player-ready cues (host/subtitles.py), not one per segment
                write_subtitles(transcript, target, format_)
            else:
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


@cli.command("eval-asr")
@click.argument("dataset", type=click.Path(path_type=Path))
@whisper_model_option
@language_option
@click.option(
    "--compute-type",
    metavar="TYPE",
    default=None,
    help="faster-whisper weights at run time: int8, int8_float32, float32, bfloat16, … [default: int8] "
    "(openai-whisper always runs float32 on the CPU).",
)
@click.option(
    "--beam-size",
    default=None,
    type=click.IntRange(1, 16),
    help="Beams per decode [default: 5 with faster-whisper, 1 with openai-whisper, where beams cost ~5x the CPU].",
)
@click.option(
    "--vad/--no-vad",
    default=None,
    help="faster-whisper only: skip what Silero VAD hears as silence before decoding [default: on].",
)
@click.option(
    "--condition-on-previous-text/--no-condition-on-previous-text",
    default=False,
    show_default=True,
    help="Prompt each 30 s window with the text before it (Whisper's default; can seed repetition loops).",
)
@greedy_option
@click.option(
    "--only",
    multiple=True,
    metavar="NAME",
    help="Evaluate only this item (audio stem or file name); repeat for more.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report (per item and totals, with texts) as JSON.")
@click.pass_context
def eval_asr(
    ctx: click.Context,
    dataset: Path,
    whisper_model: str | None,
    whisper_engine: str | None,
    language: str | None,
    compute_type: str | None,
    beam_size: int | None,
    vad: bool | None,
    condition_on_previous_text: bool,
    greedy: bool,
    only: tuple[str, ...],
    as_json: bool,
) -> None:
    """Measure Whisper on DATASET: WER, CER, heard language, real-time factor (wall
    and CPU time / audio time), peak memory and repetition loops, per item and in total.

    DATASET is a TSV manifest (audio file <TAB> reference text, paths relative to it; a
    header with file/audio and reference/text columns is understood), a folder of
    <stem>.<audio> + <stem>.txt pairs, or a folder holding one TSV. A timed transcript
    (<stem>.json/.srt/.vtt, exact sentence times as scripts/make_sample.py writes) as the
    reference also scores where each sentence starts (median and 90th percentile). Text is compared
    lower-cased, without punctuation, numbers as digits. In a LibriVoxDansk folder the
    references are approximate (intro/outro not in the text, 1800s spelling): "trim WER"
    leaves out the hypothesis outside the stretch aligned with the text. Whisper is told the
    references' language, as a podcast's is known (--language auto: it detects the language).

    \b
    Examples:
      hmsearch eval-asr data/nst_danspeech/refs.tsv --whisper-model base
      hmsearch eval-asr data/nst_danspeech/refs.tsv --whisper-engine openai --language auto
      hmsearch eval-asr audio/          # the sample episode: its JSON has exact sentence times
      hmsearch eval-asr clips/ --whisper-engine faster-whisper --beam-size 1 --language da
      hmsearch eval-asr data/librivox_dansk --whisper-engine faster-whisper --no-vad \\
          --only prindsessen_paa_ærten --json > librivox.json
    """
    from ..asr import ENGINES, DecodeOptions, TranscriberSpec, engine_class, language_code
    from ..asr.evaluate import evaluate_asr, read_dataset
    from ..config import setting

    engine = setting("whisper_engine", whisper_engine)
    accepts = engine_class(engine)
    if compute_type is not None and compute_type not in accepts.compute_types:
        if len(accepts.compute_types) == 1:
            others = " or ".join(n for n, c in ENGINES.items() if len(c.compute_types) > 1)
            raise InputError(
                f"--compute-type is for --whisper-engine {others} ({engine} runs {accepts.compute_types[0]})"
            )
        raise InputError(f"unknown compute type '{compute_type}'; use one of {', '.join(accepts.compute_types)}")
    if vad and not accepts.vad:
        raise InputError(f"--vad is for --whisper-engine {' or '.join(n for n, c in ENGINES.items() if c.vad)}")
    data = read_dataset(dataset, only=only)  # a bad dataset fails before a model is loaded
    spoken = setting("language", language)
    if spoken is None:
        # As a podcast's language is known (its feed's <language>, or the user's setting), the
        # dataset's is: its references'. `--language auto` measures Whisper's own detection.
        from ..text import guess_language

        spoken = guess_language(" ".join(item.reference for item in data.items))
    spec = TranscriberSpec(
        model=setting("whisper_model", whisper_model),
        engine=engine,
        language=language_code(spoken),
        compute_type=compute_type or accepts.compute_types[0],
        decode=DecodeOptions(
            greedy=greedy,
            beam_size=beam_size,
            vad_filter=DecodeOptions.vad_filter if vad is None else vad,
            condition_on_previous_text=condition_on_previous_text,
        ),
    )
    quiet = ctx.obj["quiet"]

    def progress(r: Any) -> None:
        if not quiet:
            err(f"{r.name}: WER {r.wer:.1%}, {r.language}, {r.transcribe_seconds:.1f} s for {r.audio_seconds:.1f} s")

    report = evaluate_asr(list(data.items), spec, dataset=data.name, note=data.note, on_item=progress)
    if report.notice and not quiet:
        err(f"note: {report.notice}")
    if as_json:
        echo_json(report.to_dict())
        return
    _print_asr_report(report)


def _print_asr_report(report: Any) -> None:
    from ..asr import engine_class

    trimmed = report.wer_trimmed is not None
    width = max(12, *(len(r.name) for r in report.items))
    head = f"{'item':<{width}} {'audio s':>8} {'words':>6} {'WER':>7} {'CER':>7}"
    head += f" {'trim WER':>8}" if trimmed else ""
    click.echo(head + f" {'lang':>5} {'RTF':>6} {'CPU-RTF':>7} {'loops':>5}")
    for r in report.items:
        line = f"{clean(r.name):<{width}} {r.audio_seconds:8.1f} {r.ref_words:6d} {r.wer:7.1%} {r.cer:7.1%}"
        if trimmed:
            line += f" {r.wer_trimmed:8.1%}" if r.wer_trimmed is not None else f" {'':8}"
        cpu_rtf = r.cpu_seconds / r.audio_seconds if r.audio_seconds else 0.0
        click.echo(line + f" {r.language or '?':>5} {r.rtf:6.2f} {cpu_rtf:7.2f} {r.loops:5d}")
    ref_words = sum(r.ref_words for r in report.items)
    expected = report.expected_language
    lang = f"{report.language_correct}/{len(report.items)} {expected}" if expected else "?"
    line = f"{'all':<{width}} {report.audio_seconds:8.1f} {ref_words:6d} {report.wer:7.1%} {report.cer:7.1%}"
    line += f" {report.wer_trimmed:8.1%}" if trimmed else ""
    click.echo(line + f" {lang:>5} {report.rtf:6.2f} {report.cpu_rtf:7.2f} {report.loops:5d}")
    spec, decode = report.spec, report.spec["decode"]
    how = [
        f"beam {decode['beam_size']}",
        "greedy" if decode["greedy"] else "temperature fallback",
        *(("VAD" if decode["vad_filter"] else "no VAD",) if engine_class(spec["engine"]).vad else ()),
        "conditioned" if decode["condition_on_previous_text"] else "not conditioned",
    ]
    click.echo(
        f"{report.model_id} ({spec['engine']}, {spec['compute_type']}, language {spec['language'] or 'auto'}; "
        f"{', '.join(how)}): load {report.load_seconds:.1f} s, peak RSS {report.peak_rss_mb:.0f} MB, "
        f"{report.cpus} CPUs, load average {report.load_average[0]:.1f}→{report.load_average[1]:.1f}"
    )
    if report.sentence_start:
        st = report.sentence_start
        click.echo(
            f"sentence starts: median |error| {st['median_abs']} s, 90th percentile {st['p90_abs']} s, "
            f"mean {st['mean_signed']:+} s over {st['sentences'] - st['missed']} of {st['sentences']} sentences"
            + (f" ({st['missed']} with no word heard)" if st["missed"] else "")
            if st["median_abs"] is not None
            else f"sentence starts: no word heard in any of {st['sentences']} sentences"
        )
    if report.languages and len(report.languages) > 1:
        click.echo("languages detected: " + ", ".join(f"{k} {v}" for k, v in report.languages.items()))
    if report.note:
        click.echo(f"note: {report.note}")

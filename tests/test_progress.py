"""What `hmsearch index` and `update` show while Whisper works: the Reporter fed the run's events."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from hmsearch.cli._common import Reporter
from hmsearch.ingest.events import IndexEvent


def _reporter(quiet: bool = False, log: Path | None = None) -> Reporter:
    ctx = click.Context(click.Command("index"), obj={"quiet": quiet, "log_file": log})
    return Reporter(ctx, quiet=False)


def _run(reporter: Reporter, length: float, step: float = 30.0) -> None:
    """A run of one unchanged episode and one of ``length`` seconds that Whisper hears."""
    reporter(IndexEvent("plan", count=2))
    reporter(IndexEvent("unchanged", "old"))
    reporter(IndexEvent("work", count=1, seconds=length))
    reporter(IndexEvent("loading", detail="faster-whisper base@int8"))
    reporter(IndexEvent("start", "ep-1", "ep-1.mp3", seconds=length))
    heard = 0.0
    while heard < length:
        heard = min(length, heard + step)
        reporter(IndexEvent("progress", "ep-1", seconds=heard))
    reporter(IndexEvent("added", "ep-1", "12 passages"))
    reporter.close()


def test_without_a_terminal_a_long_episode_says_how_far_it_got(capsys: pytest.CaptureFixture[str]) -> None:
    _run(_reporter(), 1200.0)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "loading Whisper model faster-whisper base@int8…"
    hearing = [line for line in lines if line.startswith("hearing")]
    assert [h.split(": ")[1].split(" %")[0] for h in hearing] == [str(p) for p in range(10, 100, 10)]
    assert hearing[0] == "hearing   ep-1: 10 % (00:02:00 of 00:20:00)"
    assert lines[-1] == "added     ep-1: 12 passages"
    assert not any("old" in line for line in lines)  # unchanged episodes are not listed


def test_a_short_episode_gets_no_progress_lines(capsys: pytest.CaptureFixture[str]) -> None:
    _run(_reporter(), 120.0)
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("hearing")]


def test_quiet_keeps_stderr_clean_and_the_log_gets_the_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "run.log"
    _run(_reporter(quiet=True, log=log), 1200.0)
    assert capsys.readouterr().err == ""
    logged = log.read_text(encoding="utf-8").splitlines()
    assert sum("hearing   ep-1" in line for line in logged) == 9 and logged[-1].endswith("added     ep-1: 12 passages")


def test_on_a_terminal_one_bar_in_minutes_of_audio_with_lines_above_it(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = _reporter()
    reporter.show_bar = True  # as on a terminal
    bars = []
    real_draw = reporter._draw

    def draw(episode: str, heard: float) -> None:
        real_draw(episode, heard)
        bars.append((reporter.bar.n, reporter.bar.total))

    reporter._draw = draw  # type: ignore[method-assign]
    _run(reporter, 600.0, step=60.0)
    assert bars[0] == (0.0, 10.0)  # 10 minutes to hear; the unchanged episode is not in it
    assert [n for n, _ in bars] == sorted(n for n, _ in bars) and bars[-1] == (10.0, 10.0)
    err = capsys.readouterr().err
    assert "loading Whisper model faster-whisper base@int8…" in err and "added     ep-1: 12 passages" in err
    assert "min of audio" in err and "hearing" not in err  # the bar, not progress lines

"""The batch operator's CLI: -q is silent on success; every run's outcome, a refused lock (exit 5)
included, is a line in --log-file; Ctrl-C says how many episodes were committed and that the same
command continues; global options are accepted after the command. Indexing uses the HashingEncoder
stand-in (the model is not what is tested here)."""

from __future__ import annotations

from pathlib import Path

import pytest

import hmsearch.cli.index as cli_index
from hmsearch.cli import cli as app
from hmsearch.cli import hoist_global_options
from hmsearch.cli._common import Reporter
from hmsearch.index import IndexStore

from helpers import HashingEncoder, write_srt


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(cli_index, "indexing_encoder", lambda store, name: HashingEncoder())
    src = tmp_path / "src"
    src.mkdir()
    for name, topic in (("a", "rockets and fuel"), ("b", "coffee and milk"), ("c", "gardens and soil")):
        write_srt(src / f"{name}.srt", [f"We talk about {topic} today, number {i}." for i in range(12)])
    return src


def test_quiet_prints_nothing_on_success(folder, cli, tmp_path) -> None:
    r = cli("-q", "--index-dir", str(tmp_path / "ix"), "index", str(folder))
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    loud = cli("--index-dir", str(tmp_path / "ix"), "index", str(folder))
    assert loud.stdout.startswith("0 added, 0 replaced, 3 unchanged")


def test_a_refused_lock_is_a_line_in_the_log(folder, cli, tmp_path) -> None:
    log = tmp_path / "run.log"
    store = IndexStore(tmp_path / "ix")
    with store.writing():
        r = cli("-q", "--log-file", str(log), "--index-dir", str(store.root), "index", str(folder))
    assert r.exit_code == 5
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "index: error (exit 5)" in lines[0] and "another hmsearch job" in lines[0]
    assert cli("-q", "--log-file", str(log), "--index-dir", str(store.root), "index", str(folder)).exit_code == 0
    assert log.read_text().splitlines()[-1].endswith("index: 3 added, 0 replaced, 0 unchanged")


def test_ctrl_c_says_how_many_were_committed(folder, cli, tmp_path, monkeypatch) -> None:
    said = Reporter.say

    def interrupt_after_first(self: Reporter, text: str) -> None:
        said(self, text)
        if text.startswith("added"):
            raise KeyboardInterrupt

    monkeypatch.setattr(Reporter, "say", interrupt_after_first)
    log = tmp_path / "run.log"
    r = cli("--log-file", str(log), "--index-dir", str(tmp_path / "ix"), "index", str(folder))
    assert r.exit_code == 130
    assert "Interrupted: 1 of 3 episodes committed; run the same command to continue" in r.stderr
    assert "1 of 3 episodes committed" in log.read_text()
    assert len(IndexStore(tmp_path / "ix").episodes()) == 1
    monkeypatch.setattr(Reporter, "say", said)
    again = cli("--index-dir", str(tmp_path / "ix"), "index", str(folder))
    assert again.stdout.startswith("2 added, 0 replaced, 1 unchanged")


def test_global_options_after_the_command(folder, cli, tmp_path) -> None:
    root = str(tmp_path / "ix")
    r = cli("index", str(folder), "--index-dir", root, "-q")
    assert r.exit_code == 0 and r.stdout == ""
    listed = cli("episodes", f"--index-dir={root}")
    assert listed.exit_code == 0 and "3 episodes" in listed.stdout
    hits = cli("search", '"rockets and fuel"', "--index-dir", root, "--json")
    assert hits.exit_code == 0 and '"episode": "a"' in hits.stdout


def test_hoisting_leaves_the_commands_own_options_and_what_follows_double_dash() -> None:
    commands = app.commands
    assert hoist_global_options(["search", "x", "--index-dir", "I", "-q"], commands) == [
        "--index-dir",
        "I",
        "-q",
        "search",
        "x",
    ]
    assert hoist_global_options(["-q", "search", "--", "--index-dir"], commands) == [
        "-q",
        "search",
        "--",
        "--index-dir",
    ]
    assert hoist_global_options(["--help"], commands) == ["--help"]
    assert hoist_global_options(["nope", "--index-dir", "I"], commands) == ["nope", "--index-dir", "I"]


def test_feed_downloads_go_to_the_index_folder_by_default(cli, tmp_path, monkeypatch) -> None:
    """`update --feed` then `index audio/` (the README's first line) must not index a feed episode
    twice: the downloads are the index's own (<index>/downloads/), never ./audio/."""
    import hmsearch.ingest.update as update_module
    from hmsearch.ingest.feeds import UpdateReport

    seen: list[Path] = []

    def fake_update_feed(feed, store, *, audio_dir, **kwargs):
        seen.append(audio_dir)
        return UpdateReport()

    monkeypatch.setattr(cli_index, "indexing_encoder", lambda store, name: HashingEncoder())
    monkeypatch.setattr(update_module, "update_feed", fake_update_feed)
    root = tmp_path / "ix"
    assert cli("--index-dir", str(root), "update", "--feed", "feed.xml").exit_code == 0
    assert cli("--index-dir", str(root), "update", "--feed", "feed.xml", "--audio-dir", "mine").exit_code == 0
    assert seen == [root / "downloads", Path("mine")]

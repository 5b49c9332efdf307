"""Metadata for imported transcripts (issue 25): a ``<stem>.meta.json`` sidecar read by `hmsearch
index`, and `hmsearch episodes EPISODE --set-title ...` for an indexed episode. Both validate the
same way, write the manifest alone (nothing embedded again) and show in `episodes --json`, search
hits and the web page. The HashingEncoder stand-in embeds (the model is not what is tested)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hmsearch.cli.index as cli_index
import hmsearch.query.service as service
from hmsearch.index import IndexStore

from helpers import HashingEncoder, write_srt

LINES = [f"We talk about rockets and fuel today, number {i}." for i in range(6)]
META = {
    "title": "Episode One: Rockets",
    "published": "2024-03-01",
    "url": "https://example.com/ep1",
    "enclosure": "https://example.com/ep1.mp3",
}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(cli_index, "indexing_encoder", lambda store, name: HashingEncoder())
    monkeypatch.setattr(service, "load_encoder", lambda *a, **k: HashingEncoder())
    src = tmp_path / "src"
    src.mkdir()
    write_srt(src / "ep1.srt", LINES)
    return src


def _index(cli, ix: Path, folder: Path, *args: str):
    return cli("--index-dir", str(ix), "index", str(folder), *args)


def _episodes(cli, ix: Path) -> dict[str, dict]:
    r = cli("--index-dir", str(ix), "episodes", "--json")
    assert r.exit_code == 0, r.stderr
    return {e["episode"]: e for e in json.loads(r.stdout)}


def _hit(cli, ix: Path) -> dict:
    r = cli("--index-dir", str(ix), "search", "rockets and fuel", "--json", "-k", "1")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    return (out["hits"] if isinstance(out, dict) else out)[0]


def _titles(obj) -> list[str]:
    """Every "title" in an ask answer (its sentences and hits)."""
    if isinstance(obj, dict):
        own = [obj["title"]] if "title" in obj and "episode" in obj else []
        return own + [t for v in obj.values() for t in _titles(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in _titles(v)]
    return []


def test_a_sidecar_gives_title_date_and_urls(folder, cli, tmp_path) -> None:
    (folder / "ep1.meta.json").write_text(json.dumps({**META, "speakers": {"S1": "Anne"}}), encoding="utf-8")
    r = _index(cli, tmp_path / "ix", folder)
    assert r.exit_code == 0 and r.stdout.startswith("1 added"), (r.stdout, r.stderr)  # not a second episode
    ep = _episodes(cli, tmp_path / "ix")["ep1"]
    assert {k: ep[k] for k in META} == META
    hit = _hit(cli, tmp_path / "ix")
    assert hit["title"] == META["title"] and hit["page"] == META["url"] and hit["published"] == "2024-03-01"
    # an explicit sidecar is not taken for a transcript
    r = cli("--index-dir", str(tmp_path / "ix"), "index", str(folder / "ep1.meta.json"))
    assert r.exit_code != 0 and "metadata sidecar" in r.stderr


def test_a_changed_sidecar_updates_the_manifest_without_embedding(folder, cli, tmp_path, monkeypatch) -> None:
    _index(cli, tmp_path / "ix", folder)
    assert _episodes(cli, tmp_path / "ix")["ep1"]["title"] == "ep1"
    encoder = HashingEncoder()
    monkeypatch.setattr(cli_index, "indexing_encoder", lambda store, name: encoder)
    segment = IndexStore(tmp_path / "ix").record("ep1").segment
    (folder / "ep1.meta.json").write_text(json.dumps(META), encoding="utf-8")
    r = _index(cli, tmp_path / "ix", folder)
    assert r.exit_code == 0 and "1 metadata updated" in r.stdout, (r.stdout, r.stderr)
    assert encoder.calls == 0  # nothing embedded again
    assert IndexStore(tmp_path / "ix").record("ep1").segment == segment
    assert _episodes(cli, tmp_path / "ix")["ep1"]["title"] == META["title"]
    # an edit made since is not undone by the same sidecar on the next run
    assert cli("-q", "--index-dir", str(tmp_path / "ix"), "episodes", "ep1", "--set-title", "Edited").exit_code == 0
    r = _index(cli, tmp_path / "ix", folder)
    assert "metadata updated" not in r.stdout and _episodes(cli, tmp_path / "ix")["ep1"]["title"] == "Edited"


HOSTILE = {
    "bad-json": '{"title": "x",',
    "javascript-url": json.dumps({"title": "ok", "url": "javascript:alert(1)"}),
    "huge-title": json.dumps({"title": "x" * 1_000_000}),
    "wrong-type": json.dumps({"title": ["a"], "published": 2024}),
    "bad-date": json.dumps({"published": "March 1st"}),
    "not-object": "[1, 2]",
    "unknown-key": json.dumps({"titel": "typo"}),
    "bad-bytes": b"\xff\xfe{",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_sidecar_is_a_warning_and_the_episode_is_indexed_without_it(case, folder, cli, tmp_path) -> None:
    body = HOSTILE[case]
    sidecar = folder / "ep1.meta.json"
    sidecar.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    r = cli("-q", "--index-dir", str(tmp_path / "ix"), "index", str(folder))
    assert r.exit_code == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ") and str(sidecar) in warnings[0], r.stderr
    assert "Traceback" not in r.stderr and len(warnings[0]) < 400
    ep = _episodes(cli, tmp_path / "ix")["ep1"]
    assert ep["title"] == "ep1" and ep["url"] is None and ep["published"] is None


def test_control_characters_are_stripped_from_a_sidecar(folder, cli, tmp_path) -> None:
    title = "Evil\x1b[31m title\r\nnext\u202eline\x00"
    (folder / "ep1.meta.json").write_text(json.dumps({"title": title}), encoding="utf-8")
    assert _index(cli, tmp_path / "ix", folder).exit_code == 0
    assert _episodes(cli, tmp_path / "ix")["ep1"]["title"] == "Evil [31m title next line"


def test_set_title_url_and_date_edit_an_episode_in_place(folder, cli, tmp_path) -> None:
    ix = tmp_path / "ix"
    _index(cli, ix, folder)
    before = IndexStore(ix).record("ep1").segment
    r = cli(
        "-q", "--index-dir", str(ix), "episodes", "ep1", "--set-title", "New title", "--set-published", "2023-12-24"
    )
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    r = cli("--index-dir", str(ix), "episodes", "ep1", "--set-url", META["url"], "--set-enclosure", META["enclosure"])
    assert r.exit_code == 0 and r.stdout == "" and "updated ep1" in r.stderr
    r = cli("--index-dir", str(ix), "episodes", "ep1", "--set-title", "Newer", "--json")
    changed = json.loads(r.stdout)
    assert changed["title"] == "Newer" and changed["published"] == "2023-12-24" and changed["url"] == META["url"]
    assert _episodes(cli, ix)["ep1"] == changed
    assert IndexStore(ix).record("ep1").segment == before  # the episode's files stay
    hit = _hit(cli, ix)
    assert hit["title"] == "Newer" and hit["page"] == META["url"]
    r = cli("--index-dir", str(ix), "ask", "rockets and fuel", "--json")
    assert r.exit_code == 0, r.stderr
    assert set(_titles(json.loads(r.stdout))) == {"Newer"}
    # "" clears the date and a URL
    r = cli("--index-dir", str(ix), "episodes", "ep1", "--set-url", "", "--set-published", "", "--json")
    assert json.loads(r.stdout)["url"] is None and json.loads(r.stdout)["published"] is None


def test_the_web_page_shows_an_edited_title(folder, cli, tmp_path) -> None:
    pytest.importorskip("starlette")
    from test_web import _serve

    ix = tmp_path / "ix"
    _index(cli, ix, folder)
    server, _ = _serve(ix)
    try:
        assert b"A &lt;new&gt; title" not in server.get("/episodes")[2]
        assert cli("-q", "--index-dir", str(ix), "episodes", "ep1", "--set-title", "A <new> title").exit_code == 0
        assert b"A &lt;new&gt; title" in server.get("/episodes")[2]
        assert b"A &lt;new&gt; title" in server.get("/?q=rockets+fuel")[2]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("nope", "--set-title", "x"), 6, "episode 'nope' is not in the index"),
        (("ep1", "--set-url", "javascript:alert(1)"), 2, "--set-url: 'url' is not an http(s) URL"),
        (("ep1", "--set-enclosure", "file:///etc/passwd"), 2, "--set-enclosure"),
        (("ep1", "--set-published", "yesterday"), 2, "--set-published"),
        (("ep1", "--set-title", "   "), 2, "--set-title: 'title' is empty"),
        (("ep1", "--set-title", "x" * 301), 2, "longer than 300"),
        (("--set-title", "x"), 2, "need the EPISODE"),
    ],
)
def test_a_bad_edit_is_one_line_and_changes_nothing(args, code, says, folder, cli, tmp_path) -> None:
    ix = tmp_path / "ix"
    _index(cli, ix, folder)
    generation = IndexStore(ix).require().generation
    r = cli("--index-dir", str(ix), "episodes", *args)
    assert r.exit_code == code and says in r.stderr, (r.exit_code, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""
    assert IndexStore(ix).require().generation == generation


def test_an_edit_is_refused_while_another_job_writes(folder, cli, tmp_path) -> None:
    ix = tmp_path / "ix"
    _index(cli, ix, folder)
    store = IndexStore(ix)
    with store.writing():
        r = cli("--index-dir", str(ix), "episodes", "ep1", "--set-title", "x")
    assert r.exit_code == 5 and "another hmsearch job is writing" in r.stderr
    assert _episodes(cli, ix)["ep1"]["title"] == "ep1"

"""Show-notes drafts: title and date, chapters with playback links, quotable sentences (verbatim,
self-contained, with their own times and links), key terms; Markdown and --json."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from hmsearch.asr import TranscriberSpec
from hmsearch.host.notes import quotable
from hmsearch.index import IndexStore
from hmsearch.ingest import IndexOptions, index_paths
from hmsearch.query import QueryService
from hmsearch.types import Sentence

from helpers import SAMPLE_AUDIO, SAMPLE_TRANSCRIPT, HashingEncoder, write_srt

OPTIONS = IndexOptions(TranscriberSpec("turbo"))


@pytest.fixture
def store(tmp_path: Path) -> IndexStore:
    folder = tmp_path / "audio"
    folder.mkdir()
    shutil.copy(SAMPLE_AUDIO, folder)
    shutil.copy(SAMPLE_TRANSCRIPT, folder)
    rng = random.Random(2)
    words = ["rocket", "engine", "orbit", "launch", "fuel", "booster", "payload", "thrust", "satellite", "landing"]
    write_srt(folder / "rockets.srt", [f"The {' '.join(rng.sample(words, 6))} matters a lot here." for _ in range(80)])
    s = IndexStore(tmp_path / "ix")
    with s.writing():
        index_paths([folder], s, encoder=HashingEncoder(), options=OPTIONS)
    return IndexStore(tmp_path / "ix")


def test_sample_notes(store: IndexStore) -> None:
    draft = QueryService(store.root).notes("hm-sample-001")
    said = {s["text"].strip() for s in json.loads(SAMPLE_TRANSCRIPT.read_text())["segments"]}
    assert draft.quotes and all(q.text in said for q in draft.quotes)  # verbatim sentences
    assert all(not q.text.endswith("?") and 8 <= len(q.text.split()) <= 35 for q in draft.quotes)
    assert all(q.link.endswith(f"#t={int(q.start)}") for q in draft.quotes)
    assert [q.start for q in draft.quotes] == sorted(q.start for q in draft.quotes)
    assert draft.key_terms and not {"og", "det", "er", "at"} & set(draft.key_terms)
    # key terms are this episode's words, not the other episode's
    assert not {"rocket", "engine", "orbit"} & set(draft.key_terms)
    md = draft.markdown()
    assert md.startswith("# HM-sample 001") and "## Chapters" in md and "## Quotes" in md and "## Key terms" in md
    assert "- [00:00](file://" in md


def test_leaning_openings_and_questions_are_not_quotes() -> None:
    sents = [
        Sentence(0, 5, "Og så skal man bruge cirka femten minutter om dagen på kommentarer."),
        Sentence(60, 65, "Hvor tit skal man poste opslag på LinkedIn som sælger i en virksomhed?"),
        Sentence(120, 125, "Beslutningstagerne læser med på LinkedIn, selvom de sjældent trykker synes godt om."),
        Sentence(180, 182, "Ja tak."),
    ]
    picked = [s.text for s, _ in quotable(sents, "da", k=5)]
    assert picked == [sents[2].text]


def test_cli_notes_markdown_and_json(store: IndexStore, cli, tmp_path: Path) -> None:
    root = str(store.root)
    r = cli("--index-dir", root, "notes", "hm-sample-001", "-o", str(tmp_path / "n.md"))
    assert r.exit_code == 0 and (tmp_path / "n.md").read_text().startswith("# HM-sample 001")
    obj = json.loads(cli("--index-dir", root, "notes", "hm-sample-001", "--json", "--local-links").output)
    assert set(obj) >= {"episode", "title", "published", "duration", "chapters", "quotes", "key_terms"}
    assert obj["chapters"][0]["link"].endswith("#t=0")  # the local file, asked for
    assert cli("--index-dir", root, "notes", "nope").exit_code == 6

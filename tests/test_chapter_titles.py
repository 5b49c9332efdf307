"""Chapter titles a host would keep: a phrase of 2-6 words said in its chapter, never a list of
keywords (host/chapters.py chapter_titles; measured in benchmarks/results/chapter_titles.md)."""

from __future__ import annotations

import re

from hmsearch.host.chapters import CHAPTERS_VERSION, chapter_titles

CHAPTERS = [
    "We started with the history of Python. The history of Python goes back to Guido. "
    "I think the history of Python is fun. Guido van Rossum wrote it at CWI, and the ABC language came first.",
    "Then we talked about the black hole. A rotating black hole drags space. I'm sure a rotating black hole "
    "is strange. Honestly the rotating black hole is the best part. We really love it.",
    "Finally package management: pip install, virtual environments and the lock file. A lock file pins "
    "versions; the lock file is what you commit. Virtual environments keep them apart.",
]


def _said(title: str, text: str) -> bool:
    toks = re.findall(r"\w+(?:'\w+)?", title.lower())
    return re.search(r"\b" + r"\W+".join(map(re.escape, toks)) + r"\b", text.lower()) is not None


def test_titles_are_short_phrases_said_in_their_chapter() -> None:
    titled = chapter_titles(CHAPTERS, "en")
    titles = [t for t, _ in titled]
    assert titles == ["History of Python", "Rotating black hole", "Lock file"], titles
    for title, text in zip(titles, CHAPTERS):
        assert 2 <= len(title.split()) <= 6 and "," not in title
        assert _said(title, text)


def test_key_phrases_do_not_overlap_and_titles_are_not_repeated() -> None:
    titled = chapter_titles([*CHAPTERS, CHAPTERS[2]], "en")
    titles = [t.lower() for t, _ in titled]
    assert len(set(titles)) == len(titles)
    keys = titled[2][1]
    assert keys and all(2 <= len(k.split()) <= 6 for k in keys)


def test_no_contractions_adverbs_or_fillers_in_titles() -> None:
    titled = chapter_titles(CHAPTERS, "en")
    words = {w.lower() for t, keys in titled for p in [t, *keys] for w in p.split()}
    assert not {"i'm", "honestly", "really", "think"} & words


def test_danish_titles_use_danish_stopwords() -> None:
    texts = [
        "Så snakker vi om nyhedsbreve og LinkedIn profilen. LinkedIn profilen er jo altså vigtig, "
        "og LinkedIn profilen skal være skarp.",
        "Og så er det mødet med kunden. Et godt salgsmøde handler om kunden, og et godt salgsmøde tager tid.",
    ]
    titles = [t for t, _ in chapter_titles(texts, "da")]
    assert titles[0] == "LinkedIn profilen", titles
    assert all(not {"og", "så", "jo", "altså"} & set(t.lower().split()) for t in titles)


def test_a_chapter_without_a_phrase_is_numbered() -> None:
    assert chapter_titles(["yes yes okay.", "Deep learning and deep learning."], "en")[0][0] == "Part 1"


def test_chapters_version_was_bumped_for_the_new_titles() -> None:
    assert CHAPTERS_VERSION >= 3


def test_a_title_never_runs_over_punctuation() -> None:
    texts = [
        "The perception system. Output of the perception system is a box. The perception system sees.",
        "Lane change and lane change again: the lane change is hard.",
    ]
    assert chapter_titles(texts, "en")[0][0] == "Perception system"

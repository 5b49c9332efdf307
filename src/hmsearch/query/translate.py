"""English <-> Danish query translation, word by word, with FreeDict's dictionaries where they
are installed (Debian's dict-freedict-dan-eng / -eng-dan): the Danish terms of an English
question join the BM25 query, so English questions find Danish passages offline.
"""

from __future__ import annotations

import gzip
import re
from functools import lru_cache
from pathlib import Path

from ..config import setting
from ..text import analyze, stopwords, words

FREEDICT_DIRS = ("/usr/share/dictd",)


def _dict_path(pair: str) -> tuple[Path, Path] | None:
    extra = setting("freedict_dir")
    for folder in (*([str(extra)] if extra else []), *FREEDICT_DIRS):
        data, index = Path(folder) / f"freedict-{pair}.dict.dz", Path(folder) / f"freedict-{pair}.index"
        if data.is_file() and index.is_file():
            return data, index
    return None


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 64 + _B64.index(ch)
    return n


def _read_freedict(pair: str) -> list[tuple[str, list[str]]]:
    """(headword, [translations]) from a dictd-format FreeDict dictionary."""
    paths = _dict_path(pair)
    if paths is None:
        return []
    data_path, index_path = paths
    data = gzip.decompress(data_path.read_bytes())  # dictzip is gzip-compatible
    out = []
    for line in index_path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[0].startswith("00database"):
            continue
        body = data[_b64(parts[1]) : _b64(parts[1]) + _b64(parts[2])].decode("utf-8", "replace")
        lines = body.strip().splitlines()
        head = re.sub(r"\s*/.*$|\s*<.*$", "", lines[0]).strip() if lines else ""
        senses: list[str] = []
        for text in lines[1:]:
            text = re.sub(r"\[[^\]]*\]|\([^)]*\)|\b\d+\.\s*", " ", text)
            senses.extend(t.strip() for t in re.split(r"[,;]", text) if t.strip())
        if head and senses:
            out.append((head.lower(), [s.lower() for s in senses]))
    return out


@lru_cache(maxsize=4)
def _lexicon(source: str, target: str) -> dict[str, tuple[str, ...]]:
    """source-language stem -> target-language words, from FreeDict in either direction."""
    table: dict[str, list[str]] = {}

    def add(src_word: str, tgt_word: str) -> None:
        toks = words(src_word)
        if len(toks) != 1 or len(words(tgt_word)) > 2:  # single source words, short targets
            return
        stem = analyze(toks[0], source)
        if stem:
            table.setdefault(stem[0], [])
            if tgt_word not in table[stem[0]]:
                table[stem[0]].append(tgt_word)

    for head, senses in _read_freedict(f"{_ISO3[source]}-{_ISO3[target]}"):
        for sense in senses:
            add(head, sense)
    for head, senses in _read_freedict(f"{_ISO3[target]}-{_ISO3[source]}"):
        for sense in senses:
            add(sense, head)
    return {k: tuple(v[:4]) for k, v in table.items()}


_ISO3 = {"da": "dan", "en": "eng", "sv": "swe", "de": "deu", "no": "nor"}


def translate_terms(query: str, *, to: str, source: str | None = None) -> list[str]:
    """Index terms in language ``to`` for the words of ``query`` in ``source`` (or in each other
    language we have a dictionary for: English <-> Danish today)."""
    out: list[str] = []
    for lang in (source,) if source else ("en", "da"):
        if lang == to or lang not in _ISO3 or to not in _ISO3:
            continue
        lexicon = _lexicon(lang, to)
        if not lexicon:
            continue
        for stem in analyze(query, lang):
            for target_word in lexicon.get(stem, ()):
                out.extend(analyze(target_word, to))
    return out


def dictionary_available(source: str = "en", target: str = "da") -> bool:
    return bool(_lexicon(source, target))


WORD_LISTS = ("/usr/share/dict/american-english", "/usr/share/dict/british-english", "/usr/share/dict/danish")


@lru_cache(maxsize=1)
def _word_list() -> frozenset[str]:
    """Every word of the installed word lists (Debian's wamerican, wbritish, wdanish), lower-cased."""
    out: set[str] = set()
    for name in WORD_LISTS:
        try:
            out.update(
                line.strip().lower() for line in Path(name).read_text(encoding="utf-8", errors="replace").splitlines()
            )
        except OSError:
            continue
    return frozenset(out)


def known_words(query: str) -> bool | None:
    """Whether any word of ``query`` is an English or Danish word (in the installed word lists, a
    stopword, or a FreeDict headword); None without word lists (nothing can be said then). Only a
    query of no known word at all, that also matches no passage's words, is taken for nonsense
    (``retrieve.rank``)."""
    vocabulary = _word_list()
    if not vocabulary:
        return None
    pairs = (("en", "da"), ("da", "en"))
    for token in words(query):
        if token in vocabulary or token.removesuffix("'s") in vocabulary:
            return True
        for lang, other in pairs:
            if token in stopwords(lang):
                return True
            stem = analyze(token, lang)
            if stem and stem[0] in _lexicon(lang, other):
                return True
    return False

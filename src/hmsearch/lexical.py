"""Lexical search: BM25 (bm25s) over language-aware tokens, plus query translation between
English and Danish with FreeDict's dictionary where it is installed.

Each passage is stemmed with its own episode's language (Snowball stemmers from PyStemmer) with
that language's stopwords removed; a query is analysed in every language the index holds, so a
Danish query meets Danish stems and an English one English stems.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*", re.UNICODE)
STEMMERS = {"da": "danish", "en": "english", "sv": "swedish", "no": "norwegian", "nb": "norwegian",
            "nn": "norwegian", "de": "german", "nl": "dutch", "fr": "french", "es": "spanish",
            "it": "italian", "pt": "portuguese", "fi": "finnish"}
_STOPWORD_LISTS = {"da": "STOPWORDS_DANISH", "en": "STOPWORDS_EN_PLUS", "sv": "STOPWORDS_SWEDISH",
                   "no": "STOPWORDS_NORWEGIAN", "de": "STOPWORDS_GERMAN", "nl": "STOPWORDS_DUTCH",
                   "fr": "STOPWORDS_FRENCH", "es": "STOPWORDS_SPANISH", "it": "STOPWORDS_ITALIAN",
                   "pt": "STOPWORDS_PORTUGUESE"}
FREEDICT_DIRS = ("/usr/share/dictd",)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (keeps inner hyphens and apostrophes: e-mail, don't)."""
    return _TOKEN.findall(text.lower())


@lru_cache(maxsize=None)
def stopwords(lang: str) -> frozenset[str]:
    import bm25s.stopwords as sw

    name = _STOPWORD_LISTS.get(lang)
    return frozenset(getattr(sw, name)) if name else frozenset()


@lru_cache(maxsize=None)
def _stemmer(lang: str):
    import Stemmer

    algorithm = STEMMERS.get(lang)
    return Stemmer.Stemmer(algorithm) if algorithm else None


def analyze(text: str, lang: str | None) -> list[str]:
    """Index terms of ``text`` in ``lang``: words, minus stopwords, stemmed."""
    lang = lang if lang in STEMMERS else "en"
    stop = stopwords(lang)
    toks = [w for w in words(text) if w not in stop]
    stemmer = _stemmer(lang)
    return stemmer.stemWords(toks) if stemmer else toks


def guess_language(text: str, candidates: Sequence[str] = ("da", "en", "sv", "no", "de")) -> str | None:
    """The candidate language whose stopwords cover most of ``text`` (None if none fits).

    Stopwords make up ~40 % of running speech in these languages, so a few dozen words suffice.
    """
    toks = words(text[:20_000])
    if not toks:
        return None
    best, best_share = None, 0.0
    for lang in candidates:
        stop = stopwords(lang)
        share = sum(t in stop for t in toks) / len(toks)
        if share > best_share:
            best, best_share = lang, share
    return best if best_share >= 0.15 else None


class LexicalIndex:
    """BM25 over passages; rows are the same as the FAISS rows."""

    def __init__(self, retriever, langs: list[str]) -> None:
        self.retriever = retriever
        self.langs = langs  # languages present, in order of frequency

    @classmethod
    def build(cls, texts: Iterable[str], langs: Iterable[str | None]) -> LexicalIndex:
        import bm25s

        corpus, counts = [], {}
        for text, lang in zip(texts, langs):
            lang = lang if lang in STEMMERS else "en"
            counts[lang] = counts.get(lang, 0) + 1
            corpus.append(analyze(text, lang))
        if not corpus:
            return cls(None, [])
        retriever = bm25s.BM25()
        retriever.index(corpus, show_progress=False)
        return cls(retriever, sorted(counts, key=lambda k: -counts[k]))

    def save(self, folder: Path) -> None:
        if self.retriever is not None:
            self.retriever.save(str(folder))
        (folder / "langs.txt").write_text("\n".join(self.langs), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        import bm25s

        langs = (folder / "langs.txt").read_text(encoding="utf-8").split()
        if not langs:
            return cls(None, [])
        retriever = bm25s.BM25.load(str(folder), mmap=False)
        return cls(retriever, langs)

    def query_terms(self, query: str, *, translate: bool = True) -> list[str]:
        """The query analysed in every language of the index, plus dictionary translations."""
        terms: list[str] = []
        for lang in self.langs:
            terms.extend(analyze(query, lang))
        if translate:
            source = guess_language(query, ("da", "en"))
            for lang in self.langs:
                if lang != source:  # a Danish "man" is not the English "man"
                    terms.extend(translate_terms(query, to=lang, source=source))
        return list(dict.fromkeys(terms))

    def scores(self, query: str, *, translate: bool = True) -> np.ndarray:
        """BM25 score of every passage for ``query`` (0 where no term matches)."""
        return self.ranked(query, 0, translate=translate)[0]

    def ranked(self, query: str, n: int, *, translate: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """BM25 scores of every passage, and the rows of the ``n`` best (score > 0), best first.

        The best rows are picked among the passages in the query terms' posting lists, not by a
        pass over the whole archive: at a million passages that is ~35k rows instead of 1M."""
        terms = self.query_terms(query, translate=translate)
        if not terms or self.retriever is None:
            return np.zeros(self.size, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores = np.asarray(self.retriever.get_scores(terms), dtype=np.float32)
        if n <= 0:
            return scores, np.zeros(0, dtype=np.int64)
        vocab = self.retriever.vocab_dict
        ids = [vocab[t] for t in terms if t in vocab]
        indptr, indices = self.retriever.scores["indptr"], self.retriever.scores["indices"]
        docs = np.concatenate([indices[indptr[i]:indptr[i + 1]] for i in ids] or [np.zeros(0, np.int64)])
        # A passage appears once per matching term, so the best n * len(ids) entries hold the best n passages.
        keep = n * max(1, len(ids))
        if len(docs) > keep:
            docs = docs[np.argpartition(-scores[docs], keep - 1)[:keep]]
        docs = np.unique(docs)
        docs = docs[scores[docs] > 0]
        best = docs[np.argsort(-scores[docs], kind="stable")][:n]
        return scores, best.astype(np.int64)

    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        """BM25's inverse document frequency of each term (0 for terms no passage has)."""
        if self.retriever is None:
            return dict.fromkeys(terms, 0.0)
        vocab, indptr, n = self.retriever.vocab_dict, self.retriever.scores["indptr"], self.size
        out = {}
        for t in terms:
            i = vocab.get(t)
            df = int(indptr[i + 1] - indptr[i]) if i is not None else 0
            out[t] = float(np.log(1 + (n - df + 0.5) / (df + 0.5))) if df else 0.0
        return out

    @property
    def size(self) -> int:
        return 0 if self.retriever is None else int(self.retriever.scores["num_docs"])


# ---- query translation -------------------------------------------------------------------
def _dict_path(pair: str) -> tuple[Path, Path] | None:
    dirs = [os.environ["HMSEARCH_FREEDICT_DIR"]] if os.environ.get("HMSEARCH_FREEDICT_DIR") else []
    for folder in (*dirs, *FREEDICT_DIRS):
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
        body = data[_b64(parts[1]):_b64(parts[1]) + _b64(parts[2])].decode("utf-8", "replace")
        lines = body.strip().splitlines()
        head = re.sub(r"\s*/.*$|\s*<.*$", "", lines[0]).strip() if lines else ""
        senses = []
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

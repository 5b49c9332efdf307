"""The answer model: which sentence, read with its neighbours, answers the question.

Similarity finds the topic, not the answer: the sentence closest to a question is often the host's
own question, the episode's introduction that names the guest, or a sponsor read. So an answer is
chosen in two steps:

1. Boilerplate is never an answer: an episode's introduction (up to "here's my conversation with
   ...", or intro phrases in its first minutes), its outro, sponsor reads and LibriVox-style
   announcements are dropped by pattern and position (``boilerplate``).
2. The rest are scored by a logistic regression over a few features of each sentence with its
   neighbours: e5 similarity of the sentence and of its context to the question, similarity of the
   question that the sentence replies to, word overlap, whether it is itself a question, whether it
   follows one and length; its passage's search score is added at query time. The weights are trained by
   ``scripts/train_answer_model.py`` on question -> reply pairs mined from interview transcripts
   (a host's question and the guest's reply) and ship as ``answer_model.json``.

When even the closest sentence is a weak match (the model's floor for the index's embedding
model, calibrated on the dev sets), ``ask`` abstains.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..types import Sentence

MODEL_PATH = Path(__file__).with_name("answer_model.json")

INTRO_WINDOW = 600.0  # seconds: an intro marker ("here's my conversation with") is looked for this early
INTRO_PHRASE_WINDOW = 90.0  # seconds: without a marker, intro phrases count this early
OUTRO_WINDOW = 300.0  # seconds before the end in which an outro marker starts the outro
FOLLOW_WINDOW = 3  # a reply follows its question within this many sentences
MIN_WORDS = 4  # shorter sentences ("Yeah.", "Right, exactly.") are filler, not answers

# The last sentence of an introduction; everything before it is introduction too.
_INTRO_MARKER = re.compile(
    r"here'?s (my|our|the) (conversation|interview|chat|talk) with|and now,? (on to|onto) (my|our|the) conversation"
    r"|without further ado|let'?s (get|dive|jump) (started|into it|right in)|lad os komme i gang",
    re.IGNORECASE,
)
# Sentences that introduce an episode (early on, without a marker).
_INTRO_PHRASE = re.compile(
    r"the following is a (conversation|talk|lecture)|welcome (back )?to (the |this |episode )|this is episode"
    r"|i'?m your host|my name is .* and (this|today)|in this episode|today (we|i) (will|'ll|are going to|talk)"
    r"|today'?s (guest|episode)|this conversation (is|was) part of|part of the .* podcast"
    r"|velkommen til|i dag skal vi|i dagens (afsnit|episode)|dagens gæst|mit navn er|jeg hedder .* og"
    r"|du lytter til|i denne episode",
    re.IGNORECASE,
)
# The first sentence of an outro; everything after it is outro too.
_OUTRO_MARKER = re.compile(
    r"thanks? (you )?(so much )?for (listening|joining us|tuning in)|let me leave you with|that'?s (it|all) for (this|today)"
    r"|tak fordi (du|i) (lyttede|lytter|har lyttet)|tak for (i dag|at lytte)|det var alt for",
    re.IGNORECASE,
)
# Sponsor reads and production announcements, wherever they are.
_BOILERPLATE = re.compile(
    r"brought to you by|our sponsors?|(check out|support) (our|the|this) (sponsor|podcast|show)|promo code|use (the )?code"
    r"|sign up (at|for)|patreon|five stars|rate (it|us|the show)|apple podcasts?|subscribe (on|to|at)"
    r"|cash ?app|masterclass|expressvpn|athletic greens|betterhelp|squarespace"
    r"|librivox|in the public domain|for more information,? or to volunteer|recording by|read by|end of (chapter|section|book)"
    r"|indlæst af|læst af|slut på kapitel|kapitel .* slut|sponsoreret af|støt (podcasten|os)",
    re.IGNORECASE,
)

# What feature_matrix measures of each candidate.
# A host's turn that announces the next topic ("Let's talk about ...", "Lad os tale om ..."): it
# introduces what the next turn answers, like a question.
_PROMPT = re.compile(
    r"^\W*(and |so |now |og |så |nu )?(let'?s|let us|lad os) (talk|turn|move|get|look|go|tale|snakke|se|kigge|gå)\b",
    re.IGNORECASE,
)


def prompts(text: str) -> bool:
    """A question, or a host's "let's talk about ..." that hands the next turn the topic."""
    return is_question(text) or bool(_PROMPT.search(text))


FEATURES = (
    "dense",  # e5 cosine of question and sentence
    "dense_gap",  # ... less the best among the candidates
    "context",  # cosine of question and the sentence with its two neighbours
    "context_gap",
    "asked",  # cosine of question and the question this sentence replies to (0: none)
    "asked_gap",
    "overlap",  # share of the question's terms in the sentence and its neighbours
    "is_question",
    "follows_question",
    "next_is_question",
    "log_words",
)
# What the model reads: the similarities standardised among the candidates of one question, since
# a listener's question is further from every sentence than the host's own words are (training
# queries), but the answer still stands out among its candidates.
MODEL_INPUTS = (
    "dense_z",
    "context_z",
    "asked_z",  # among the candidates that follow a question; 0 for the rest
    "replies",  # follows a question within FOLLOW_WINDOW sentences
    "dense_top",
    "context_top",
    "overlap",
    "is_question",
    "follows_question",
    "next_is_question",
    "log_words",
)


def _z(v: np.ndarray) -> np.ndarray:
    return (v - v.mean()) / (v.std() + 0.01) if len(v) else v


def model_inputs(x: np.ndarray) -> np.ndarray:
    """MODEL_INPUTS of one question's candidates (rows of FEATURES)."""
    col = {n: x[:, i] for i, n in enumerate(FEATURES)}
    out = np.zeros((len(x), len(MODEL_INPUTS)), dtype=np.float32)
    out[:, 0] = _z(col["dense"])
    out[:, 1] = _z(col["context"])
    replies = col["asked"] > 0
    if replies.any():
        out[replies, 2] = _z(col["asked"][replies])
    out[:, 3] = replies
    out[:, 4] = col["dense"] >= col["dense"].max()
    out[:, 5] = col["context"] >= col["context"].max()
    for i, name in enumerate(MODEL_INPUTS[6:], 6):
        out[:, i] = col[name]
    return out


@dataclass(frozen=True)
class EpisodeText:
    """An episode's sentences in time order, with where its introduction ends and its outro starts."""

    sentences: tuple[Sentence, ...]
    intro_end: int  # sentences[:intro_end] are the introduction
    outro_start: int  # sentences[outro_start:] are the outro
    duration: float

    def index_of(self, start: float) -> int:
        """The index of the sentence starting at ``start`` (the nearest one)."""
        starts = np.array([s.start for s in self.sentences])
        return int(np.argmin(np.abs(starts - start)))


def episode_text(sentences: list[Sentence], duration: float | None = None) -> EpisodeText:
    """``sentences`` (possibly repeated, as overlapping passages repeat them) as one ordered list,
    with its introduction and outro found."""
    seen: dict[float, Sentence] = {}
    for s in sentences:
        seen.setdefault(round(s.start, 3), s)
    ordered = tuple(seen[k] for k in sorted(seen))
    end = duration or (ordered[-1].end if ordered else 0.0)
    intro_end = 0
    for i, s in enumerate(ordered):
        if s.start > INTRO_WINDOW:
            break
        if _INTRO_MARKER.search(s.text):
            intro_end = i + 1
    if not intro_end:
        for i, s in enumerate(ordered):
            if s.start > INTRO_PHRASE_WINDOW:
                break
            if _INTRO_PHRASE.search(s.text):
                intro_end = i + 1
    outro_start = len(ordered)
    for i in range(len(ordered) - 1, -1, -1):
        if ordered[i].start < end - OUTRO_WINDOW:
            break
        if _OUTRO_MARKER.search(ordered[i].text):
            outro_start = i
    return EpisodeText(ordered, intro_end, outro_start, end)


def boilerplate(text: EpisodeText, i: int) -> bool:
    """Whether sentence ``i`` is introduction, outro, a sponsor read or an announcement."""
    return i < text.intro_end or i >= text.outro_start or bool(_BOILERPLATE.search(text.sentences[i].text))


def n_words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def is_question(text: str) -> bool:
    return text.rstrip().endswith("?")


def filler(text: str) -> bool:
    """Too short to say anything ("Yeah.", "That's right.")."""
    return n_words(text) < MIN_WORDS


def feature_matrix(
    qvec: np.ndarray,
    qterms: set[str],
    texts: list[str],
    vecs: np.ndarray,
    rows: list[int],
    *,
    term_sets: list[set[str]],
    runs: list[int] | None = None,
) -> np.ndarray:
    """FEATURES for the candidate sentences ``rows`` among runs of spoken sentences: ``texts``,
    their unit vectors ``vecs`` and analysed terms ``term_sets``, in spoken order; ``runs`` numbers
    the run each belongs to (neighbours are read within a run only)."""
    n = len(texts)
    run = runs if runs is not None else [0] * n
    sims = vecs @ qvec

    def same(j: int, k: int) -> bool:
        return 0 <= k < n and run[k] == run[j]

    dense, context, asked, overlap, follows, precedes = [], [], [], [], [], []
    for j in rows:
        near = [k for k in (j - 1, j, j + 1) if same(j, k)]
        ctx = vecs[near].sum(axis=0)
        context.append(float(ctx @ qvec / (np.linalg.norm(ctx) or 1.0)))
        dense.append(float(sims[j]))
        prior = [k for k in range(j - FOLLOW_WINDOW, j) if same(j, k) and is_question(texts[k])]
        asked.append(float(sims[prior[-1]]) if prior and not is_question(texts[j]) else 0.0)
        terms: set[str] = set().union(*(term_sets[k] for k in near))
        overlap.append(len(qterms & terms) / len(qterms) if qterms else 0.0)
        follows.append(same(j, j - 1) and is_question(texts[j - 1]))
        precedes.append(same(j, j + 1) and is_question(texts[j + 1]))
    d, c, a = np.array(dense), np.array(context), np.array(asked)
    out = np.zeros((len(rows), len(FEATURES)), dtype=np.float32)
    out[:, 0], out[:, 1] = d, d - d.max()
    out[:, 2], out[:, 3] = c, c - c.max()
    out[:, 4], out[:, 5] = a, np.where(a > 0, a - a.max(), -1.0)
    out[:, 6] = overlap
    out[:, 7] = [is_question(texts[j]) for j in rows]
    out[:, 8] = follows
    out[:, 9] = precedes
    out[:, 10] = [np.log1p(n_words(texts[j])) for j in rows]
    return out


# The answer score's default blend (answer_model.json may override): e5 similarity of the sentence,
# of the sentence with its neighbours, of the question it replies to, term overlap, the passage's
# min-max search score, and the learned model's log-odds (0: the mined question -> reply model did
# not beat similarity on the listener questions of the dev sets; see benchmarks/results/answers.md),
# and the answer encoder's standardised reading of the ``encoder_top`` best candidates
# (answer_encoder.py; 0: left out, as it lost on the dev sets: scripts/train_answer_encoder.py).
BLEND = {
    "dense": 1.0,
    "context": 0.25,
    "asked": 0.1,
    "overlap": 0.1,
    "passage": 0.03,
    "model": 0.0,
    "encoder": 0.0,
    "encoder_top": 12.0,
}


@dataclass(frozen=True)
class AnswerModel:
    """The answer score: a blend of similarities (``blend``) and a logistic regression over
    standardised MODEL_INPUTS trained on mined question -> reply pairs."""

    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    # Per embedding model: when no candidate's similarity to the question reaches this, abstain
    # (similarities are not comparable across models; a model not listed never abstains this way).
    floors: dict[str, float]
    blend: dict[str, float] = field(default_factory=lambda: dict(BLEND))

    def logit(self, x: np.ndarray) -> np.ndarray:
        """The learned model's log-odds that each candidate (rows of FEATURES, one question's)
        answers the question."""
        z = (model_inputs(x) - self.mean) / self.scale
        return np.asarray(z @ self.coef + self.intercept, dtype=np.float32)

    def score(self, x: np.ndarray, passage: np.ndarray | None = None) -> np.ndarray:
        """Each candidate's answer score: the blend, with ``passage`` the min-max passage scores."""
        b = self.blend
        col = {n: x[:, i] for i, n in enumerate(FEATURES)}
        out = sum((b.get(n, 0.0) * col[n] for n in ("dense", "context", "asked", "overlap")), np.zeros(len(x)))
        if passage is not None:
            out = out + b.get("passage", 0.0) * passage
        if b.get("model", 0.0):
            out = out + b["model"] * self.logit(x)
        return np.asarray(out, dtype=np.float32)

    def to_dict(self) -> dict[str, object]:
        return {
            "features": list(MODEL_INPUTS),
            "coef": [round(float(v), 6) for v in self.coef],
            "intercept": round(float(self.intercept), 6),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "floors": self.floors,
            "blend": self.blend,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> AnswerModel:
        if list(d["features"]) != list(MODEL_INPUTS):  # type: ignore[call-overload]
            raise ValueError(f"answer model features {d['features']} are not {list(MODEL_INPUTS)}")
        return cls(
            coef=np.array(d["coef"], dtype=np.float32),
            intercept=float(d["intercept"]),  # type: ignore[arg-type]
            mean=np.array(d["mean"], dtype=np.float32),
            scale=np.array(d["scale"], dtype=np.float32),
            floors={str(k): float(v) for k, v in dict(d.get("floors") or {}).items()},  # type: ignore[call-overload]
            blend={**BLEND, **{str(k): float(v) for k, v in dict(d.get("blend") or {}).items()}},  # type: ignore[call-overload]
        )


@lru_cache(maxsize=1)
def load_model(path: Path = MODEL_PATH) -> AnswerModel:
    """The shipped answer model."""
    return AnswerModel.from_dict(json.loads(path.read_text(encoding="utf-8")))

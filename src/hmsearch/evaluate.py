"""Search quality: run questions with known answers through the real search path and score it.

A question line (JSONL): {"id", "question", "episode", "start", "end", "type", "lang"} with an
optional "also": [{"episode", "start", "end"}] for other places that answer it. A hit is relevant
when its episode matches and its span overlaps a gold span by at least a second (or by the whole
gold span when that is shorter).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import InputError
from .types import AnswerSentence, Hit

if TYPE_CHECKING:
    from .embed import Encoder
    from .index import IndexStore

MIN_OVERLAP = 1.0  # seconds
ASK_PASSAGES = 3  # `hmsearch ask`'s default -k: the passages its answer sentences come from
CUTOFFS = (1, 5, 10)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    spans: tuple[tuple[str, float, float], ...]  # (episode, start, end); the first is the main one
    type: str = "topical"
    lang: str = ""


def load_questions(path: Path) -> list[Question]:
    """Read a questions JSONL file; a malformed line is a one-line error naming it."""
    try:
        lines = Path(path).read_bytes().decode("utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a questions file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a questions file (not UTF-8 text at byte {exc.start})") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            spans = [(str(obj["episode"]), float(obj["start"]), float(obj["end"]))]
            spans += [(str(a["episode"]), float(a["start"]), float(a["end"])) for a in obj.get("also", [])]
            out.append(
                Question(
                    id=str(obj.get("id", n)),
                    question=str(obj["question"]),
                    spans=tuple(spans),
                    type=str(obj.get("type", "topical")),
                    lang=str(obj.get("lang", "")),
                )
            )
        except RecursionError:
            raise InputError(f"{path}: line {n}: not a question (JSON nested too deeply)") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:120]
            raise InputError(f"{path}: line {n}: not a question ({reason!r})") from None
    if not out:
        raise InputError(f"{path}: no questions")
    return out


class _Span(Protocol):
    @property
    def episode(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


def _relevant(hit: _Span, span: tuple[str, float, float]) -> bool:
    episode, start, end = span
    if hit.episode != episode:
        return False
    overlap = min(hit.end, end) - max(hit.start, start)
    return (overlap >= min(MIN_OVERLAP, max(end - start, 0.0)) and overlap > 0) or (
        end == start and hit.start <= start <= hit.end
    )


def judge(hits: list[Hit], question: Question, k: int = 10) -> dict[str, float]:
    """Per-question metrics: success at 1/5/10, reciprocal rank and nDCG at k (binary gains,
    each gold span counted once)."""
    matched: set[int] = set()
    first = None
    dcg = 0.0
    for rank, hit in enumerate(hits[:k], 1):
        for i, span in enumerate(question.spans):
            if i not in matched and _relevant(hit, span):
                matched.add(i)
                dcg += 1.0 / math.log2(rank + 1)
                first = first or rank
                break
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(question.spans), k) + 1))
    out = {f"R@{c}": float(first is not None and first <= c) for c in CUTOFFS}
    out["MRR@10"] = 1.0 / first if first and first <= 10 else 0.0
    out["nDCG@10"] = dcg / ideal if ideal else 0.0
    out["rank"] = float(first or 0)
    return out


@dataclass
class EvalReport:
    mode: str
    results: list[tuple[Question, dict[str, float]]] = field(default_factory=list)

    def groups(self) -> dict[str, list[dict[str, float]]]:
        out: dict[str, list[dict[str, float]]] = {"all": []}
        for q, m in self.results:
            out["all"].append(m)
            out.setdefault(f"type={q.type}", []).append(m)
            if q.lang:
                out.setdefault(f"lang={q.lang}", []).append(m)
        return out

    def table(self) -> dict[str, dict[str, float]]:
        metrics = [*(f"R@{c}" for c in CUTOFFS), "MRR@10", "nDCG@10"]
        if self.results and "answer@1" in self.results[0][1]:
            metrics.append("answer@1")
        return {
            name: {"n": len(rows), **{m: sum(r[m] for r in rows) / len(rows) for m in metrics}}
            for name, rows in self.groups().items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "metrics": self.table(),
            "questions": [
                {"id": q.id, "type": q.type, "lang": q.lang, "rank": int(m["rank"])} for q, m in self.results
            ],
        }


def judge_answer(answer: list[AnswerSentence], question: Question) -> float:
    """answer@1: 1.0 when the first answer sentence overlaps a gold span, else 0.0."""
    return float(bool(answer) and any(_relevant(answer[0], span) for span in question.spans))


def evaluate(
    store: IndexStore,
    encoder: Encoder | None,
    questions: list[Question],
    *,
    mode: str = "hybrid",
    k: int = 10,
    answers: bool = False,
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Ask every question through the query path and judge the hits (and, with ``answers``, the
    first sentence ``ask`` would answer with: answer@1)."""
    from .query import search
    from .query.service import answer_hits

    report = EvalReport(mode=mode)
    for q in questions:
        hits = search(store, None if mode == "lexical" else encoder, q.question, k=k, mode=mode)
        metrics = judge(hits, q, k)
        if answers and encoder is not None:
            # As `ask` answers: from its default number of supporting passages.
            sentences = answer_hits(store, encoder, q.question, hits[:ASK_PASSAGES])
            metrics["answer@1"] = judge_answer(sentences, q)
        report.results.append((q, metrics))
        if progress:
            progress(1)
    return report

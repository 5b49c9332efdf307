"""Search quality: run questions with known answers through the real search path and score it.

A question line (JSONL): {"id", "question", "episode", "start", "end", "type", "lang"} with an
optional "also": [{"episode", "start", "end"}] for other places that answer it. A hit is relevant
when its episode matches and its span overlaps a gold span by at least a second (or by the whole
gold span when that is shorter). A question the episodes never answer has ``"answerable": false``
and no span: it scores only whether ``ask`` abstained. An optional ``"split"`` ("dev", "test")
lets a held-back slice be scored apart.
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
    from .query import QueryService

MIN_OVERLAP = 1.0  # seconds
ASK_PASSAGES = 3  # `hmsearch ask`'s default -k: the passages its answer sentences come from
CUTOFFS = (1, 5, 10)
METRICS = (*(f"R@{c}" for c in CUTOFFS), "MRR@10", "nDCG@10", "answer@1", "answer@3")
# An answer sentence this early in an episode is most likely its introduction: the first 3 minutes,
# or the first INTRO_SHARE of a shorter episode (an 11-minute episode says what it is about in its
# first half minute, and has answers in its third minute).
INTRO_SECONDS = 180.0
INTRO_SHARE = 0.05


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    spans: tuple[tuple[str, float, float], ...]  # (episode, start, end); the first is the main one
    type: str = "topical"
    lang: str = ""
    split: str = ""
    names_guest: bool | None = None  # whether the question names the guest (None: not marked)

    @property
    def answerable(self) -> bool:
        return bool(self.spans)


MAX_QUESTIONS_BYTES = 64 << 20


def load_questions(path: Path, *, split: str | None = None) -> list[Question]:
    """Read a questions JSONL file (only the lines of ``split`` when given); a malformed line is a
    one-line error naming it."""
    from .fsutil import read_limited

    try:
        data = read_limited(Path(path), MAX_QUESTIONS_BYTES)  # never a device or pipe read for ever
        if len(data) > MAX_QUESTIONS_BYTES:
            raise InputError(f"{path}: larger than {MAX_QUESTIONS_BYTES >> 20} MB; not a questions file")
        lines = data.decode("utf-8-sig").splitlines()  # a byte-order mark from an editor is no question
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
            if obj.get("answerable", True) is False:
                spans = []
            else:
                spans = [(str(obj["episode"]), float(obj["start"]), float(obj["end"]))]
                spans += [(str(a["episode"]), float(a["start"]), float(a["end"])) for a in obj.get("also", [])]
            if split is not None and str(obj.get("split", "")) != split:
                continue
            out.append(
                Question(
                    id=str(obj.get("id", n)),
                    question=str(obj["question"]),
                    spans=tuple(spans),
                    type=str(obj.get("type", "topical")),
                    lang=str(obj.get("lang", "")),
                    split=str(obj.get("split", "")),
                    names_guest=bool(obj["names_guest"]) if "names_guest" in obj else None,
                )
            )
        except RecursionError:
            raise InputError(f"{path}: line {n}: not a question (JSON nested too deeply)") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:120]
            raise InputError(f"{path}: line {n}: not a question ({reason!r})") from None
    if not out:
        raise InputError(f"{path}: no questions" + (f" in split {split!r}" if split is not None else ""))
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
            if q.names_guest is not None:
                out.setdefault(f"guest={'named' if q.names_guest else 'unnamed'}", []).append(m)
        return out

    def table(self) -> dict[str, dict[str, float]]:
        """Each group's mean of each metric over the questions that have it (retrieval and answer
        metrics over answerable questions, abstention over all), plus abstention precision
        (abstained questions that were unanswerable) and recall (unanswerable ones abstained)."""
        out: dict[str, dict[str, float]] = {}
        for name, rows in self.groups().items():
            row: dict[str, float] = {"n": len(rows)}
            for m in (*METRICS, "intro@1"):
                have = [r[m] for r in rows if m in r]
                if have:
                    row[m] = sum(have) / len(have)
            if any("abstained" in r for r in rows):
                abstained = [r for r in rows if r.get("abstained")]
                unanswerable = [r for r in rows if "unanswerable" in r]
                row["abst-P"] = sum("unanswerable" in r for r in abstained) / len(abstained) if abstained else 0.0
                if unanswerable:
                    row["abst-R"] = sum(bool(r.get("abstained")) for r in unanswerable) / len(unanswerable)
                answerable = [r for r in rows if "unanswerable" not in r and "abstained" in r]
                if answerable:
                    row["refused"] = sum(bool(r["abstained"]) for r in answerable) / len(answerable)
            out[name] = row
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "metrics": self.table(),
            "questions": [
                {"id": q.id, "type": q.type, "lang": q.lang, "rank": int(m.get("rank", 0))}
                | {key: m[key] for key in ("answer@1", "answer@3", "abstained") if key in m}
                for q, m in self.results
            ],
        }


def judge_answer(answer: list[AnswerSentence], question: Question, k: int = 1) -> float:
    """answer@k: 1.0 when one of the first ``k`` answer sentences overlaps a gold span, else 0.0."""
    return float(any(_relevant(s, span) for s in answer[:k] for span in question.spans))


def intro_window(duration: float | None) -> float:
    """How far into an episode of ``duration`` seconds (None: unknown) an answer counts as intro@1."""
    return INTRO_SECONDS if not duration else min(INTRO_SECONDS, INTRO_SHARE * duration)


def judge_answers(
    answer: list[AnswerSentence], question: Question, durations: dict[str, float] | None = None
) -> dict[str, float]:
    """answer@1, answer@3 and whether ``ask`` abstained (an empty answer) for an answerable
    question; only the abstention for one the episodes never answer. ``durations``: episode ->
    seconds, for intro@1's window (intro_window)."""
    out = {"abstained": float(not answer)}
    if not question.answerable:
        return {**out, "unanswerable": 1.0}
    out["answer@1"] = judge_answer(answer, question, 1)
    out["answer@3"] = judge_answer(answer, question, 3)
    out["intro@1"] = float(bool(answer) and answer[0].start < intro_window((durations or {}).get(answer[0].episode)))
    return out


def evaluate(
    service: QueryService,
    questions: list[Question],
    *,
    mode: str = "hybrid",
    k: int = 10,
    answers: bool = False,
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Ask every question through the read API, as a user's `search` (and, with ``answers``, `ask`)
    would, and judge the hits (answer@1, answer@3, abstention: the sentences `ask` answers with,
    from its default number of supporting passages)."""
    from .query import AskRequest, SearchRequest

    report = EvalReport(mode=mode)
    durations = {e.id: e.duration for e in service.episodes()} if answers else {}
    for q in questions:
        if answers:
            asked = service.ask(AskRequest(q.question, k=k, mode=mode, answer_from=ASK_PASSAGES))
            hits, sentences = asked.hits, asked.answer
        else:
            hits, sentences = service.search(SearchRequest(q.question, k=k, mode=mode)).hits, []
        metrics = judge(hits, q, k) if q.answerable else {}
        if answers:
            metrics.update(judge_answers(sentences, q, durations))
        report.results.append((q, metrics))
        if progress:
            progress(1)
    return report

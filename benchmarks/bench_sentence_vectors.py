"""What storing sentence vectors costs at index time: embedding and bytes, against the passages'.

    .venv/bin/python benchmarks/bench_sentence_vectors.py --index-dir IDX [--episodes 3]

For the first N episodes of an index built by `hmsearch index` (which stores both), the index's
own document encoder embeds each episode's passages and then its sentences, interleaved episode
by episode so a busy machine slows both alike; sizes are the files on disk (passage vectors
float32 in segments/, sentence vectors float16 in cache/sentences-*/).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hmsearch.chunk import sentences_from_passages
from hmsearch.embed import load_encoder
from hmsearch.index import IndexStore
from hmsearch.index import sentences as stored


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    store = IndexStore(args.index_dir)
    manifest = store.require()
    encoder = load_encoder(manifest.embedding_model, role="index")
    first = store.passages(store.episodes()[0].id)  # warm up on the shapes both will see
    encoder.encode_documents([p.text for p in first] + [s.text for s in sentences_from_passages(first)])
    rows = []
    for episode in store.episodes()[: args.episodes]:
        passages = store.passages(episode.id)
        said = sentences_from_passages(passages)
        t0 = time.process_time()
        encoder.encode_documents([p.text for p in passages])
        t1 = time.process_time()
        encoder.encode_documents([s.text for s in said])
        t2 = time.process_time()
        rows.append(
            {
                "episode": episode.id,
                "passages": len(passages),
                "sentences": len(said),
                "passage_cpu_s": t1 - t0,
                "sentence_cpu_s": t2 - t1,
            }
        )
        print(
            f"{episode.id}: {len(passages)} passages {t1 - t0:.1f} CPU-s, {len(said)} sentences {t2 - t1:.1f} CPU-s",
            file=sys.stderr,
        )
    npy = sum(f.stat().st_size for f in (store.root / "segments").glob("*.npy"))
    npz = sum(f.stat().st_size for f in stored.path_for(store, "x").parent.glob("*.npz"))
    n = sum(e.n_passages for e in store.episodes())
    pc, sc = sum(r["passage_cpu_s"] for r in rows), sum(r["sentence_cpu_s"] for r in rows)
    out = {
        "episodes": rows,
        "embed_cpu_ratio": (pc + sc) / pc,
        "sentences_per_passage": sum(r["sentences"] for r in rows) / sum(r["passages"] for r in rows),
        "passage_vector_bytes_per_passage": npy / n,
        "sentence_vector_bytes_per_passage": npz / n,
    }
    print(
        f"embedding CPU with sentence vectors: {out['embed_cpu_ratio']:.2f}x the passages' alone; "
        f"{out['sentences_per_passage']:.1f} sentences a passage; bytes a passage: passage vectors "
        f"{out['passage_vector_bytes_per_passage']:.0f}, sentence vectors {out['sentence_vector_bytes_per_passage']:.0f}"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

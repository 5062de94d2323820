"""Dump the features of the "found" decision (top dense cosine, query-word coverage of the top
passages) for answerable and unanswerable questions, to calibrate `qa.answer.FoundRule`.

    PYTHONPATH=. python -m bench.quality.found_features '' ../shared/eval/seed_dev.jsonl bench/dev_extra.jsonl

Writes bench/cache/found_features.json and prints percentiles per group.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench.common import CACHE, ROOT


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", help="SearchParams fields, e.g. '' (defaults) or 'rerank_depth=0'")
    parser.add_argument("files", nargs="+", type=Path, help="QA .jsonl files")
    parser.add_argument("--cache", type=Path, default=CACHE, help="embedding cache folder")
    args = parser.parse_args(argv)

    from qa.config import Settings
    from qa.embedding import get_embedder
    from qa.evaluation import CachedEmbedder, qa_retriever, read_qa
    from qa.lexical import tokenize
    from qa.retriever import Retriever
    from qa.search import SearchParams

    emb = CachedEmbedder(get_embedder(), args.cache)
    base = qa_retriever(Settings(corpus_dir=ROOT / "corpus"), emb, args.cache)
    r = Retriever(base.reader, emb, SearchParams.parse(args.params))

    def coverage(q, hit):
        return len(q & set(tokenize(hit.section + " " + hit.text))) / max(1, len(q))

    out = []
    for f in args.files:
        for row in read_qa(f):
            a = r.ask(row["question"], k=5)
            _, parts, _ = r.searcher.search_with_scores(row["question"], 5)
            dense, sent = parts.dense, np.asarray(parts.sentence)
            q = set(tokenize(row["question"], content_only=True))
            top = a.passages[0]
            out.append({"file": f.name, "id": row["id"], "ans": row["evidence"] is not None, "dense": top.dense,
                        "maxdense": max(h.dense for h in a.passages), "mean": float(np.mean(dense)),
                        "median": float(np.median(dense)), "std": float(np.std(dense)), "smean": float(np.mean(sent)),
                        "sstd": float(np.std(sent)), "smax": float(np.max(sent)), "cov": coverage(q, top),
                        "cov3": max(coverage(q, h) for h in a.passages[:3]), "bm25": top.bm25, "q": row["question"]})
    args.cache.mkdir(parents=True, exist_ok=True)
    (args.cache / "found_features.json").write_text(json.dumps(out))
    for group in (True, False):
        xs = [o for o in out if o["ans"] == group]
        if not xs:
            continue
        d = np.array([o["maxdense"] for o in xs])
        c = np.array([o["cov"] for o in xs])
        print("answerable" if group else "unanswerable", len(xs), "dense pct",
              np.percentile(d, [0, 2, 5, 10, 50, 90, 95, 98, 100]).round(3),
              "cov pct", np.percentile(c, [0, 5, 50, 95, 100]).round(2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

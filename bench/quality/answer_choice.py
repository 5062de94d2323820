"""Compare ways of choosing the answer sentence among the top passages (dev + extra questions):
rank penalty × word bonus grid, share of questions whose chosen sentence holds the evidence.

    PYTHONPATH=. python -m bench.quality.answer_choice ''
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import CACHE, ROOT, SHARED


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", nargs="?", default="", help="SearchParams fields ('' = defaults)")
    parser.add_argument("--shared", type=Path, default=SHARED, help="shared data folder (eval/)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="embedding cache folder")
    args = parser.parse_args(argv)

    from qa.config import Settings
    from qa.embedding import get_embedder
    from qa.evaluation import CachedEmbedder, qa_retriever, read_qa
    from qa.evaluation.runners import _norm
    from qa.lexical import tokenize
    from qa.retriever import Retriever
    from qa.search import SearchParams

    emb = CachedEmbedder(get_embedder(), args.cache)
    base = qa_retriever(Settings(corpus_dir=ROOT / "corpus"), emb, args.cache)
    s = Retriever(base.reader, emb, SearchParams.parse(args.params)).searcher
    files = [args.shared / "eval" / "seed_dev.jsonl", ROOT / "bench" / "dev_extra.jsonl"]
    rows = [x for f in files for x in read_qa(f) if x["evidence"]]
    cands = []
    for row in rows:
        hits, parts, hit_rows = s.search_with_scores(row["question"], 5)
        q = set(tokenize(row["question"]))
        items = []
        for h, (hit, sentences) in enumerate(zip(hits[:3], s.hit_sentences(hit_rows[:3], parts))):
            for a, b, cos, *_ in sentences:
                text = hit.text[a - hit.start_char : b - hit.start_char]
                cov = len(q & set(tokenize(text))) / max(1, len(q))
                items.append((h, cos, cov, _norm(row["evidence"]) in _norm(text), hit.score))
        cands.append(items)
    for pen in [0, 0.05, 0.1, 0.15, 0.2, 1.0]:
        for beta in [0, 0.05, 0.1, 0.2, 0.3]:
            ok = np.mean([max(items, key=lambda t: t[1] - pen * t[0] + beta * t[2])[3] for items in cands if items])
            print(pen, beta, round(ok, 3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

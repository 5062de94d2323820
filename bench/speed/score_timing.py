"""Time `Searcher.score` (no query encoding) on SciFact's index for SearchParams configurations.

    PYTHONPATH=. python -m bench.speed.score_timing 'rerank_depth=0' ''
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.common import CACHE, SCIFACT


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", default=[""], help="SearchParams fields ('' = defaults)")
    parser.add_argument("--scifact", type=Path, default=SCIFACT, help="the SciFact BEIR folder")
    parser.add_argument("--cache", type=Path, default=CACHE, help="embedding cache folder")
    args = parser.parse_args(argv)

    from qa.embedding import get_embedder
    from qa.evaluation import CachedEmbedder, index_beir, load_beir
    from qa.retriever import Retriever
    from qa.search import SearchParams

    emb = CachedEmbedder(get_embedder(), args.cache)
    data = load_beir(args.scifact, "test")
    index = index_beir(data, emb, args.cache)
    questions = [data.queries[q] for q in data.qrels]
    vectors = emb.encode_queries(questions)
    for config in args.configs or [""]:
        searcher = Retriever(index.retriever.reader, emb, SearchParams.parse(config)).searcher
        for q, v in zip(questions[:20], vectors):  # warm up
            searcher.score(q, k=5, query_vector=v)
        seconds = []
        for q, v in zip(questions, vectors):
            start = time.perf_counter()
            searcher.score(q, k=5, query_vector=v)
            seconds.append(time.perf_counter() - start)
        print(f"{config or 'default':30s} p50 {np.median(seconds) * 1e3:.2f} ms  "
              f"p95 {np.percentile(seconds, 95) * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

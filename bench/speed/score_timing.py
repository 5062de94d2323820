"""Time `Searcher.score` (no query encoding) on SciFact's index for SearchParams configurations.

    PYTHONPATH=. python -m bench.speed.score_timing 'rerank_depth=0' ''
    PYTHONPATH=. python -m bench.speed.score_timing --collection postgres15 'rerank_doc_passage=0,rerank_doc_length=0' ''

`--collection`: a bench.quality collection instead (built in memory from the embedding cache and
scored as `qa index` would index it), timed on its dev questions, each configuration in turn, `--rounds` times.
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
    parser.add_argument("--collection", default="", help="a bench.quality collection (e.g. postgres15) instead of SciFact")
    parser.add_argument("--rounds", type=int, default=1, help="times every configuration is timed, alternating")
    args = parser.parse_args(argv)

    from qa.embedding import get_embedder
    from qa.evaluation import CachedEmbedder, index_beir, load_beir
    from qa.retriever import Retriever
    from qa.search import SearchParams

    emb = CachedEmbedder(get_embedder(), args.cache)
    if args.collection:
        from bench.quality import table
        from qa.store.local.vectors import index_kind
        from qa.store.memory import MemoryReader

        c = next(c for c in table.collections() if c.name == args.collection)
        corpus = table.load_collection(c, emb, args.cache)
        reader = MemoryReader(corpus.data)
        reader.exact = index_kind(len(corpus.data.passages)) == "flat"  # as `qa index` would index it
        questions = [r["question"] for r in table.read_questions(c.splits["dev"])]
    else:
        data = load_beir(args.scifact, "test")
        reader = index_beir(data, emb, args.cache).retriever.reader
        questions = [data.queries[q] for q in data.qrels]
    vectors = emb.encode_queries(questions)
    for config in (args.configs or [""]) * args.rounds:
        searcher = Retriever(reader, emb, SearchParams.parse(config)).searcher
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

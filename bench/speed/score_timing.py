"""Time `Searcher.score` (no query encoding) on SciFact's index for SearchParams configurations.

    PYTHONPATH=. python bench/speed/score_timing.py 'rerank_depth=0' ''
"""
import sys
import time
from pathlib import Path

import numpy as np

from qa.api import Retriever
from qa.embedding import get_embedder
from qa.evaluation import CachedEmbedder, index_beir, load_beir
from qa.search import SearchParams

emb = CachedEmbedder(get_embedder(), Path("bench/cache"))
data = load_beir(Path("/work/shared/benchmarks/scifact"), "test")
index = index_beir(data, emb, Path("bench/cache"))
questions = [data.queries[q] for q in data.qrels]
vectors = emb.encode_queries(questions)
for config in sys.argv[1:] or [""]:
    searcher = Retriever(index.retriever.data, emb, eval(f"SearchParams({config})")).searcher
    for q, v in zip(questions[:20], vectors):  # warm up
        searcher.score(q, k=5, query_vector=v)
    seconds = []
    for q, v in zip(questions, vectors):
        start = time.perf_counter()
        searcher.score(q, k=5, query_vector=v)
        seconds.append(time.perf_counter() - start)
    print(f"{config or 'default':30s} p50 {np.median(seconds) * 1e3:.2f} ms  p95 {np.percentile(seconds, 95) * 1e3:.2f} ms")

"""Warm query: `Retriever.search` p50 against the time to encode the question alone, on a
SciFact-size index (all 5,183 SciFact abstracts, chunked as `qa index` does: real passages,
sentences and BM25). The index's vectors are random unit vectors (embedding 70k texts with the
model would take ~1.5 h here); every question is really encoded by the query encoder `qa ask`
uses. Target: search p50 <= 1.5 x encode p50."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.common import CACHE, scifact_queries, summary, target, write_result, write_scifact_corpus


class RandomEmbedder:
    """Random unit vectors (seeded by the text), for building indexes whose size is the point."""

    def __init__(self, name: str, dim: int = 384):
        self.name = name
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def _vectors(self, texts) -> np.ndarray:
        seed = int(hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16], 16)
        v = np.random.default_rng(seed).standard_normal((len(texts), self._dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def encode_documents(self, texts, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        return self._vectors(list(texts)) if len(texts) else np.zeros((0, self._dim), np.float32)

    def encode_queries(self, texts) -> np.ndarray:
        return self._vectors(list(texts))


def build(settings, exact: bool = False, dim: int = 384):
    """Build the index of `settings` with random vectors (exact=True forces a flat index)."""
    from qa.build import build_index
    from qa.store.local import vectors as store

    saved = store.EXACT_MAX
    if exact:
        store.EXACT_MAX = 10**9
    try:
        return build_index(settings, embedder=RandomEmbedder(settings.model, dim))
    finally:
        store.EXACT_MAX = saved


def measure(retriever, embedder, questions: list[str], k: int = 10, warmup: int = 10) -> dict:
    for q in questions[:warmup]:
        embedder.encode_queries([q])
        retriever.search(q, k=k)
    encode, search = [], []
    for q in questions:  # alternated: both see the same caches and clock
        t = time.perf_counter()
        embedder.encode_queries([q])
        encode.append(time.perf_counter() - t)
        t = time.perf_counter()
        retriever.search(q, k=k)
        search.append(time.perf_counter() - t)
    return {"encode": summary(encode), "search": summary(search)}


def run(docs: int | None = None, queries: int = 300, work: Path = CACHE / "warm", out_dir=None,
        embedder=None, compare_exact: bool = True) -> dict:
    from qa.retriever import Retriever
    from qa.config import Settings
    from qa.embedding import get_embedder

    work = Path(work)
    corpus = write_scifact_corpus(work / f"scifact-{docs or 'all'}", docs)
    embedder = embedder or get_embedder()
    settings = Settings(corpus_dir=corpus, index_dir=work / f"index-{docs or 'all'}", model=embedder.name)
    report = build(settings, dim=embedder.dim)
    retriever = Retriever.load(settings.index_dir, embedder=embedder)
    questions = scifact_queries(queries)
    result = {
        "corpus": f"SciFact corpus ({report.files} abstracts), real passages/sentences/BM25, random unit vectors",
        "passages": report.passages,
        "sentences": report.sentences,
        "vector_index": retriever.reader.vector_kind,
        "questions": len(questions),
        **measure(retriever, embedder, questions),
    }
    result["encoder"] = type(getattr(embedder, "_query", None) or embedder).__name__  # after first use
    ratio = result["search"]["p50_ms"] / result["encode"]["p50_ms"]
    result["targets"] = [target("warm query: Retriever.search p50 / encode p50", ratio, 1.5)]
    if compare_exact:  # the same corpus with an exact (flat) index: why it is not used at this size
        exact_settings = replace(settings, index_dir=work / f"index-{docs or 'all'}-exact")
        build(exact_settings, exact=True, dim=embedder.dim)
        exact = Retriever.load(exact_settings.index_dir, embedder=embedder)
        m = measure(exact, embedder, questions)
        result["exact_index"] = {**m, "ratio": round(m["search"]["p50_ms"] / m["encode"]["p50_ms"], 3)}
    write_result("warm_query", result, out_dir)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=None, help="first N SciFact documents (default all)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    r = run(args.docs, args.queries, out_dir=args.out)
    print(f"warm query ({r['passages']} passages, {r['vector_index']}): search p50 {r['search']['p50_ms']} ms "
          f"p95 {r['search']['p95_ms']} ms; encode p50 {r['encode']['p50_ms']} ms; ratio {r['targets'][0]['value']}")
    if "exact_index" in r:
        e = r["exact_index"]
        print(f"  exact index: search p50 {e['search']['p50_ms']} ms p95 {e['search']['p95_ms']} ms, ratio {e['ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

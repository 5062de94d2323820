"""Milvus Lite against the local backend, in one run, through the `Store` interface: build time,
vector search latency and recall@10 against exact search, with and without a source filter, and
the whole hybrid `Searcher.search` latency.

Synthetic data (no model can embed 100,000 passages here in reasonable time): passage vectors
are one of `TOPICS` random 384-d centres plus Gaussian noise, normalised; 3-5 sentence vectors
per passage near their passage; texts of pseudo-words, a third from the passage's topic; ten
passages per source file. Questions: a passage's topic words; their vectors a passage's vector
plus noise. Exact truth: brute force over the vectors (with the filter: over the allowed rows).

    python -m bench.speed.milvus --passages 100000    # bench/results/milvus.json; then python -m bench.speed.report
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import RESULTS, write_result
from bench.speed.scale import DIM, TOPIC_WORDS, TOPICS, VOCAB, _words  # the scale benchmark's pseudo-words

PER_SOURCE = 10


def synthetic(n: int, seed: int = 0):
    """(IndexData, query vectors, questions) of `n` synthetic passages."""
    from qa import lexical
    from qa.schema import INDEX_FORMAT, Manifest, Passage
    from qa.store import IndexData

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
    vocab = np.array(_words(VOCAB + TOPICS * TOPIC_WORDS, rng), dtype=object)
    topic_words = vocab[VOCAB:].reshape(TOPICS, TOPIC_WORDS)
    zipf = 1.0 / np.arange(1, VOCAB + 1)
    cdf = np.cumsum(zipf / zipf.sum())
    topic = rng.integers(0, TOPICS, n)
    counts = rng.integers(3, 6, n)
    vectors = centres[topic] + rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sv = np.repeat(vectors, counts, axis=0)
    sv += (0.5 / np.sqrt(DIM)) * rng.standard_normal(sv.shape, dtype=np.float32)
    sv /= np.linalg.norm(sv, axis=1, keepdims=True)
    passages, spans = [], []
    for i in range(n):
        sentences = []
        for _ in range(int(counts[i])):
            k = int(rng.integers(8, 17))
            common = vocab[np.searchsorted(cdf, rng.random(k))]
            topical = topic_words[topic[i], rng.integers(0, TOPIC_WORDS, k)]
            words = np.where(rng.random(k) < 1 / 3, topical, common)
            sentences.append(" ".join(words).capitalize() + ".")
        pos = 0
        for s in sentences:
            spans.append((i, pos, pos + len(s)))
            pos += len(s) + 1
        text = " ".join(sentences)
        passages.append(Passage(text=text, source=f"doc{i // PER_SOURCE:06d}.txt", section="", start_line=1,
                                end_line=1, start_char=0, end_char=len(text)))
    manifest = Manifest(format=INDEX_FORMAT, model="synthetic", dim=DIM, passages=n, sentences=len(spans))
    data = IndexData(manifest=manifest, passages=passages, passage_vectors=vectors, sentence_spans=spans,
                     sentence_vectors=sv.astype(np.float32), bm25=lexical.build_bm25(passages))
    rows = rng.choice(n, 200, replace=False)
    qv = vectors[rows] + (0.8 / np.sqrt(DIM)) * rng.standard_normal((len(rows), DIM), dtype=np.float32)
    qv /= np.linalg.norm(qv, axis=1, keepdims=True)
    questions = [f"q{j} " + " ".join(topic_words[topic[r], rng.integers(0, TOPIC_WORDS, 8)]) for j, r in
                 enumerate(rows)]
    return data, qv.astype(np.float32), questions


def exact_top(vectors: np.ndarray, q: np.ndarray, k: int, allowed: np.ndarray | None) -> set[int]:
    scores = vectors @ q
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    top = np.argpartition(-scores, k)[:k]
    return set(int(i) for i in top if np.isfinite(scores[i]))


class Lookup:
    """The embedder of the benchmark questions: their precomputed vectors."""

    name = "synthetic"
    dim = DIM

    def __init__(self, questions, vectors):
        self.table = dict(zip(questions, vectors))

    def encode_queries(self, texts):
        return np.stack([self.table[t] for t in texts])


def pct(values, q):
    return round(float(np.percentile(np.asarray(values) * 1e3, q)), 2)


def measure(reader, data, qv, questions, filters, pattern) -> dict:
    from qa.search.searcher import Searcher

    out = {}
    for label, sources in (("no filter", None), ("source filter", filters)):
        allowed = None if sources is None else reader.source_mask(sources)
        times, recall = [], []
        for q in qv:
            t = time.perf_counter()
            rows, _ = reader.search(q, 10, sources)
            times.append(time.perf_counter() - t)
            truth = exact_top(data.passage_vectors, q, 10, allowed)
            recall.append(len(truth & set(int(r) for r in rows)) / max(1, len(truth)))
        searcher = Searcher(reader, Lookup(questions, qv))
        patterns = None if sources is None else [pattern + "*"]
        hybrid = []
        for question in questions[:100]:
            t = time.perf_counter()
            searcher.search(question, 5, patterns)
            hybrid.append(time.perf_counter() - t)
        out[label] = {"vector_search_p50_ms": pct(times, 50), "vector_search_p95_ms": pct(times, 95),
                      "recall_at_10": round(float(np.mean(recall)), 4),
                      "hybrid_search_p50_ms": pct(hybrid, 50), "hybrid_search_p95_ms": pct(hybrid, 95)}
    return out


def run(n: int, work: Path) -> dict:
    from qa.store.local import LocalStore
    from qa.store.milvus import MilvusStore

    t = time.perf_counter()
    data, qv, questions = synthetic(n)
    generate = time.perf_counter() - t
    all_sources = sorted({p.source for p in data.passages})
    pattern = "doc000" if n >= 10_000 * PER_SOURCE else "doc0000"  # a tenth of the files (of 100,000 passages)
    filters = {s for s in all_sources if s.startswith(pattern)}
    results = {"passages": n, "sentences": len(data.sentence_spans), "sources": len(all_sources),
               "filter_sources": len(filters), "filter_passages": sum(p.source in filters for p in data.passages),
               "generate_seconds": round(generate, 1), "backends": {}}
    backends = {
        "local": lambda: LocalStore(work / "local"),
        "milvus-lite": lambda: MilvusStore(str(work / "milvus.db"), prefix="bench"),
    }
    for name, make in backends.items():
        store = make()
        t = time.perf_counter()
        with store.lock():
            store.write(data)
        build = time.perf_counter() - t
        t = time.perf_counter()
        reader = store.open()
        opened = time.perf_counter() - t
        print(f"{name}: built in {build:.1f} s", flush=True)
        results["backends"][name] = {"build_seconds": round(build, 1), "open_seconds": round(opened, 2),
                                     "vector_index": reader.manifest.vector_index,
                                     **measure(reader, data, qv, questions, filters, pattern)}
        print(json.dumps(results["backends"][name]), flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--work", type=Path, help="folder for the two indexes (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=RESULTS / "milvus.json")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="qa-bench-milvus-"))
    try:
        results = run(args.passages, work)
    finally:
        if args.work is None:
            from qa.store.milvus.client import close_all

            close_all()  # Milvus Lite lets go of its file, then the folder can go
            shutil.rmtree(work, ignore_errors=True)
    path = write_result("milvus", results, args.out.parent)
    if path != args.out:
        path.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Scale: index type by corpus size, recall and latency of approximate search, memory at
1,000,000 passages; and the sweep that sets the exact-search threshold (qa.store.local.vectors.EXACT_MAX).

Synthetic data (no model can embed a million passages here in reasonable time):
- passage vectors: 1,000 random centres in 384-d ("topics"); each passage is its topic's centre
  plus Gaussian noise of the same scale, L2-normalised (nearest neighbours at cosine ~0.5-0.8,
  unrelated passages ~0, like sentence embeddings);
- sentence vectors: the passage vector plus half as much noise, normalised; 3-5 per passage;
- text: sentences of 8-16 pseudo-words, a third drawn from the topic's 40 words, the rest from a
  20,000-word Zipf vocabulary (so BM25 has long and short posting lists);
- questions: 8 words of a passage's topic; their vectors: a passage vector plus noise.

`build` runs in this process (time and peak memory reported); `query` runs in a fresh process
that loads the index as `qa` does and measures recall@10 against exact search, latency and RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.common import CACHE, ROOT, current_rss_mb, peak_rss_mb, summary, target, write_result

DIM = 384
TOPICS = 1000
VOCAB = 20_000
TOPIC_WORDS = 40
QUERIES = 200
SYLLABLES = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"]


def _words(n: int, rng) -> list[str]:
    out, seen = [], set()
    while len(out) < n:
        w = "".join(rng.choice(SYLLABLES, size=rng.integers(2, 5)))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


class Synthetic:
    """Deterministic synthetic corpus of `n` passages (see the module docstring)."""

    def __init__(self, n: int, seed: int = 0):
        self.n = n
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.centres = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
        self.vocab = np.array(_words(VOCAB + TOPICS * TOPIC_WORDS, rng), dtype=object)
        self.topic_words = self.vocab[VOCAB:].reshape(TOPICS, TOPIC_WORDS)
        weights = 1.0 / np.arange(1, VOCAB + 1)
        self._cdf = np.cumsum(weights / weights.sum())
        self._cdf[-1] = 1.0
        self.topic = rng.integers(0, TOPICS, n)
        self.n_sentences = rng.integers(3, 6, n)

    def passage_vectors(self, start: int, stop: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 1, start])
        x = self.centres[self.topic[start:stop]] + rng.standard_normal((stop - start, DIM), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def sentence_vectors(self, passage_vectors: np.ndarray, counts: np.ndarray, start: int, dtype) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 2, start])
        x = np.repeat(passage_vectors, counts, axis=0)
        noise = rng.standard_normal(x.shape, dtype=np.float32)
        noise *= 0.5 / np.sqrt(DIM)  # cosine ~0.9 to it; in place: one temporary block, not three
        x += noise
        del noise
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(dtype, copy=False)

    def texts(self, start: int, stop: int) -> list[list[str]]:
        """Sentences of passages start..stop-1 (vectorised: one draw per block)."""
        rng = np.random.default_rng([self.seed, 3, start])
        counts = self.n_sentences[start:stop]
        lengths = rng.integers(8, 17, int(counts.sum()))
        total = int(lengths.sum())
        common = np.searchsorted(self._cdf, rng.random(total))
        topic_of_word = np.repeat(np.repeat(self.topic[start:stop], counts), lengths)
        topical = VOCAB + topic_of_word * TOPIC_WORDS + rng.integers(0, TOPIC_WORDS, total)
        words = self.vocab[np.where(rng.random(total) < 1 / 3, topical, common)].tolist()
        ends = np.cumsum(lengths).tolist()
        sentences, begin = [], 0
        for end in ends:
            sentences.append(" ".join(words[begin:end]).capitalize() + ".")
            begin = end
        out, at = [], 0
        for c in counts.tolist():
            out.append(sentences[at : at + c])
            at += c
        return out

    def queries(self, count: int = QUERIES) -> tuple[list[str], np.ndarray]:
        rng = np.random.default_rng([self.seed, 4])
        rows = rng.choice(self.n, count, replace=False)
        vectors = np.concatenate([self.passage_vectors(int(r), int(r) + 1) for r in rows])
        vectors += (0.8 / np.sqrt(DIM)) * rng.standard_normal(vectors.shape, dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        questions = [
            f"q{j} " + " ".join(self.topic_words[self.topic[r], rng.integers(0, TOPIC_WORDS, 8)]) + "?"
            for j, r in enumerate(rows)
        ]
        return questions, vectors.astype(np.float32)


BLOCK = 20_000  # passages generated and written at a time: ~80,000 sentence vectors, ~120 MB float32


def build(n: int, index_dir: Path, seed: int = 0, block: int = BLOCK) -> dict:
    """Write a `qa` index of `n` synthetic passages into `index_dir`, streamed block by block
    through the store's `GenerationWriter` (the whole corpus is never in memory: the generator
    holds one block, the writer streams it to disk); times and peak memory."""
    from qa.schema import INDEX_FORMAT, Manifest, Passage
    from qa.store.local import generations, vectors as store

    started = time.perf_counter()
    times = {"generate_s": 0.0, "write_s": 0.0}
    syn = Synthetic(n, seed)
    questions, qv = syn.queries()
    best_ids = np.zeros((len(qv), 0), dtype=np.int64)  # exact top-10 by brute force, block by block
    best = np.zeros((len(qv), 0), dtype=np.float32)
    shutil.rmtree(index_dir, ignore_errors=True)
    index_dir.mkdir(parents=True)
    writer = generations.GenerationWriter(index_dir, DIM, expected_passages=n)
    dtype = store.sentence_dtype(n)
    truth_s = 0.0
    for a in range(0, n, block):
        b = min(n, a + block)
        t = time.perf_counter()
        pv = syn.passage_vectors(a, b)
        passages, spans = [], []
        for i, sentences in zip(range(a, b), syn.texts(a, b)):
            text = " ".join(sentences)
            pos = 0
            for sentence in sentences:
                spans.append((i - a, pos, pos + len(sentence)))
                pos += len(sentence) + 1
            passages.append(Passage(text=text, source=f"doc{i // 10:06d}.txt", section="", start_line=1,
                                    end_line=1, start_char=0, end_char=len(text)))
        sv = syn.sentence_vectors(pv, syn.n_sentences[a:b], a, dtype)
        times["generate_s"] += time.perf_counter() - t
        t = time.perf_counter()
        scores = np.concatenate([best, (pv @ qv.T).T], axis=1)
        ids = np.concatenate([best_ids, np.broadcast_to(np.arange(a, b), (len(qv), b - a))], axis=1)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        best, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(ids, top, 1)
        truth_s += time.perf_counter() - t
        t = time.perf_counter()
        writer.add(passages, pv, spans, sv)
        times["write_s"] += time.perf_counter() - t
        del passages, spans, pv, sv
    manifest = Manifest(format=INDEX_FORMAT, model="synthetic", dim=DIM, normalize=True, passages=n,
                        sentences=writer.sentences, extra={"synthetic_seed": seed})
    t = time.perf_counter()
    gen = writer.finish(manifest)
    times["finish_s"] = time.perf_counter() - t  # vector index (train, add), BM25, row arrays, manifest
    times["ground_truth_s"] = truth_s
    (Path(index_dir) / "bench-queries.json").write_text(json.dumps({"questions": questions}))
    np.save(Path(index_dir) / "bench-query-vectors.npy", qv)
    np.save(Path(index_dir) / "bench-truth.npy", best_ids)
    return {
        "passages": n,
        "sentences": writer.sentences,
        "vector_index": manifest.vector_index,
        "build_seconds": round(time.perf_counter() - started, 1),
        "stages_seconds": {k: round(v, 1) for k, v in times.items()},
        "build_peak_rss_mb": peak_rss_mb(),
        "index_bytes": {p.name: p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*"))
                        for p in gen.iterdir()},
    }


class LookupEmbedder:
    """Returns the precomputed vector of each benchmark question (the index is synthetic)."""

    name = "synthetic"

    def __init__(self, questions: list[str], vectors: np.ndarray):
        self.table = dict(zip(questions, vectors))

    @property
    def dim(self) -> int:
        return DIM

    def encode_queries(self, texts) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])

    def encode_documents(self, texts, batch_size=32, show_progress=False):  # pragma: no cover
        raise NotImplementedError


def query(index_dir: Path, repeats: int = 3) -> dict:
    """Load the index like `qa` does (fresh process) and measure recall, latency and memory."""
    from qa.retriever import Retriever
    from qa.store.local import generations

    rss_start = current_rss_mb()
    questions = json.loads((Path(index_dir) / "bench-queries.json").read_text())["questions"]
    qv = np.load(Path(index_dir) / "bench-query-vectors.npy")
    truth = np.load(Path(index_dir) / "bench-truth.npy")
    t = time.perf_counter()
    retriever = Retriever.load(index_dir, model="synthetic", embedder=LookupEmbedder(questions, qv))
    load_s = time.perf_counter() - t
    rss_loaded = current_rss_mb()
    reader = retriever.reader
    kind = reader.vector_kind
    ann, found = [], []
    for _ in range(repeats):
        for q in qv:
            t = time.perf_counter()
            ids, _ = reader.search(q, 10)
            ann.append(time.perf_counter() - t)
            found.append(ids)
    recall = float(np.mean([len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, np.tile(truth, (repeats, 1)))]))
    full = []
    for _ in range(repeats):
        for question in questions:
            t = time.perf_counter()
            retriever.search(question, k=10)
            full.append(time.perf_counter() - t)
    n, dim = reader.manifest.passages, reader.manifest.dim
    vector_bytes = (Path(reader.path) / generations.PASSAGE_VECTORS).stat().st_size
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {
        "passages": n,
        "vector_index": kind,
        "load_seconds": round(load_s, 2),
        "recall_at_10": round(recall, 4),
        "vector_search": summary(ann),
        "retriever_search_without_encoding": summary(full),
        "vector_bytes": vector_bytes,
        "vector_fraction_of_flat_float32": round(vector_bytes / (n * dim * 4), 4),
        "rss_mb": {"interpreter_and_imports": rss_start, "after_load": rss_loaded,
                   "now": current_rss_mb(), "peak": round(int(status["VmHWM"].split()[0]) / 1024, 1)},
    }


def compare(index_dirs: list[Path], repeats: int = 3) -> list[dict]:
    """Vector search and Retriever.search latency of several indexes, loaded in one process and
    interleaved query by query, so that all see the same machine load (the machine is shared)."""
    from qa.retriever import Retriever

    loaded = []
    for d in index_dirs:
        questions = json.loads((Path(d) / "bench-queries.json").read_text())["questions"]
        qv = np.load(Path(d) / "bench-query-vectors.npy")
        r = Retriever.load(d, model="synthetic", embedder=LookupEmbedder(questions, qv))
        loaded.append((r, questions, qv, [], []))
    for r, questions, qv, _, _ in loaded:  # warm-up: first touch of mapped pages
        for q, question in zip(qv, questions):
            r.reader.search(q, 10)
            r.search(question, k=10)
    for _ in range(repeats):
        for j in range(QUERIES):
            for r, questions, qv, ann, full in loaded:
                t = time.perf_counter()
                r.reader.search(qv[j], 10)
                ann.append(time.perf_counter() - t)
                t = time.perf_counter()
                r.search(questions[j], k=10)
                full.append(time.perf_counter() - t)
    return [{"passages": r.reader.manifest.passages, "vector_index": r.reader.vector_kind,
             "vector_search": summary(ann), "retriever_search_without_encoding": summary(full)}
            for r, _, _, ann, full in loaded]


def _query_subprocess(index_dir: Path, *more: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = "compare" if more else "query"
    out = subprocess.run([sys.executable, "-m", "bench.speed.scale", cmd, str(index_dir), *map(str, more)],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def sweep(sizes=(1_000, 2_000, 5_000, 10_000, 20_000), work: Path = CACHE / "scale") -> list[dict]:
    """Searcher.search p50 (encoding excluded) with an exact and an HNSW index at each size."""
    from qa.store.local import vectors as store

    rows = []
    for n in sizes:
        row = {"passages": n}
        for kind, limit in (("flat", 10**9), ("hnsw", 0)):
            saved = store.EXACT_MAX
            store.EXACT_MAX = limit
            try:
                build(n, Path(work) / f"sweep-{kind}-{n}")
            finally:
                store.EXACT_MAX = saved
            r = _query_subprocess(Path(work) / f"sweep-{kind}-{n}")
            row[f"{kind}_p50_ms"] = r["retriever_search_without_encoding"]["p50_ms"]
            row[f"{kind}_recall_at_10"] = r["recall_at_10"]
        rows.append(row)
    return rows


def run(n: int = 1_000_000, reference: int = 20_000, work: Path = CACHE / "scale", out_dir=None,
        sweep_sizes=(1_000, 2_000, 5_000, 10_000, 20_000), reuse: bool = False) -> dict:
    work = Path(work)
    result = {"synthetic_data": __doc__.split("Synthetic data")[1].split("`build`")[0].strip()}
    result["threshold_sweep"] = sweep(sweep_sizes, work) if sweep_sizes else []
    for label, size in (("reference", reference), ("large", n)):
        if not reuse or not (work / f"index-{size}" / "bench-truth.npy").exists():
            result[label] = build(size, work / f"index-{size}")
        else:
            result[label] = json.loads((work / f"index-{size}" / "bench-build.json").read_text())
            result[label]["reused_build_of"] = datetime.fromtimestamp(
                (work / f"index-{size}" / "bench-truth.npy").stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
        (work / f"index-{size}" / "bench-build.json").write_text(
            json.dumps({k: v for k, v in result[label].items() if k != "reused_build_of"}))
        result[label].update(_query_subprocess(work / f"index-{size}"))
    side = _query_subprocess(work / f"index-{reference}", work / f"index-{n}")["compare"]
    result["side_by_side"] = {"reference": side[0], "large": side[1]}
    big, ref = result["large"], result["reference"]
    result["targets"] = [
        target(f"recall@10 vs exact at {n:,} passages", big["recall_at_10"], 0.95, "", higher_is_better=True),
        target(f"vector search p50 at {n:,} / at {reference:,} (interleaved)",
               side[1]["vector_search"]["p50_ms"] / side[0]["vector_search"]["p50_ms"], 2.0),
        target(f"vector memory at {n:,} / flat float32", big["vector_fraction_of_flat_float32"], 1 / 3),
        target(f"whole query process RSS at {n:,} (MB)", big["rss_mb"]["peak"], 4096.0, "MB"),
        target(f"index open at {n:,} (s)", big["load_seconds"], 1.0, "s"),
        target(f"process RSS after opening the index at {n:,} (MB)", big["rss_mb"]["after_load"], 400.0, "MB"),
        target(f"build peak RSS at {n:,} (MB)", big["build_peak_rss_mb"], 2500.0, "MB"),
    ]
    result["info"] = {
        "retriever_search_p50_ratio_without_encoding_interleaved": round(
            side[1]["retriever_search_without_encoding"]["p50_ms"] / side[0]["retriever_search_without_encoding"]["p50_ms"], 3),
    }
    write_result("scale", result, out_dir)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("run")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--reference", type=int, default=20_000)
    p.add_argument("--no-sweep", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--reuse", action="store_true", help="reuse indexes built by an earlier run (same sizes)")
    p = sub.add_parser("query")
    p.add_argument("index_dir", type=Path)
    p = sub.add_parser("compare")
    p.add_argument("index_dirs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.cmd == "query":
        print(json.dumps(query(args.index_dir)))
        return 0
    if args.cmd == "compare":
        print(json.dumps({"compare": compare(args.index_dirs)}))
        return 0
    if args.cmd != "run":
        parser.print_help()
        return 2
    r = run(args.n, args.reference, out_dir=args.out, reuse=args.reuse,
            sweep_sizes=() if args.no_sweep else (1_000, 2_000, 5_000, 10_000, 20_000))
    for t in r["targets"]:
        print(f"{'PASS' if t['pass'] else 'FAIL'}  {t['name']}: {t['value']} ({t['op']} {t['limit']:.4g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

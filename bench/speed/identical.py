"""Dump `Retriever.search` and `Retriever.ask` results to compare a speed change with the code
before it: every field of every hit and answer, floats written exactly (repr).

    python -m bench.speed.identical dump /tmp/before.jsonl      # on the old code
    python -m bench.speed.identical dump /tmp/after.jsonl       # on the new code
    python -m bench.speed.identical compare /tmp/before.jsonl /tmp/after.jsonl

Indexes (frozen copies in bench/cache/identical/snap, made on the first dump): the warm-query
bench's (SciFact corpus, random vectors, HNSW; `python -m bench.speed.warm` builds it), the cached
SciFact evaluation indexes (real vectors, HNSW), and corpus/ indexed with the real model (exact).
Questions: SciFact train queries (and the dev questions on corpus/), each encoded once by the real
query encoder and kept in bench/cache/identical/, so both sides search with the same vectors;
searched with and without a source filter, at several k.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from bench.common import CACHE, ROOT, SCIFACT

WORK = CACHE / "identical"


class FixedEmbedder:
    """The query vectors of `questions` computed once by `inner` (kept on disk): the same
    vector for a question on every run and on both sides of a comparison."""

    def __init__(self, inner, questions: list[str]):
        self.inner = inner
        self.name = inner.name
        key = hashlib.sha256(("\x00".join([inner.name, *questions])).encode()).hexdigest()[:16]
        path = WORK / f"queries-{key}.npy"
        if path.exists():
            vectors = np.load(path)
        else:
            vectors = np.asarray(inner.encode_queries(questions), dtype=np.float32)
            WORK.mkdir(parents=True, exist_ok=True)
            np.save(path, vectors)
        self._vectors = dict(zip(questions, vectors))

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode_queries(self, texts) -> np.ndarray:
        return np.stack([self._vectors[t] for t in texts])

    def encode_documents(self, texts, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        return self.inner.encode_documents(texts, batch_size=batch_size, show_progress=show_progress)


def train_queries(n: int) -> list[str]:
    ids = []
    with open(SCIFACT / "qrels" / "train.tsv", encoding="utf-8") as fh:
        for line in fh:
            qid = line.split("\t")[0]
            if qid.isdigit() and qid not in ids:
                ids.append(qid)
    texts = {}
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            texts[d["_id"]] = d["text"]
    return [texts[q] for q in ids[:n]]


def _plain(value):
    """JSON-able with exact floats (json writes repr, which round-trips)."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def dump_one(name: str, retriever, questions: list[str], sources: list[str], out) -> int:
    n = 0
    for i, q in enumerate(questions):
        for k, src in ((10, None), (5, None), (1, None)) + (((5, sources),) if i % 3 == 0 else ()):
            hits = retriever.search(q, k=k, sources=src)
            out.write(json.dumps({"index": name, "q": q, "k": k, "sources": src, "search": _plain(hits)}) + "\n")
            n += 1
        answer = retriever.ask(q, k=5)
        out.write(json.dumps({"index": name, "q": q, "k": 5, "ask": _plain(answer)}) + "\n")
        n += 1
    return n


def indexes(n_queries: int):
    """(name, retriever, questions, source patterns) of each index compared."""
    from qa.config import Settings
    from qa.embedding import get_embedder
    from qa.retriever import Retriever

    real = get_embedder()
    train = train_queries(n_queries)
    # Frozen copies (a rebuild, e.g. by the warm bench, may build a different HNSW graph)
    snap = WORK / "snap"
    if not (snap / "warm").exists():
        import shutil

        warm = CACHE / "warm" / "index-all"
        if not warm.exists():
            raise SystemExit(f"no {warm}: run python -m bench.speed.warm first")
        shutil.copytree(warm, snap / "warm", symlinks=True)
        for i, index_dir in enumerate(sorted((CACHE / "eval-index").glob(f"{real.name}-*/index"))):
            shutil.copytree(index_dir, snap / f"scifact-real-{i}", symlinks=True)
    for index_dir in sorted(snap.iterdir()):
        yield index_dir.name, Retriever.load(index_dir, embedder=FixedEmbedder(real, train)), train, ["*1.md", "*5.md"]
    questions = [json.loads(line)["question"] for line in open(ROOT / "bench" / "dev_extra.jsonl", encoding="utf-8")]
    questions += train[:30]
    corpus_index = WORK / "corpus-index"
    settings = Settings(corpus_dir=ROOT / "corpus", index_dir=corpus_index, model=real.name)
    if not corpus_index.exists():
        from qa.build import build_index

        build_index(settings, embedder=real)
    yield "corpus", Retriever.load(corpus_index, embedder=FixedEmbedder(real, questions)), questions, ["*.txt"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--queries", type=int, default=150)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "dump":
        with open(args.out, "w", encoding="utf-8") as out:
            for name, retriever, questions, sources in indexes(args.queries):
                print(f"{name}: {dump_one(name, retriever, questions, sources, out)} results", file=sys.stderr)
        return 0
    a = args.a.read_text(encoding="utf-8").splitlines()
    b = args.b.read_text(encoding="utf-8").splitlines()
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(a) != len(b) or differ:
        print(f"DIFFERENT: {len(a)} vs {len(b)} lines, {len(differ)} differ; first: line {differ[:1]}")
        for i in differ[:3]:
            print(" a:", a[i][:400], "\n b:", b[i][:400])
        return 1
    print(f"identical: {len(a)} results")
    return 0


if __name__ == "__main__":
    sys.exit(main())

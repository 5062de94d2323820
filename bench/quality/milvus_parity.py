"""Parity of the milvus backend with the local one: the same evaluation through both stores, and
every citation of the milvus side checked against its file.

- a BEIR set (default SciFact test): nDCG@10, Recall@10/100, MRR@10 through `qa eval`'s own
  runner (`qa.evaluation.index_beir` + `run_beir`) on each store;
- QA .jsonl files over a corpus (default the default corpus's dev questions, as `python -m
  bench.quality` counts them: ../shared/eval/seed_dev.jsonl + bench/dev_extra.jsonl): hit@1/3/5, MRR...

Vectors come from the embedding cache of the quality table (bench/cache, `CachedEmbedder`), so a
corpus `python -m bench.quality` has seen is not encoded again; the indexes of both stores are built
afresh by this code in a temporary folder.

`--embedder real` is the bundled model (what `qa eval` uses); `--embedder hashed` a hashed bag of
words (deterministic, no model: for a machine where encoding a whole BEIR corpus does not fit in
the time at hand). Both backends always get the same vectors, so the comparison holds either way.

    python -m bench.quality.milvus_parity --embedder real          # bench/results/milvus_parity.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import CACHE, RESULTS, ROOT, SCIFACT, SHARED, target, write_result

DEV = [SHARED / "eval" / "seed_dev.jsonl", ROOT / "bench" / "dev_extra.jsonl"]


class HashedEmbedder:
    """Hashed bag of words (`dim` buckets), L2-normalised: texts sharing words are close."""

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.name = f"hashed-bow-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            v[int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_documents(self, texts, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if len(texts) else np.zeros((0, self.dim), np.float32)

    def encode_queries(self, texts) -> np.ndarray:
        return self.encode_documents(list(texts))


def beir(dataset: Path, split: str, settings, embedder, work: Path) -> dict:
    """`embedder`: a `CachedEmbedder`; the index is built under `work`."""
    from qa.evaluation.runners import index_beir, load_beir, run_beir

    data = load_beir(dataset, split)
    t = time.perf_counter()
    index = index_beir(data, embedder, work, settings=settings)
    built = time.perf_counter() - t
    print(f"{dataset.name} on {settings.store}: indexed in {built:.0f} s ({embedder.computed} texts encoded so far)",
          flush=True)
    t = time.perf_counter()
    metrics = run_beir(index, data)["metrics"]
    ran = time.perf_counter() - t
    checked, wrong = check_citations(index.retriever, [data.queries[q] for q in data.qrels], index.corpus_dir)
    return {"metrics": metrics, "index_seconds": round(built, 1), "run_seconds": round(ran, 1),
            "citations_checked": checked, "citations_wrong": wrong}


def check_citations(retriever, questions, corpus: Path, k: int = 10) -> tuple[int, int]:
    """(hits checked, hits whose text is not the file's text between their offsets)."""
    checked = wrong = 0
    texts = {}
    for question in questions:
        for hit in retriever.search(question, k=k):
            if hit.source not in texts:
                texts[hit.source] = (corpus / hit.source).read_text(encoding="utf-8")
            checked += 1
            wrong += texts[hit.source][hit.start_char : hit.end_char] != hit.text
    return checked, wrong


def qa_files(paths: list[Path], corpus: Path, settings, embedder, work: Path) -> dict:
    """The questions of every file in `paths` over `corpus`; `embedder`: a `CachedEmbedder`."""
    from dataclasses import replace

    from qa.evaluation import read_qa, run_qa
    from qa.evaluation.runners import qa_retriever

    rows = [row for path in paths for row in read_qa(path)]
    with tempfile.TemporaryDirectory(prefix="qa-parity-", dir=work) as tmp:
        retriever = qa_retriever(replace(settings, corpus_dir=corpus), embedder, work, folder=tmp)
        result = run_qa(retriever, rows)
        checked, wrong = check_citations(retriever, [r["question"] for r in rows], corpus, 5)
    return {"metrics": result["metrics"], "tops": [r["top"] for r in result["records"]],
            "citations_checked": checked, "citations_wrong": wrong}


def targets(out: dict) -> list[dict]:
    """Issue 12: milvus within 0.005 of local on hit@1 (dev questions) and nDCG@10 (BEIR), every
    citation exact (of both stores)."""
    found = []
    for kind, metric in (("qa", "hit@1"), ("beir", "ndcg@10")):
        if kind in out:
            p = out[kind]
            diff = abs(p["local"]["metrics"][metric] - p["milvus"]["metrics"][metric])
            what = p["dataset"] if kind == "qa" else f"{p['dataset']} {p['split']}"
            found.append(target(f"milvus parity: {metric} difference to local ({what})", diff, 0.005, unit=metric))
    wrong = sum(out[k][s]["citations_wrong"] for k in ("qa", "beir") if k in out for s in ("local", "milvus"))
    found.append(target("milvus parity: citations not exact (both stores)", wrong, 0, unit="citations"))
    return found


def main(argv=None) -> int:
    from qa.config import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", choices=("real", "hashed"), default="real")
    parser.add_argument("--beir", type=Path, default=SCIFACT, help="BEIR folder (default SciFact)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--questions", type=Path, nargs="+", default=DEV,
                        help="QA .jsonl files (default the default corpus's dev questions)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--milvus-uri", help="default: a Milvus Lite file in a temporary folder")
    parser.add_argument("--cache", type=Path, default=CACHE, help="embedding cache folder (default bench/cache)")
    parser.add_argument("--skip", choices=("beir", "qa"), action="append", default=[])
    parser.add_argument("--out", type=Path, default=RESULTS / "milvus_parity.json")
    args = parser.parse_args(argv)
    from qa.evaluation.runners import CachedEmbedder

    if args.embedder == "real":
        from qa.embedding import get_embedder

        inner = get_embedder()
    else:
        inner = HashedEmbedder()
    embedder = CachedEmbedder(inner, args.cache)
    work = Path(tempfile.mkdtemp(prefix="qa-parity-"))
    uri = args.milvus_uri or str(work / "milvus.db")
    stores = {"local": Settings(), "milvus": Settings(store="milvus", milvus_uri=uri, milvus_prefix="parity")}
    out = {"embedder": embedder.name, "milvus_uri_kind": "server" if "://" in uri else "Milvus Lite file"}
    try:
        if "qa" not in args.skip:
            out["qa"] = {"dataset": "+".join(p.name for p in args.questions), "corpus": args.corpus.name,
                         **{name: qa_files(args.questions, args.corpus, s, embedder, work)
                            for name, s in stores.items()}}
        if "beir" not in args.skip:
            out["beir"] = {"dataset": args.beir.name, "split": args.split,
                           **{name: beir(args.beir, args.split, s, embedder, work) for name, s in stores.items()}}
    finally:
        from qa.store.milvus.client import close_all

        close_all()  # Milvus Lite lets go of its file, then the folder can go
        shutil.rmtree(work, ignore_errors=True)
    out["texts_encoded"] = embedder.computed  # the rest came from the cache
    for kind in ("qa", "beir"):
        if kind in out:
            a, b = out[kind]["local"]["metrics"], out[kind]["milvus"]["metrics"]
            out[kind]["largest_difference"] = max(abs(a[m] - b[m]) for m in a if isinstance(a[m], float))
    out["targets"] = targets(out)
    path = write_result("milvus_parity", out, args.out.parent)
    if path != args.out:
        path.replace(args.out)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

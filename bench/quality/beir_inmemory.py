"""Tune on a BEIR dataset without waiting for a full index build: passages chunked exactly as
`qa index` does, passage vectors from the embedding cache, sentence vectors only with --sentences
(those not cached yet are computed), searched in memory (`qa.store.memory.MemoryReader`, exact).
Same Searcher, same fusion code.

    PYTHONPATH=. python -m bench.quality.beir_inmemory scifact train [--sentences] 'fusion=rrf' ...
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.common import CACHE, SHARED


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["scifact", "squad"])
    parser.add_argument("split", help="qrels split, e.g. train, test, test_1k")
    parser.add_argument("configs", nargs="*", default=[""], help="SearchParams fields, e.g. 'bm25_weight=0.3'")
    parser.add_argument("--sentences", action="store_true", help="also embed and score sentences")
    parser.add_argument("--shared", type=Path, default=SHARED, help="shared data folder (benchmarks/)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="embedding cache folder")
    args = parser.parse_args(argv)

    from qa.chunking import chunk_document, split_sentences
    from qa.documents import load_corpus
    from qa.embedding import embedding_text, get_embedder
    from qa.evaluation import CachedEmbedder, EvalIndex, load_beir, run_beir, write_beir_corpus
    from qa.lexical import build_bm25
    from qa.retriever import Retriever
    from qa.schema import Manifest
    from qa.search import SearchParams
    from qa.store.base import IndexData
    from qa.store.memory import MemoryReader

    folder = {"scifact": "scifact", "squad": "squad-v1.1-dev-passages"}[args.name]
    data = load_beir(args.shared / "benchmarks" / folder, args.split)
    emb = CachedEmbedder(get_embedder(), args.cache)
    emb._con.execute("PRAGMA busy_timeout = 60000")
    corpus_dir = args.cache / f"inmem-{args.name}"
    if not corpus_dir.exists():
        write_beir_corpus(data.corpus, corpus_dir)
    sources = {f"{n:07d}.md": doc_id for n, doc_id in enumerate(data.corpus)}
    passages = [p for d in load_corpus(corpus_dir).documents for p in chunk_document(d)]
    t = time.time()
    pv = emb.encode_documents([embedding_text(p) for p in passages])
    spans, sv = [], np.zeros((0, pv.shape[1]), np.float32)
    if args.sentences:
        texts = []
        for row, p in enumerate(passages):
            for a, b in split_sentences(p.text):
                spans.append((row, p.start_char + a, p.start_char + b))
                texts.append(p.text[a:b])
        sv = emb.encode_documents(texts)
    print(f"{len(passages)} passages, {len(spans)} sentences, vectors in {time.time()-t:.0f}s "
          f"(computed {emb.computed})", flush=True)
    reader = MemoryReader(IndexData(manifest=Manifest(passages=len(passages)), passages=passages, passage_vectors=pv,
                                    sentence_spans=spans, sentence_vectors=sv, bm25=build_bm25(passages)))
    for c in args.configs or [""]:
        ev = EvalIndex(Retriever(reader, emb, SearchParams.parse(c)), sources)
        m = run_beir(ev, data)["metrics"]
        print(f"{args.name}-{args.split} {'sent' if args.sentences else 'nosent'} {c:55s} "
              + " ".join(f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, float)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Tune on a BEIR dataset without waiting for a full index build: passages chunked exactly as
`qa index` does, passage vectors from the embedding cache, sentence vectors only when --sentences
(those not cached yet are computed). Same Searcher, same fusion code.

    PYTHONPATH=. python bench/quality/beir_inmemory.py scifact train [--sentences] 'fusion="convex"' ...
"""
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from qa.api import Retriever
from qa.chunking import chunk_document, split_sentences
from qa.documents import load_corpus
from qa.embedding import get_embedder
from qa.evaluation import CachedEmbedder, EvalIndex, load_beir, run_beir, write_beir_corpus
from qa.search import SearchParams, build_bm25, embedding_text
from qa.store import IndexData

SHARED = Path("/work/shared/benchmarks")
name, split = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
sentences = "--sentences" in args
configs = [a for a in args if a != "--sentences"] or [""]
folder = {"scifact": "scifact", "squad": "squad-v1.1-dev-passages"}[name]
data = load_beir(SHARED / folder, split)
emb = CachedEmbedder(get_embedder(), Path("bench/cache"))
emb._con.execute("PRAGMA busy_timeout = 60000")
corpus_dir = Path(f"bench/cache/inmem-{name}")
if not corpus_dir.exists():
    write_beir_corpus(data.corpus, corpus_dir)
sources = {f"{n:07d}.md": doc_id for n, doc_id in enumerate(data.corpus)}
passages = [p for d in load_corpus(corpus_dir).documents for p in chunk_document(d)]
t = time.time()
pv = emb.encode_documents([embedding_text(p) for p in passages])
spans, sv = [], np.zeros((0, pv.shape[1]), np.float32)
if sentences:
    texts = []
    for row, p in enumerate(passages):
        for a, b in split_sentences(p.text):
            spans.append((row, p.start_char + a, p.start_char + b))
            texts.append(p.text[a:b])
    sv = emb.encode_documents(texts)
print(f"{len(passages)} passages, {len(spans)} sentences, vectors in {time.time()-t:.0f}s (computed {emb.computed})", flush=True)
index = faiss.IndexFlatIP(pv.shape[1])
index.add(pv)
idx = IndexData(manifest={}, passages=passages, passage_vectors=pv, sentence_spans=spans, sentence_vectors=sv,
                bm25=build_bm25(passages), passage_index=index)
for c in configs:
    params = eval(f"SearchParams({c})")
    ev = EvalIndex(Retriever(idx, emb, params), sources)
    m = run_beir(ev, data)["metrics"]
    print(f"{name}-{split} {'sent' if sentences else 'nosent'} {c:55s} " + " ".join(f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, float)), flush=True)

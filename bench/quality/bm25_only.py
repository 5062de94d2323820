"""BM25 alone on a BEIR dataset (no embeddings needed): k1, b and stop-word variants."""
import sys
from pathlib import Path
import numpy as np
import bm25s
from qa.config import ChunkSettings
from qa.chunking import chunk_document
from qa.schema import Document
from qa.search import bm25_text, tokenize
from qa.evaluation import load_beir, beir_metrics
import qa.search as S

folder, split = sys.argv[1], sys.argv[2]
data = load_beir(Path(folder), split)
passages, doc_of = [], []
for doc_id, d in data.corpus.items():
    doc = Document(source=doc_id, text=(f"# {d['title']}\n\n{d['text']}\n" if d["title"] else d["text"] + "\n"), format="md")
    for p in chunk_document(doc, ChunkSettings()):
        passages.append(p); doc_of.append(doc_id)
print(len(passages), "passages")
for conf in sys.argv[3:]:
    kw = eval(f"dict({conf})")
    k1, b, plus, title = kw.get("k1", 1.2), kw.get("b", 0.75), kw.get("plus", False), kw.get("title", True)
    method = kw.get("method", "lucene")
    tok = lambda t: tokenize(t, content_only=plus)
    bm = bm25s.BM25(method=method, k1=k1, b=b)
    bm.index([tok(bm25_text(p) if title else p.text) or [""] for p in passages], show_progress=False)
    runs = {}
    for q in data.qrels:
        toks = [t for t in tok(data.queries[q]) if t in bm.vocab_dict]
        sc = np.asarray(bm.get_scores(toks)) if toks else np.zeros(len(passages))
        order = np.argsort(-sc)
        seen = []
        for i in order:
            if doc_of[i] not in seen:
                seen.append(doc_of[i])
            if len(seen) >= 100: break
        runs[q] = seen
    m = beir_metrics(runs, data.qrels)
    print(f"{conf:40s}", " ".join(f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, float)), flush=True)

"""Compare ways of choosing the answer sentence among the top passages (dev + extra questions)."""
import sys, re
from pathlib import Path
import numpy as np
from qa.api import Retriever
from qa.config import Settings
from qa.embedding import get_embedder
from qa.evaluation import CachedEmbedder, qa_retriever, read_qa, _norm
from qa.search import SearchParams, tokenize
emb = CachedEmbedder(get_embedder(), Path("bench/cache"))
base = qa_retriever(Settings(corpus_dir=Path("corpus")), emb, Path("bench/cache"))
params = eval(f"SearchParams({sys.argv[1]})")
r = Retriever(base.data, emb, params)
s = r.searcher
rows = [x for f in ["/work/shared/eval/seed_dev.jsonl", "bench/dev_extra.jsonl"] for x in read_qa(Path(f)) if x["evidence"]]
cands = []
for row in rows:
    hits, parts = s.search_with_scores(row["question"], 5)
    q = set(tokenize(row["question"]))
    items = []
    for h, hit in enumerate(hits[:3]):
        for j in s.sentences_of(s.row_of(hit)):
            _, a, b = s.data.sentence_spans[j]
            text = hit.text[a - hit.start_char: b - hit.start_char]
            cov = len(q & set(tokenize(text))) / max(1, len(q))
            items.append((h, float(parts["sentence"][j]), cov, _norm(row["evidence"]) in _norm(text), hit.score))
    cands.append(items)
for pen in [0, 0.05, 0.1, 0.15, 0.2, 1.0]:
    for beta in [0, 0.05, 0.1, 0.2, 0.3]:
        ok = np.mean([max(items, key=lambda t: t[1] - pen * t[0] + beta * t[2])[3] for items in cands])
        print(pen, beta, round(ok, 3))

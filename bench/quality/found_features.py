"""Dump the features of the "found" decision (top dense cosine, query-word coverage of the top passage)
for answerable and unanswerable questions, to calibrate `answer._supported`."""
import sys, json
from pathlib import Path
import numpy as np
from qa.api import Retriever
from qa.config import Settings
from qa.embedding import get_embedder
from qa.evaluation import CachedEmbedder, qa_retriever, read_qa
from qa.search import SearchParams, tokenize
emb = CachedEmbedder(get_embedder(), Path("bench/cache"))
base = qa_retriever(Settings(corpus_dir=Path("corpus")), emb, Path("bench/cache"))
params = eval(f"SearchParams({sys.argv[1]})")
r = Retriever(base.data, emb, params)
out = []
for f in sys.argv[2:]:
    for row in read_qa(Path(f)):
        a = r.ask(row["question"], k=5)
        _, parts = r.searcher.search_with_scores(row["question"], 5)
        dense = parts["dense"]
        sent = parts["sentence"]
        top = a.passages[0]
        q = set(tokenize(row["question"], content_only=True))
        cov = len(q & set(tokenize(top.section + " " + top.text))) / max(1, len(q))
        out.append({"file": Path(f).name, "id": row["id"], "ans": row["evidence"] is not None, "dense": top.dense,
                    "maxdense": max(h.dense for h in a.passages), "mean": float(np.mean(dense)), "median": float(np.median(dense)), "std": float(np.std(dense)), "smean": float(np.mean(sent)), "sstd": float(np.std(sent)), "smax": float(np.max(sent)), "cov": cov, "cov3": max(len(q & set(tokenize(h.section + " " + h.text))) / max(1, len(q)) for h in a.passages[:3]), "bm25": top.bm25, "q": row["question"]})
json.dump(out, open("bench/cache/found_features.json", "w"))
for group in (True, False):
    xs = [o for o in out if o["ans"] == group]
    d = np.array([o["maxdense"] for o in xs]); c = np.array([o["cov"] for o in xs])
    print("answerable" if group else "unanswerable", len(xs), "dense pct", np.percentile(d, [0, 2, 5, 10, 50, 90, 95, 98, 100]).round(3), "cov pct", np.percentile(c, [0, 5, 50, 95, 100]).round(2))

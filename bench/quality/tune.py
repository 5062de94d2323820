"""Grid of SearchParams over the evaluation datasets, reusing one loaded index per dataset.

    PYTHONPATH=. python bench/quality/tune.py dev|extra|scifact-train|scifact-test|squad  'fusion="rrf"' 'fusion="convex",bm25_weight=0.3' ...

Each argument is a SearchParams(...) keyword list; prints one line of metrics per configuration.
"""
import json
import sys
from pathlib import Path

from qa.api import Retriever
from qa.config import Settings
from qa.embedding import get_embedder
from qa.evaluation import CachedEmbedder, index_beir, load_beir, qa_retriever, read_qa, run_beir, run_qa
from qa.search import SearchParams

CACHE = Path("bench/cache")
SHARED = Path("/work/shared")
emb = CachedEmbedder(get_embedder(), CACHE)
name = sys.argv[1]
configs = sys.argv[2:] or [""]
if name in ("dev", "extra", "both", "squadq"):
    files = {"dev": [SHARED / "eval/seed_dev.jsonl"], "extra": [Path("bench/dev_extra.jsonl")],
             "both": [SHARED / "eval/seed_dev.jsonl", Path("bench/dev_extra.jsonl")],
             "squadq": [Path("bench/cache/squad_unanswerable.jsonl")]}[name]
    rows = [r for f in files for r in read_qa(f)]
    base = qa_retriever(Settings(corpus_dir=Path("corpus")), emb, CACHE)
    for c in configs:
        params = eval(f"SearchParams({c})")
        r = Retriever(base.data, emb, params)
        res = run_qa(r, rows)
        m = res["metrics"]
        miss = [x["id"] + ":" + str(x["rank"]) for x in res["records"] if x["answerable"] and x["rank"] != 1]
        print(f"{c:60s} " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items()), "miss", miss, flush=True)
else:
    folder, split = {"scifact-train": ("scifact", "train"), "scifact-test": ("scifact", "test"),
                     "squad": ("squad-v1.1-dev-passages", "test_1k")}[name]
    data = load_beir(SHARED / "benchmarks" / folder, split)
    index = index_beir(data, emb, CACHE)
    for c in configs:
        params = eval(f"SearchParams({c})")
        index.retriever = Retriever(index.retriever.data, emb, params)
        m = run_beir(index, data)["metrics"]
        print(f"{c:60s} " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items()), flush=True)

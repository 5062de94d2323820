import sys
from pathlib import Path
from qa.api import Retriever
from qa.config import Settings
from qa.embedding import get_embedder
from qa.evaluation import CachedEmbedder, qa_retriever
from qa.search import SearchParams
emb = CachedEmbedder(get_embedder(), Path("bench/cache"))
base = qa_retriever(Settings(corpus_dir=Path("corpus")), emb, Path("bench/cache"))
params = eval(f"SearchParams({sys.argv[1]})")
r = Retriever(base.data, emb, params)
for q in sys.argv[2:]:
    a = r.ask(q, k=5)
    print("Q:", q, "found", a.found)
    for h in a.passages:
        s = h.text[h.sentence_start - h.start_char: h.sentence_end - h.start_char] if h.sentence_start is not None else ""
        print(f"  {h.rank} {h.start_line:3d} sc={h.score:.3f} d={h.dense:.3f}#{h.dense_rank} b={h.bm25:.2f}#{h.bm25_rank} | {s[:90]}")

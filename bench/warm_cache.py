"""Index the benchmark corpora once so later `qa eval` runs reuse the cached embeddings."""
import sys, time
from pathlib import Path
from qa.evaluation import CachedEmbedder, index_beir, load_beir
from qa.embedding import get_embedder

cache = Path(sys.argv[1])
for folder in sys.argv[2:]:
    t = time.time()
    emb = CachedEmbedder(get_embedder(), cache)
    data = load_beir(Path(folder), "test")
    index_beir(data, emb, cache)
    print(folder, "indexed in", round(time.time() - t), "s; computed", emb.computed, flush=True)

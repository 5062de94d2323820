"""Pre-encode the sentence texts of a BEIR corpus into the embedding cache (shortest first), the
way api.build_index will ask for them; run beside a build to use a second process."""
import sys
from pathlib import Path
from qa.chunking import chunk_document, split_sentences
from qa.documents import load_corpus
from qa.embedding import get_embedder
from qa.evaluation import CachedEmbedder

corpus_dir, cache = Path(sys.argv[1]), Path(sys.argv[2])
emb = CachedEmbedder(get_embedder(), cache)
emb._con.execute("PRAGMA busy_timeout = 60000")
texts = set()
for doc in load_corpus(corpus_dir).documents:
    for p in chunk_document(doc):
        for a, b in split_sentences(p.text):
            texts.add(p.text[a:b])
texts = sorted(texts, key=len)
print(len(texts), "sentences", flush=True)
for i in range(0, len(texts), 512):
    emb.encode_documents(texts[i:i + 512])
    if i % 5120 == 0:
        print(i, flush=True)
print("done", flush=True)

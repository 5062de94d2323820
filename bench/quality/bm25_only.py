"""BM25 alone on a BEIR dataset (no embeddings needed): k1, b and stop-word variants.

    PYTHONPATH=. python -m bench.quality.bm25_only ../shared/benchmarks/scifact train 'k1=0.9,b=0.4' 'plus=1' ...

Each configuration: comma-separated `k1=`, `b=`, `method=` (lucene, robertson, ...), `plus=0/1` (the
longer stop-word list), `title=0/1` (index the section title too; default 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def parse_conf(text: str) -> dict:
    """`k1=0.9,b=0.4,plus=1` as a dict with the defaults filled in (no eval)."""
    conf = {"k1": 1.2, "b": 0.75, "plus": False, "title": True, "method": "lucene"}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, raw = item.partition("=")
        if name not in conf:
            raise SystemExit(f"unknown BM25 option {name!r}: use {', '.join(conf)}")
        conf[name] = raw.strip("\"'") if name == "method" else bool(int(raw)) if name in ("plus", "title") else float(raw)
    return conf


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="BEIR folder")
    parser.add_argument("split", help="qrels split")
    parser.add_argument("configs", nargs="*", default=[""], help="e.g. 'k1=0.9,b=0.4'")
    args = parser.parse_args(argv)

    import bm25s

    from qa.chunking import chunk_document
    from qa.config import ChunkSettings
    from qa.evaluation import beir_metrics, load_beir
    from qa.lexical import bm25_text, tokenize
    from qa.schema import Document

    data = load_beir(args.folder, args.split)
    passages, doc_of = [], []
    for doc_id, d in data.corpus.items():
        text = f"# {d['title']}\n\n{d['text']}\n" if d["title"] else d["text"] + "\n"
        for p in chunk_document(Document(source=doc_id, text=text, format="md"), ChunkSettings()):
            passages.append(p)
            doc_of.append(doc_id)
    print(len(passages), "passages")
    for text in args.configs or [""]:
        conf = parse_conf(text)

        def tok(t):
            return tokenize(t, content_only=conf["plus"])

        bm = bm25s.BM25(method=conf["method"], k1=conf["k1"], b=conf["b"])
        bm.index([tok(bm25_text(p) if conf["title"] else p.text) or [""] for p in passages], show_progress=False)
        runs = {}
        for q in data.qrels:
            toks = [t for t in tok(data.queries[q]) if t in bm.vocab_dict]
            sc = np.asarray(bm.get_scores(toks)) if toks else np.zeros(len(passages))
            seen = []
            for i in np.argsort(-sc):
                if doc_of[i] not in seen:
                    seen.append(doc_of[i])
                if len(seen) >= 100:
                    break
            runs[q] = seen
        m = beir_metrics(runs, data.qrels)
        print(f"{text:40s}", " ".join(f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, float)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Grid of SearchParams over the evaluation datasets, reusing one loaded index per dataset.

    PYTHONPATH=. python -m bench.quality.tune dev|extra|both|squadq|scifact-train|scifact-test|squad \
        'fusion=rrf' 'bm25_weight=0.3,rerank_depth=0' ...

Each configuration is a comma-separated list of SearchParams fields (`name=value`; '' = defaults);
prints one line of metrics per configuration.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import CACHE, ROOT, SHARED


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["dev", "extra", "both", "squadq", "scifact-train", "scifact-test", "squad"])
    parser.add_argument("configs", nargs="*", default=[""], help="SearchParams fields, e.g. 'bm25_weight=0.3'")
    parser.add_argument("--shared", type=Path, default=SHARED, help="shared data folder (benchmarks/, eval/)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="embedding cache folder")
    args = parser.parse_args(argv)

    from qa.config import Settings
    from qa.embedding import get_embedder
    from qa.evaluation import CachedEmbedder, index_beir, load_beir, qa_retriever, read_qa, run_beir, run_qa
    from qa.retriever import Retriever
    from qa.search import SearchParams

    emb = CachedEmbedder(get_embedder(), args.cache)
    configs = args.configs or [""]
    if args.dataset in ("dev", "extra", "both", "squadq"):
        dev, extra = args.shared / "eval" / "seed_dev.jsonl", ROOT / "bench" / "dev_extra.jsonl"
        files = {"dev": [dev], "extra": [extra], "both": [dev, extra],
                 "squadq": [args.cache / "squad_unanswerable.jsonl"]}[args.dataset]
        rows = [r for f in files for r in read_qa(f)]
        base = qa_retriever(Settings(corpus_dir=ROOT / "corpus"), emb, args.cache)
        for c in configs:
            res = run_qa(Retriever(base.reader, emb, SearchParams.parse(c)), rows)
            miss = [x["id"] + ":" + str(x["rank"]) for x in res["records"] if x["answerable"] and x["rank"] != 1]
            print(f"{c:60s} " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in res["metrics"].items()), "miss", miss, flush=True)
        return 0
    folder, split = {"scifact-train": ("scifact", "train"), "scifact-test": ("scifact", "test"),
                     "squad": ("squad-v1.1-dev-passages", "test_1k")}[args.dataset]
    data = load_beir(args.shared / "benchmarks" / folder, split)
    index = index_beir(data, emb, args.cache)
    reader = index.retriever.reader
    for c in configs:
        index.retriever = Retriever(reader, emb, SearchParams.parse(c))
        m = run_beir(index, data)["metrics"]
        print(f"{c:60s} " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items()),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Answer-sentence choice on the dev questions only (shared seed_dev + bench/dev_extra.jsonl):
how often the chosen sentence holds the evidence, for variants of the choice score.
Never run on a test split. Usage: python -m bench.answer_sentence  → bench/results/answer_sentence.json"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.embedding import get_embedder
from qa.evaluation import DEFAULT_CACHE, CachedEmbedder, _norm, qa_retriever, read_qa
from qa.search import answer_types, bm25_idf, held_types, tokenize, word_share

DEV = ["/work/shared/eval/seed_dev.jsonl", "bench/dev_extra.jsonl"]


def candidates(searcher, rows):
    out = []
    for row in rows:
        hits, parts = searcher.search_with_scores(row["question"], 5)
        q = set(tokenize(row["question"]))
        weights = bm25_idf(searcher.data.bm25, q)
        kinds = answer_types(row["question"])
        items = []
        for h, hit in enumerate(hits[:3]):
            for j in searcher.sentences_of(searcher.row_of(hit)):
                _, a, b = searcher.data.sentence_spans[j]
                text = hit.text[a - hit.start_char : b - hit.start_char]
                words = set(tokenize(text))
                items.append({
                    "h": h, "cos": float(parts["sentence"][j]), "share": len(q & words) / max(1, len(q)),
                    "idf": word_share(weights, words), "typed": float(bool(held_types(text, kinds))),
                    "ok": _norm(row["evidence"]) in _norm(text),
                })
        out.append(items)
    return out


def main() -> None:
    emb = CachedEmbedder(get_embedder(), DEFAULT_CACHE)
    retriever = qa_retriever(Settings(corpus_dir=Path("corpus")), emb, DEFAULT_CACHE)
    rows = [x for f in DEV for x in read_qa(Path(f)) if x["evidence"]]
    cands = candidates(retriever.searcher, rows)
    results = []
    for pen in (0.1, 0.15, 0.2):
        for share in (0.0, 0.1):
            for idf in (0.0, 0.1, 0.2, 0.3):
                for typed in (0.0, 0.05, 0.1):
                    def score(t):
                        return t["cos"] - pen * t["h"] + share * t["share"] + idf * t["idf"] + typed * t["typed"]
                    ok = float(np.mean([max(items, key=score)["ok"] for items in cands if items]))
                    results.append({"rank_penalty": pen, "word_bonus": share, "idf_bonus": idf,
                                    "type_bonus": typed, "answer_sentence": round(ok, 4)})
    results.sort(key=lambda r: -r["answer_sentence"])
    base = next(r for r in results if r == {**r, "rank_penalty": 0.15, "word_bonus": 0.1, "idf_bonus": 0.0, "type_bonus": 0.0})
    reachable = float(np.mean([any(t["ok"] for t in items) for items in cands]))
    # questions whose evidence no single sentence of the top 3 passages holds: no choice can be right
    unreachable = [row["question"] for row, items in zip(rows, cands) if not any(t["ok"] for t in items)]
    out = {"questions": len(rows), "reachable": round(reachable, 4), "unreachable": unreachable,
           "current": base, "best": results[:10]}
    Path("bench/results").mkdir(exist_ok=True)
    Path("bench/results/answer_sentence.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""Answer-sentence accuracy per corpus and split, through `Retriever.ask` as users see it, and the
variants of the choice (`qa.answer.SentenceChoice`) compared on the dev splits.

    python -m bench.answer_sentence                        # dev splits of every installed collection
    python -m bench.answer_sentence --corpora default,debref --splits dev --misses
    python -m bench.answer_sentence --splits dev,test --write   # the final table (test: once, at the end)

Collections and question files are those of `python -m bench.quality` (bench/quality/table.py): the
four Debian collections and the default corpus, chunked and embedded as `qa index` does (vectors from
the cache bench/cache/). Per split, over the answerable questions:
- top-1 right: the first passage holds the evidence (case and spacing ignored);
- answer sentence (all): the answer sentence holds the evidence;
- answer sentence | top-1 right: both, over the questions whose first passage is right;
- reachable: one sentence (or allowed window) of the passages the answer is chosen from holds it;
- split: a top passage holds the evidence but no single sentence does (listed with --misses).
Variants are scored on the same retrieved passages (`qa.answer.choose_answer`); the default's
numbers come from `Retriever.ask` itself and are checked against its replay.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.quality.table import CACHE, ROOT, collections, load_collection, norm, read_questions

K = 5  # passages asked for, as `qa ask` shows them

# every variant tried (name -> SentenceChoice fields); "current" is the shipped default
VARIANTS: dict[str, dict] = {
    "before (main fde95cc)": {"top": 3, "rank_penalty": 0.15, "word_bonus": 0.1},
    "current": {},
}
for _shown in (False, True):
    for _window in (False, True):
        for _pen in (0.05, 0.1, 0.15):
            for _word in (0.0, 0.1, 0.2):
                for _new in (0.0, 0.05, 0.1, 0.2):
                    for _typed in (0.0, 0.05, 0.1):
                        VARIANTS[f"shown={int(_shown)} window={int(_window)} pen={_pen} word={_word} new={_new} type={_typed}"] = {
                            "by_shown_rank": _shown, "window": _window, "rank_penalty": _pen, "word_bonus": _word,
                            "new_bonus": _new, "type_bonus": _typed}


def cases(retriever, rows):
    """Per answerable row: what `Retriever.ask` answered and what the choice was made from."""
    from qa.retriever import check_question

    out = []
    for row in rows:
        question = check_question(row["question"])
        answer = retriever.ask(question, k=K)
        hits, parts, behind = retriever.searcher.search_with_scores(question, K)
        sentences = retriever.searcher.hit_sentences(behind, parts, hits)
        out.append({"row": row, "answer": answer, "hits": hits, "sentences": sentences})
    return out


def holds(evidence: str, text: str | None) -> bool:
    return bool(text) and norm(evidence) in norm(text)


def score_variant(items, choice) -> dict:
    """Accuracy of `choice` replayed on `items` (`cases`); candidates are computed once per
    structural setting (top, window, rank basis, new_cap) and kept on the items."""
    from qa.answer import candidates, choice_score

    key = (choice.top, choice.window, choice.by_shown_rank, choice.new_cap)
    top1 = sent = both = chars = 0
    for c in items:
        ev, hits = c["row"]["evidence"], c["hits"]
        cands = c.setdefault("candidates", {})
        if key not in cands:
            cands[key] = candidates(c["row"]["question"], hits, c["sentences"], choice)
        best = max(cands[key], key=lambda x: choice_score(x, choice), default=None)
        text = None
        if best:
            hit = hits[best.hit]
            text = hit.text[best.start - hit.start_char : best.end - hit.start_char]
            chars += len(text)
        right = bool(hits) and holds(ev, hits[0].text)
        ok = holds(ev, text)
        top1 += right
        sent += ok
        both += right and ok
    n = max(1, len(items))
    return {"answer_sentence": round(sent / n, 4), "given_top1": round(both / max(1, top1), 4),
            "top1_and_sentence": round(both / n, 4), "mean_chars": round(chars / n)}


def measure(items) -> dict:
    """What users see (`Retriever.ask`): top-1, answer sentence, reachability, splitter misses."""
    n = len(items)
    top1 = [bool(c["answer"].passages) and holds(c["row"]["evidence"], c["answer"].passages[0].text) for c in items]
    sent = [holds(c["row"]["evidence"], c["answer"].answer.text if c["answer"].answer else None) for c in items]
    reach, split, misses = [], [], []
    from qa.answer import SentenceChoice
    top = SentenceChoice().top
    for c, ok, right in zip(items, sent, top1):
        ev, hits = c["row"]["evidence"], c["hits"]
        texts = [hits[h].text[a - hits[h].start_char : b - hits[h].start_char]
                 for h, sents in enumerate(c["sentences"]) for a, b, _cos, place in sents if place < top]
        passage = any(holds(ev, h.text) for h in hits[:top])
        reach.append(any(holds(ev, t) for t in texts))
        split.append(passage and not reach[-1])
        if not ok:
            misses.append({"id": c["row"].get("id"), "question": c["row"]["question"], "evidence": ev,
                           "answer": c["answer"].answer.text if c["answer"].answer else None,
                           "top1_right": right,
                           "reachable": reach[-1], "split": split[-1]})
    both = sum(t and s for t, s in zip(top1, sent))
    return {"answerable": n, "top1": round(sum(top1) / max(1, n), 4),
            "answer_sentence": round(sum(sent) / max(1, n), 4),
            "given_top1": round(both / max(1, sum(top1)), 4), "top1_and_sentence": round(both / max(1, n), 4),
            "reachable": round(sum(reach) / max(1, n), 4), "split_evidence": sum(split), "misses": misses}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.answer_sentence", description=__doc__.split("\n\n")[0])
    names = [c.name for c in collections() if c.kind == "qa"]
    ap.add_argument("--corpora", default=",".join(names), help=f"comma-separated, of: {', '.join(names)}")
    ap.add_argument("--splits", default="dev", help="comma-separated (dev, test); test only for the final report")
    ap.add_argument("--misses", action="store_true", help="print every question whose answer sentence misses")
    ap.add_argument("--write", action="store_true", help="write bench/results/answer_sentence.json")
    ap.add_argument("--cache", default=str(CACHE), help="embedding cache folder (default bench/cache)")
    args = ap.parse_args(argv)
    chosen = [n.strip() for n in args.corpora.split(",") if n.strip()]
    if set(chosen) - set(names):
        print(f"unknown corpus {', '.join(sorted(set(chosen) - set(names)))}: choose among {', '.join(names)}",
              file=sys.stderr)
        return 2
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]

    from qa.answer import SentenceChoice
    from qa.embedding import get_embedder
    from qa.evaluation import CachedEmbedder
    from qa.retriever import Retriever
    from qa.store.memory import MemoryReader

    inner = get_embedder()
    inner.use_cache_dir(Path(args.cache) / "onnx")
    embedder = CachedEmbedder(inner, Path(args.cache))
    embedder._con.execute("PRAGMA busy_timeout = 120000")
    results, replay = {}, {}
    for c in collections():
        if c.name not in chosen:
            continue
        if not c.available():
            print(f"{c.name}: not installed, skipped")
            continue
        t = time.time()
        corpus = load_collection(c, embedder, Path(args.cache))
        retriever = Retriever(MemoryReader(corpus.data), embedder)
        print(f"{c.name}: {len(corpus.data.passages)} passages ({time.time() - t:.0f} s)", flush=True)
        for split in splits:
            rows = [r for r in read_questions(c.splits.get(split, [])) if r["kind"] == "answerable"]
            if not rows:
                continue
            items = cases(retriever, rows)
            key = f"{c.name}/{split}"
            results[key] = measure(items)
            shipped = score_variant(items, SentenceChoice())
            assert shipped["answer_sentence"] == results[key]["answer_sentence"], (shipped, results[key])
            replay[key] = {name: score_variant(items, SentenceChoice(**fields)) for name, fields in VARIANTS.items()}
            r = results[key]
            print(f"{key}: {r['answerable']} answerable, top-1 {r['top1']:.3f}, answer sentence {r['answer_sentence']:.3f}"
                  f" (given top-1 {r['given_top1']:.3f}, both {r['top1_and_sentence']:.3f}), reachable "
                  f"{r['reachable']:.3f}, evidence split across sentences {r['split_evidence']}", flush=True)
            if args.misses:
                for m in r["misses"]:
                    print(f"  MISS {m['id']} {m['question']!r}\n    evidence: {m['evidence']!r}\n    answer:   "
                          f"{(m['answer'] or '')[:200]!r}{'  [SPLIT]' if m['split'] else ''}"
                          f"{'' if m['reachable'] else '  [unreachable]'}{'' if m['top1_right'] else '  [top-1 wrong]'}")
    print()
    print(variant_table(replay))
    if args.write:
        out = ROOT / "bench" / "results" / "answer_sentence.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"command": "python -m bench.answer_sentence " + " ".join(argv or sys.argv[1:]),
                                   "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                                   "shipped": dataclasses.asdict(SentenceChoice()), "variants": VARIANTS,
                                   "results": results, "replay": replay}, indent=1) + "\n", encoding="utf-8")
    return 0


def variant_table(replay: dict) -> str:
    """Markdown: answer-sentence accuracy (all answerable / given top-1 right) per variant and split."""
    keys = list(replay)
    lines = ["| variant | " + " | ".join(keys) + " | mean |", "|---|" + "---|" * (len(keys) + 1)]
    for name in VARIANTS:
        vals = [replay[k][name] for k in keys]
        mean = np.mean([v["answer_sentence"] for v in vals]) if vals else 0.0
        lines.append(f"| {name} | " + " | ".join(f"{v['answer_sentence']:.3f} / {v['given_top1']:.3f}" for v in vals)
                     + f" | {mean:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

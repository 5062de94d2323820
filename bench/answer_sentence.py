"""Answer-sentence accuracy per corpus and split, through `Retriever.ask` as users see it, and the
variants of the choice (`qa.answer.SentenceChoice`) compared on the dev splits.

    python -m bench.answer_sentence                        # dev splits of every installed collection
    python -m bench.answer_sentence --corpora default,debref --splits dev --misses
    python -m bench.answer_sentence --splits dev,test --write   # the final table (test: once, at the end)

Collections and question files are those of `python -m bench.quality` (bench/quality/table.py): the
four Debian collections and the default corpus, chunked and embedded as `qa index` does (vectors from
the cache bench/cache/). Per split, over the answerable questions:
- top-1: the first passage holds the evidence (case and spacing ignored);
- top-1 & answer: it does and the answer holds the evidence too (the issue's measure);
- answer: the answer holds the evidence (over all answerable; and given a right top-1);
- chars: the answer's mean length;
- reachable: one sentence (/ one candidate span of the shipped choice) of the top 3 passages holds it;
- split: a shown top passage holds the evidence but none of its sentences does (listed with --misses).
Variants are scored on the same retrieved passages (`qa.answer.choose_answer`); the default's
numbers come from `Retriever.ask` itself and are checked against its replay.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

from bench.quality.table import CACHE, ROOT, chunked, collections, load_collection, norm, read_questions

K = 5  # passages asked for, as `qa ask` shows them

# every variant tried: name -> (SentenceChoice fields, weights of the bench-only features below);
# "current" is the shipped default, "before" the choice of main fde95cc (one sentence, no window),
# "previous" the one shipped from then to main 6b002b0 (window in one paragraph, no join, word share 0.1)
BEFORE = {"window": False, "word_bonus": 0.1, "join_chars": 0, "across_breaks": False, "phrases": False}
PREVIOUS = {"window": True, "word_bonus": 0.1, "join_chars": 0, "across_breaks": False, "phrases": False}
VARIANTS: dict[str, tuple[dict, dict]] = {"before (main fde95cc)": (BEFORE, {}), "previous (main 6b002b0)": (PREVIOUS, {}),
                                          "current": ({}, {})}
for _window, _join in ((False, 0), (True, 0), (True, 150), (True, 250), (True, 350), (True, 400), (True, 10**6)):
    for _breaks in ((False, True) if _window else (False,)):  # across_breaks and phrases together
        for _pen in (0.1, 0.15, 0.2):
            for _word in (0.0, 0.1, 0.2):
                for _focus in (0.0, 0.1, 0.2):
                    for _new in (0.0, 0.05):
                        VARIANTS[f"window={int(_window)} join={'always' if _join == 10**6 else _join} breaks={int(_breaks)} "
                                 f"pen={_pen} word={_word} focus={_focus} new={_new}"] = (
                            {"window": _window, "join_chars": _join, "across_breaks": _breaks, "phrases": _breaks,
                             "rank_penalty": _pen,
                             "word_bonus": _word},
                            {"focus": _focus, "new": _new})
CAP = 250  # leave-one-corpus-out chooses among variants whose answers average at most this many characters

# --- bench-only features, tried and not shipped (bench/quality.md) ----------------------------
_WHO = re.compile(r"^\s*(who|whom|whose)\b|\bwhich (person|people|leader|man|woman|organi[sz]ation|group|company)", re.I)
_WHEN = re.compile(r"\b(when|what year|which year|what date|since when)\b", re.I)
_COUNT = re.compile(r"\b(how (many|much|long|old|far|large|big|often)|what (percentage|number|share|size))\b", re.I)
_WHERE = re.compile(r"^\s*where\b|\b(which|what) (countr|cit|place|town|region)", re.I)
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)s?\b|\b(January|February|March|April|May|June|July|August|"
                   r"September|October|November|December|century)\b")
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|hundreds?|"
                     r"thousands?|millions?|billions?|dozens?|half|percent)\b", re.I)
_NAME = re.compile(r"\b[A-Z][\w’'-]+(?:\s+(?:[A-Z][\w’'-]+|al-\w+|van|von|de|bin))+")
NEW_CAP = 6


def typed(question: str, text: str) -> bool:
    """The span holds what the question asks for: a name (capitalised words in a row, not all the
    question's) for who / where, a year or month for when, a number for how many."""
    if _WHEN.search(question) and _YEAR.search(text):
        return True
    if _COUNT.search(question) and _NUMBER.search(text):
        return True
    if _WHO.search(question) or _WHERE.search(question):
        asked = {w.lower() for w in re.findall(r"\w+", question)}
        return any(any(w.lower() not in asked for w in re.findall(r"\w+", m.group())) for m in _NAME.finditer(text))
    return False


def extras(question: str, texts: list[str]) -> list[dict]:
    """Per candidate span: `focus` (share of the question's words it holds, each weighted by how
    few candidates hold it: a word every span holds names the topic), `new` (content words it adds
    to the question's, as a share of NEW_CAP: a span that only restates the question adds none),
    `type` (`typed`)."""
    from qa.lexical import tokenize

    words = set(tokenize(question))
    content = set(tokenize(question, content_only=True)) | words
    held = [set(tokenize(t)) for t in texts]
    weight = {w: math.log(1 + len(texts) / n) for w in words if (n := sum(w in x for x in held))}
    total = sum(weight.values())
    return [{"focus": sum(v for w, v in weight.items() if w in have) / total if total else 0.0,
             "new": min(NEW_CAP, len(set(tokenize(t, content_only=True)) - content)) / NEW_CAP,
             "type": float(typed(question, t))} for t, have in zip(texts, held)]


def load_partial(c, embedder, questions: list[str], depth: int):
    """A collection's IndexData whose sentence vectors are computed only for the sentences of the
    passages that could rank high for `questions` (the `depth` best by passage cosine and by BM25,
    each); the other sentences get a zero vector (their passages rank by their own cosine).
    For dev work while the full vectors are not in the cache yet; every number it gives is
    labelled "partial"."""
    from qa.documents import load_corpus
    from qa.embedding import embedding_text
    from qa.lexical import bm25_scores, build_bm25, tokenize
    from qa.store.base import IndexData

    passages, spans, texts = chunked(load_corpus(c.folder).documents)
    pv = np.asarray(embedder.encode_documents([embedding_text(p) for p in passages]), dtype=np.float32)
    bm25 = build_bm25(passages)
    qv = embedder.encode_queries(questions)
    wanted = set()
    for q, v in zip(questions, qv):
        wanted.update(np.argsort(-(pv @ v))[:depth].tolist())
        wanted.update(np.argsort(-bm25_scores(bm25, tokenize(q)))[:depth].tolist())
    ids = [j for j, (row, _, _) in enumerate(spans) if row in wanted]
    sv = np.zeros((len(spans), pv.shape[1]), dtype=np.float32)
    if ids:
        sv[ids] = embedder.encode_documents([texts[j] for j in ids])
    return IndexData(manifest={}, passages=passages, passage_vectors=pv, sentence_spans=spans,
                     sentence_vectors=sv, bm25=bm25)


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


def span_text(hits, c) -> str:
    hit = hits[c.hit]
    return hit.text[c.start - hit.start_char : c.end - hit.start_char]


def score_variant(items, fields: dict, weights: dict, show: bool = False) -> dict:
    """Accuracy of SentenceChoice(**fields) plus `weights` × the bench-only features, replayed on
    `items` (`cases`); candidates and features are computed once per window setting."""
    from qa.answer import SentenceChoice, candidates, choice_score

    choice = SentenceChoice(**fields)
    key = (choice.top, choice.window, choice.join_chars, choice.across_breaks, choice.phrases)
    top1 = sent = both = chars = 0
    for c in items:
        ev, hits = c["row"]["evidence"], c["hits"]
        memo = c.setdefault("candidates", {})
        if key not in memo:
            cands = candidates(c["row"]["question"], hits, c["sentences"], choice)
            memo[key] = (cands, extras(c["row"]["question"], [span_text(hits, x) for x in cands]))
        cands, feats = memo[key]
        scores = [choice_score(x, choice) + sum(w * f[name] for name, w in weights.items()) for x, f in zip(cands, feats)]
        text = span_text(hits, cands[int(np.argmax(scores))]) if cands else None
        chars += len(text or "")
        right = bool(hits) and holds(ev, hits[0].text)
        ok = holds(ev, text)
        if show and not ok:
            print(f"  MISS {c['row'].get('id')} {c['row']['question']!r}\n    evidence: {ev!r}\n    answer:   {(text or '')[:240]!r}"
                  + ("" if right else "  [top-1 wrong]"))
        top1 += right
        sent += ok
        both += right and ok
    n = max(1, len(items))
    return {"answer_sentence": round(sent / n, 4), "given_top1": round(both / max(1, top1), 4),
            "top1_and_sentence": round(both / n, 4), "mean_chars": round(chars / n)}


def measure(items) -> dict:
    """What users see (`Retriever.ask`): top-1, answer, how often some candidate could be right
    (one sentence / one span of the shipped choice), evidence split across sentences, the misses."""
    from qa.answer import SentenceChoice, candidates

    n = max(1, len(items))
    top1 = [bool(c["answer"].passages) and holds(c["row"]["evidence"], c["answer"].passages[0].text) for c in items]
    sent = [holds(c["row"]["evidence"], c["answer"].answer.text if c["answer"].answer else None) for c in items]
    single, window, split, misses = [], [], [], []
    for c, ok, right in zip(items, sent, top1):
        ev, hits, q = c["row"]["evidence"], c["hits"], c["row"]["question"]
        single.append(any(holds(ev, span_text(hits, x)) for x in candidates(q, hits, c["sentences"], SentenceChoice(**BEFORE))))
        window.append(any(holds(ev, span_text(hits, x)) for x in candidates(q, hits, c["sentences"])))
        top = SentenceChoice().top  # evidence in a shown top passage, in none of its sentences
        split.append(any(holds(ev, h.text) for h in hits[:top])
                     and not any(holds(ev, h.text[a - h.start_char : b - h.start_char])
                                 for h, sents in zip(hits[:top], c["sentences"][:top]) for a, b, *_ in sents))
        if not ok:
            misses.append({"id": c["row"].get("id"), "question": q, "evidence": ev, "top1_right": right,
                           "answer": c["answer"].answer.text if c["answer"].answer else None,
                           "reachable": window[-1], "split": split[-1]})
    both = sum(t and s for t, s in zip(top1, sent))
    for c in items:  # the answer is one exact span of a shown passage (hence of the source)
        a = c["answer"].answer
        assert a is None or any(h.source == a.source and h.start_char <= a.start_char and a.end_char <= h.end_char
                                and h.text[a.start_char - h.start_char : a.end_char - h.start_char] == a.text
                                for h in c["answer"].passages), (c["row"].get("id"), a)
    return {"answerable": len(items), "top1": round(sum(top1) / n, 4),
            "top1_and_sentence": round(both / n, 4), "answer_sentence": round(sum(sent) / n, 4),
            "given_top1": round(both / max(1, sum(top1)), 4),
            "mean_chars": round(sum(len(c["answer"].answer.text) for c in items if c["answer"].answer) / n),
            "reachable_sentence": round(sum(single) / n, 4), "reachable_window": round(sum(window) / n, 4),
            "split_evidence": sum(split), "misses": misses}


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """The command line of a bench module over the QA collections: `--corpora`, `--cache`."""
    ap = argparse.ArgumentParser(prog=f"python -m {prog}", description=doc.split("\n\n")[0])
    names = [c.name for c in collections() if c.kind == "qa"]
    ap.add_argument("--corpora", default=",".join(names), help=f"comma-separated, of: {', '.join(names)}")
    ap.add_argument("--cache", default=str(CACHE), help="embedding cache folder (default bench/cache)")
    return ap


def chosen_corpora(value: str) -> list[str] | None:
    """The corpora named by `--corpora`, or None (after saying why) when one is unknown."""
    names = [c.name for c in collections() if c.kind == "qa"]
    chosen = [n.strip() for n in value.split(",") if n.strip()]
    if set(chosen) - set(names):
        print(f"unknown corpus {', '.join(sorted(set(chosen) - set(names)))}: choose among {', '.join(names)}",
              file=sys.stderr)
        return None
    return chosen


def bench_embedder(cache: str):
    """The bundled model (ONNX export kept in `cache`/onnx) behind the benchmark's embedding
    cache: (the model's embedder, the caching one)."""
    from qa.embedding import get_embedder
    from qa.evaluation import CachedEmbedder

    inner = get_embedder()
    inner.use_cache_dir(Path(cache) / "onnx")
    return inner, CachedEmbedder(inner, Path(cache))


def main(argv=None) -> int:
    ap = parser("bench.answer_sentence", __doc__)
    ap.add_argument("--splits", default="dev", help="comma-separated (dev, test); test only for the final report")
    ap.add_argument("--misses", action="store_true", help="print every question whose answer sentence misses")
    ap.add_argument("--show", default="", metavar="VARIANT", help="print the misses of this variant (a VARIANTS name)")
    ap.add_argument("--partial", default="", metavar="NAME=DEPTH,...",
                    help="for these corpora embed only the sentences of the DEPTH best passages per question "
                         "(dev work while the cache fills; numbers labelled partial)")
    ap.add_argument("--write", action="store_true", help="write bench/results/answer_sentence.json")
    args = ap.parse_args(argv)
    chosen = chosen_corpora(args.corpora)
    if chosen is None:
        return 2
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    partial = {k: int(v) for k, _, v in (x.partition("=") for x in args.partial.split(",") if x)}

    from qa.answer import SentenceChoice
    from qa.retriever import Retriever
    from qa.store.memory import MemoryReader

    _, embedder = bench_embedder(args.cache)
    embedder._con.execute("PRAGMA busy_timeout = 120000")
    results, replay = {}, {}
    for c in collections():
        if c.name not in chosen:
            continue
        if not c.available():
            print(f"{c.name}: not installed, skipped")
            continue
        t = time.time()
        depth = partial.get(c.name, 0)
        if depth:
            questions = [r["question"] for s in splits for r in read_questions(c.splits.get(s, []))]
            data = load_partial(c, embedder, questions, depth)
        else:
            data = load_collection(c, embedder, Path(args.cache)).data
        retriever = Retriever(MemoryReader(data), embedder)
        print(f"{c.name}: {len(data.passages)} passages ({time.time() - t:.0f} s)", flush=True)
        for split in splits:
            rows = [r for r in read_questions(c.splits.get(split, [])) if r["kind"] == "answerable"]
            if not rows:
                continue
            items = cases(retriever, rows)
            key = f"{c.name}/{split}" + (f" (partial {depth})" if depth else "")
            results[key] = measure(items)
            shipped = score_variant(items, {}, {})
            assert shipped["answer_sentence"] == results[key]["answer_sentence"], (shipped, results[key])
            replay[key] = {name: score_variant(items, *v) for name, v in VARIANTS.items()}
            if args.show:
                print(f"misses of {args.show} on {key}:")
                score_variant(items, *VARIANTS[args.show], show=True)
            r = results[key]
            print(f"{key}: {r['answerable']} answerable, top-1 {r['top1']:.3f}, top-1 and answer {r['top1_and_sentence']:.3f}, "
                  f"answer {r['answer_sentence']:.3f} (given top-1 {r['given_top1']:.3f}; {r['mean_chars']} chars), "
                  f"reachable {r['reachable_sentence']:.3f} / window {r['reachable_window']:.3f}, "
                  f"evidence split across sentences {r['split_evidence']}", flush=True)
            if args.misses:
                for m in r["misses"]:
                    print(f"  MISS {m['id']} {m['question']!r}\n    evidence: {m['evidence']!r}\n    answer:   "
                          f"{(m['answer'] or '')[:200]!r}{'  [SPLIT]' if m['split'] else ''}"
                          f"{'' if m['reachable'] else '  [unreachable]'}{'' if m['top1_right'] else '  [top-1 wrong]'}")
    print()
    print(results_table(results, replay))
    print()
    print(variant_table(replay))
    print()
    print(loco(replay))
    if args.write:
        out = ROOT / "bench" / "results" / "answer_sentence.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"command": "python -m bench.answer_sentence " + " ".join(argv or sys.argv[1:]),
                                   "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                                   "shipped": dataclasses.asdict(SentenceChoice()),
                                   "variants": {k: {**f, **w} for k, (f, w) in VARIANTS.items()},
                                   "results": results, "loco": loco(replay), "table": results_table(results, replay),
                                   # per split and variant: [answer, given a right top-1, mean characters]
                                   "replay": {k: {name: [v["answer_sentence"], v["given_top1"], v["mean_chars"]]
                                                  for name, v in r.items()} for k, r in replay.items()}},
                                  separators=(",", ":")) + "\n", encoding="utf-8")
    return 0


def results_table(results: dict, replay: dict) -> str:
    """Markdown: per corpus and split, previous (main 6b002b0, replayed) → now (`Retriever.ask`)."""
    lines = ["| corpus / split | answerable | top-1 | top-1 & answer | answer | answer given top-1 | chars | reachable | split |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        b = replay[key]["previous (main 6b002b0)"]
        lines.append(f"| {key} | {r['answerable']} | {r['top1']:.3f} | {b['top1_and_sentence']:.3f} → **{r['top1_and_sentence']:.3f}** | "
                     f"{b['answer_sentence']:.3f} → {r['answer_sentence']:.3f} | {b['given_top1']:.3f} → {r['given_top1']:.3f} | "
                     f"{b['mean_chars']} → {r['mean_chars']} | {r['reachable_sentence']:.3f} | {r['split_evidence']} |")
    return "\n".join(lines)


def variant_table(replay: dict, best: int = 8) -> str:
    """Markdown, dev splits only: answer accuracy (over all answerable / given a right top-1; mean
    characters) of the three reference variants, of every window setting at the shipped weights, and
    of the `best` others by mean answer given a right top-1 over the dev splits."""
    keys = [k for k in replay if k.split("/")[1].startswith("dev")]

    def mean(name):
        return float(np.mean([replay[k][name]["given_top1"] for k in keys])) if keys else 0.0

    names = list(VARIANTS)[:3]
    names += [n for n in VARIANTS if n.endswith("pen=0.15 word=0.2 focus=0.0 new=0.0")]
    names += [n for n in sorted(VARIANTS, key=mean, reverse=True) if n not in names][:best]
    lines = ["| variant | " + " | ".join(keys) + " | mean |", "|---|" + "---|" * (len(keys) + 1)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{replay[k][name]['answer_sentence']:.3f} / "
                                                f"{replay[k][name]['given_top1']:.3f} ({replay[k][name]['mean_chars']})" for k in keys)
                     + f" | {mean(name):.3f} |")
    return "\n".join(lines)


def loco(replay: dict) -> str:
    """Leave-one-corpus-out over the dev splits: for each corpus, the variant with the best mean
    answer accuracy given a right top-1 on the OTHER corpora's dev splits among those whose answers
    average at most `CAP` characters there (a sentence or two; ties: the shorter answers), and what
    it and the shipped choice score on the left-out one. Markdown; cells: answer given a right
    top-1 / over all answerable (mean characters)."""
    devs = {k.split("/")[0]: k for k in replay if k.split("/")[1].startswith("dev")}
    lines = ["| left out | chosen on the others' dev | it there | current there | previous there |",
             "|---|---|---|---|---|"]

    def cell(v):
        return f"{v['given_top1']:.3f} / {v['answer_sentence']:.3f} ({v['mean_chars']})"

    for held, key in devs.items():
        others = [k for n, k in devs.items() if n != held]
        short = [v for v in VARIANTS if np.mean([replay[k][v]["mean_chars"] for k in others]) <= CAP]
        if not others or not short:
            continue
        chosen = max(short, key=lambda v: (np.mean([replay[k][v]["given_top1"] for k in others]),
                                           -np.mean([replay[k][v]["mean_chars"] for k in others])))
        lines.append(f"| {held} | {chosen} | {cell(replay[key][chosen])} | {cell(replay[key]['current'])} | "
                     f"{cell(replay[key]['previous (main 6b002b0)'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

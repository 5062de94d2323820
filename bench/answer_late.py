"""Query-time features for the answer-sentence choice (issue 15), measured on the DEV splits only,
leave-one-corpus-out: what the bi-encoder sentence cosine misses, read from a few extra forward
passes of the bundled model at query time.

    python -m bench.answer_late                                    # dev splits of every installed collection
    python -m bench.answer_late --corpora debref,default --grid    # + every variant's numbers per corpus

Per question (through `Retriever.ask`, the passages a user sees; `bench.answer_sentence.cases`),
for every answer candidate of the shipped choice (`qa.answer.candidates`), features of its own
sentence (the core of the candidate span):
- `ms` / `ms_content` / `ms_idf`: token-level late interaction (ColBERT-style MaxSim) with the
  same model: the top passages run through the model once each ("section: text", as indexed),
  tokens mapped to sentences by the tokenizer's character offsets; the mean over the question's
  tokens (all / content words only / content words weighted by the corpus's BM25 IDF) of the
  largest cosine with a token of the sentence. `ms_span_idf`: the same over the candidate span;
  `ms_span_known` without the words the corpus never has; `f_core` / `f_span`: F1 of that recall
  and the precision (the mean over the sentence's tokens of the best cosine with a question
  content token), as BERTScore does.
- `ctx`: the question's cosine with the sentence's tokens mean-pooled from the passage's pass
  (a sentence vector that has read its passage).
- `win` / `head`: the question's cosine with the sentence embedded with its neighbours
  ("previous sentence next") / after its section heading ("section: sentence"): extra passes.
Variants: the shipped score (cosine − 0.15 × rank + 0.1 × word share) plus w × feature (`+f`), or
with the cosine replaced by (1 − a) × cosine + a × feature (`mix`, same scale; also with other rank
penalties and word shares), one or two features.
Reported: answer accuracy (the answer span holds the evidence) per dev split, the
leave-one-corpus-out choice (best mean on the other corpora's dev splits) against the shipped
choice, and the time of the extra passes against the question's own encoding.
"""

from __future__ import annotations

import itertools
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from bench.answer_sentence import bench_embedder, cases, chosen_corpora, holds, parser, span_text
from bench.quality.table import ROOT, collections, load_collection, read_questions

FEATURES = ("ms", "ms_content", "ms_idf", "ms_span_idf", "ms_span_known", "f_core", "f_span", "ctx", "win", "head")
WEIGHTS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
MIXES = (0.25, 0.5, 0.75, 1.0)
PENALTIES, WORDS = (0.05, 0.1, 0.15), (0.0, 0.1, 0.2)  # rank penalty and word share, with a mix


def token_vectors(encoder, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per text: its tokens' contextual vectors (L2-normalised, special tokens dropped) and their
    (start, end) character offsets; a text longer than the model's window runs as several windows."""
    out = []
    for text in texts:
        first = encoder.tokenizer.encode(text)
        windows = [first, *first.overflowing]
        width = max(len(e.ids) for e in windows)
        ids = np.zeros((len(windows), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for r, e in enumerate(windows):
            ids[r, : len(e.ids)] = e.ids
            mask[r, : len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = encoder.session.run(None, {k: v for k, v in feed.items() if k in encoder.inputs})[0]
        vecs, offs = [], []
        for r, e in enumerate(windows):
            keep = [i for i, s in enumerate(e.special_tokens_mask) if not s]
            vecs.append(hidden[r, keep])
            offs.extend(e.offsets[i] for i in keep)
        v = np.concatenate(vecs).astype(np.float32)
        out.append((v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12), np.asarray(offs, dtype=np.int64).reshape(-1, 2)))
    return out


def question_weights(question: str, offsets: np.ndarray, idf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per question token: 1 when its word is a content word (else 0), that word's IDF, and 1 when
    the corpus has the word (`idf(stem)` -> (IDF, known))."""
    from qa.lexical import tokenize

    content, weight, known = np.zeros(len(offsets)), np.zeros(len(offsets)), np.zeros(len(offsets))
    for i, (a, b) in enumerate(offsets):
        # the whole word the token belongs to
        while a > 0 and question[a - 1].isalnum():
            a -= 1
        while b < len(question) and question[b].isalnum():
            b += 1
        stems = tokenize(question[a:b], content_only=True)
        if stems:
            content[i] = 1.0
            weight[i], known[i] = idf(stems[0])
    return content, weight, known


def features(encoder, qvec: np.ndarray, question: str, hits, sentences, idf) -> tuple[list[dict], float]:
    """Per shipped candidate (same order as `qa.answer.candidates`): the FEATURES; and the seconds
    the query-time passes took (MaxSim + ctx: one pass per top passage; win / head not counted)."""
    from qa.answer import SentenceChoice, candidates

    cands = candidates(question, hits, sentences)
    cores = candidates(question, hits, sentences, SentenceChoice(window=False))  # aligned: one per sentence
    assert len(cands) == len(cores)
    t = time.perf_counter()
    (qt, qoff), = token_vectors(encoder, [question])
    content, idfw, known = question_weights(question, qoff, idf)
    used = sorted({c.hit for c in cands})
    prefix = {h: (f"{hits[h].section}: " if hits[h].section else "") for h in used}
    toks = dict(zip(used, token_vectors(encoder, [prefix[h] + hits[h].text for h in used])))
    spent = time.perf_counter() - t

    def maxsim(h: int, start: int, end: int) -> tuple[dict, np.ndarray | None]:
        vecs, offs = toks[h]
        a = start - hits[h].start_char + len(prefix[h])
        b = end - hits[h].start_char + len(prefix[h])
        inside = (offs[:, 0] >= a) & (offs[:, 1] <= b)
        if not inside.any():
            return {"ms": 0.0, "ms_content": 0.0, "ms_idf": 0.0, "best": np.zeros(len(qt), np.float16), "prec": 0.0}, None
        sims = qt @ vecs[inside].T
        best = sims.max(axis=1)
        # raw, for other weightings offline: per question token its best cosine; per sentence
        # token its best cosine with a question content token (BERTScore-style precision)
        raw = {"best": best.astype(np.float16), "prec": float(sims[content > 0].max(axis=0).mean()) if content.sum() else 0.0}
        return {**raw, "ms": float(best.mean()),
                "ms_content": float(best @ content / content.sum()) if content.sum() else float(best.mean()),
                "ms_idf": float(best @ idfw / idfw.sum()) if idfw.sum() else float(best.mean())}, vecs[inside]

    out = []
    extra_texts = []
    for c, core in zip(cands, cores):
        f, inside = maxsim(core.hit, core.start, core.end)
        span = maxsim(c.hit, c.start, c.end)[0]
        f["ms_span_idf"], f["best_span"], f["prec_span"] = span["ms_idf"], span.get("best"), span.get("prec", 0.0)
        if inside is None:
            f["ctx"] = 0.0
        else:
            m = inside.mean(axis=0)  # (normalised tokens: close to the pooled vector's direction)
            f["ctx"] = float(m @ qvec / max(np.linalg.norm(m), 1e-12))
        out.append(f)
        hit = hits[core.hit]
        rel = [(a - hit.start_char, b - hit.start_char) for a, b, *_ in sentences[core.hit]]
        i = next(j for j, (a, b) in enumerate(rel) if a == core.start - hit.start_char)
        lo, hi = rel[max(0, i - 1)][0], rel[min(len(rel) - 1, i + 1)][1]
        extra_texts.append(" ".join(hit.text[lo:hi].split()))
        extra_texts.append(prefix[core.hit] + hit.text[rel[i][0] : rel[i][1]])
    if extra_texts:
        ev = encoder.encode(extra_texts) @ qvec
        for j, f in enumerate(out):
            f["win"], f["head"] = float(ev[2 * j]), float(ev[2 * j + 1])
    for f in out:
        f["q_content"], f["q_idf"], f["q_known"] = content, idfw, known
    return out, spent


def derived(f: dict) -> None:
    """Add to candidate features `f` those computed from the raw MaxSim parts: `ms_span_known`
    (`ms_span_idf` without the question words the corpus never has: a typo matches nothing),
    `f_core` / `f_span` (BERTScore-style F1 of the IDF recall and the precision: long spans
    holding much besides the question's words lose)."""
    w, known = f["q_idf"], f["q_idf"] * f["q_known"]

    def mean(best, weights):
        best = best.astype(np.float64)
        return float(best @ weights / weights.sum()) if weights.sum() else float(best.mean())

    f["ms_span_known"] = mean(f["best_span"], known)
    for name, best, prec in (("f_core", f["best"], f["prec"]), ("f_span", f["best_span"], f["prec_span"])):
        r = mean(best, w)
        f[name] = 2 * r * prec / (r + prec) if r + prec > 0 else 0.0


def variants() -> dict[str, dict]:
    """name -> {"add": {feature: w}} or {"mix": (feature, a)}; "current" = the shipped choice."""
    out: dict[str, dict] = {"current": {"add": {}}}
    for f in FEATURES:
        for w in WEIGHTS:
            out[f"+{w}*{f}"] = {"add": {f: w}}
        for a in MIXES:
            out[f"mix {a} {f}"] = {"mix": (f, a)}
            for pen, word in itertools.product(PENALTIES, WORDS):
                if (pen, word) != (0.15, 0.1):  # the shipped ones: the line above
                    out[f"mix {a} {f} pen={pen} word={word}"] = {"mix": (f, a), "pen": pen, "word": word}
    for f, g in itertools.combinations(FEATURES, 2):
        for w, v in itertools.product((0.1, 0.3, 0.5), repeat=2):
            out[f"+{w}*{f} +{v}*{g}"] = {"add": {f: w, g: v}}
    return out


def score(items, spec: dict) -> dict:
    """Answer accuracy of one variant replayed on `items` (with "cands" and "feats")."""
    from qa.answer import SentenceChoice, choice_score

    choice = SentenceChoice(rank_penalty=spec.get("pen", 0.15), word_bonus=spec.get("word", 0.1))
    sent = both = top1 = chars = 0
    for it in items:
        cands, feats, hits = it["cands"], it["feats"], it["hits"]
        if not cands:
            continue
        s = []
        for c, f in zip(cands, feats):
            base = choice_score(c, choice)
            if "mix" in spec:
                name, a = spec["mix"]
                base += a * (f[name] - c.cos)
            s.append(base + sum(w * f[n] for n, w in spec.get("add", {}).items()))
        text = span_text(hits, cands[int(np.argmax(s))])
        chars += len(text)
        ok = holds(it["row"]["evidence"], text)
        right = holds(it["row"]["evidence"], hits[0].text)
        sent += ok
        top1 += right
        both += ok and right
    n = max(1, len(items))
    return {"answer": round(sent / n, 4), "given_top1": round(both / max(1, top1), 4), "chars": round(chars / n)}


def loco(table: dict[str, dict[str, dict]], names: list[str], metric: str = "answer") -> list[tuple]:
    """Per left-out corpus: the variant with the best mean `metric` on the others (ties: the
    earlier in `names`, "current" first), and its and the shipped choice's numbers there."""
    rows = []
    for held in table:
        others = [k for k in table if k != held]
        chosen = max(names, key=lambda v: (np.mean([table[k][v][metric] for k in others]), -names.index(v)))
        rows.append((held, chosen, table[held][chosen], table[held]["current"]))
    return rows


def main(argv=None) -> int:
    ap = parser("bench.answer_late", __doc__)
    ap.add_argument("--grid", action="store_true", help="print every variant's dev numbers")
    ap.add_argument("--reuse", action="store_true", help="reuse the features saved in bench/cache/answer_late/")
    args = ap.parse_args(argv)
    chosen = chosen_corpora(args.corpora)
    if chosen is None:
        return 2

    from qa.answer import candidates
    from qa.lexical import bm25_idf
    from qa.retriever import Retriever
    from qa.store.memory import MemoryReader

    inner, embedder = bench_embedder(args.cache)
    encoder = inner.query_encoder()
    saved = Path(args.cache) / "answer_late"
    saved.mkdir(exist_ok=True)
    table, timing = {}, {}
    for c in collections():
        if c.name not in chosen or not c.available():
            continue
        path = saved / f"{c.name}-dev.pkl"
        if args.reuse and path.exists():
            items, timing[c.name] = pickle.loads(path.read_bytes())
        else:
            data = load_collection(c, embedder, Path(args.cache)).data
            retriever = Retriever(MemoryReader(data), embedder)
            rows = [r for r in read_questions(c.splits.get("dev", [])) if r["kind"] == "answerable"]
            items = cases(retriever, rows)
            memo: dict[str, tuple] = {}

            def idf(stem: str) -> tuple[float, bool]:
                if stem not in memo:
                    memo[stem] = (bm25_idf(data.bm25, [stem])[stem], stem in data.bm25.vocab_dict)
                return memo[stem]

            q_time = extra = 0.0
            for it in items:
                q = it["row"]["question"]
                t = time.perf_counter()
                qvec = encoder.encode([q])[0]
                q_time += time.perf_counter() - t
                it["cands"] = candidates(q, it["hits"], it["sentences"])
                it["feats"], spent = features(encoder, qvec, q, it["hits"], it["sentences"], idf)
                extra += spent
                del it["answer"]
            timing[c.name] = {"questions": len(items), "query_encode_ms": 1000 * q_time / max(1, len(items)),
                              "token_passes_ms": 1000 * extra / max(1, len(items))}
            path.write_bytes(pickle.dumps((items, timing[c.name])))
        for it in items:
            for f in it["feats"]:
                derived(f)
        table[f"{c.name}/dev"] = {name: score(items, spec) for name, spec in variants().items()}
        cur = table[f"{c.name}/dev"]["current"]
        print(f"{c.name}/dev: {len(items)} answerable, current answer {cur['answer']:.3f} (given top-1 "
              f"{cur['given_top1']:.3f}); query encode {timing[c.name]['query_encode_ms']:.1f} ms, token passes "
              f"{timing[c.name]['token_passes_ms']:.1f} ms per question", flush=True)
    names_ = list(variants())
    keys = list(table)
    mean = {v: float(np.mean([table[k][v]["answer"] for k in keys])) for v in names_}
    print("\n| variant | " + " | ".join(keys) + " | mean |\n|---|" + "---|" * (len(keys) + 1))
    shown = names_ if args.grid else ["current"] + [v for v in sorted(names_, key=mean.get, reverse=True) if v != "current"][:15]
    for v in shown:
        print(f"| {v} | " + " | ".join(f"{table[k][v]['answer']:.3f} / {table[k][v]['given_top1']:.3f}" for k in keys)
              + f" | {mean[v]:.3f} |")
    for metric in ("answer", "given_top1"):
        print(f"\nLeave-one-corpus-out on {metric} (cells: answer / given a right top-1 (mean characters))\n"
              "| left out | chosen on the others' dev | it there | current there |\n|---|---|---|---|")
        for held, v, got, now in loco(table, names_, metric):
            print(f"| {held} | {v} | " + " | ".join(f"{x['answer']:.3f} / {x['given_top1']:.3f} ({x['chars']})" for x in (got, now))
                  + " |")
    out = ROOT / "bench" / "results" / "answer_late.json"
    out.write_text(json.dumps({"command": "python -m bench.answer_late " + " ".join(argv or sys.argv[1:]),
                               "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "timing": timing,
                               # per dev split and variant: [answer, given a right top-1, mean characters]
                               "dev": {k: {v: [r["answer"], r["given_top1"], r["chars"]] for v, r in t.items()} for k, t in table.items()},
                               "loco": {m: [(h, v) for h, v, *_ in loco(table, names_, m)] for m in ("answer", "given_top1")}}, separators=(",", ":")) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Refit the re-scoring of the top passages across corpora, leave-one-corpus-out (issue 10, item 3).

    python -m bench.quality.refit features [--corpora python311,...] [--split dev]
    python -m bench.quality.refit fit pcos,words_s1,when_s,count_s,nav --before     # refit the features of before
    python -m bench.quality.refit fit pcos_doc,loglen_doc --on-current --before     # new features on top of them
    python -m bench.quality.refit fit pcos,words_s1 --weights 0.24,0.24               # replay fixed weights

`features`: for every question of a collection's split (bench.quality's collections, built as `qa
index` would index them: `table.load_collection`, vectors from the embedding cache, an approximate
collection scored from candidates), the first stage's top `KEEP` passages (`SearchParams(rerank_depth=0)`),
each with its fused score, a label (QA: the passage holds the evidence; BEIR: its document is
relevant), its document (BEIR) and the features of `FEATURES`, to bench/cache/refit-<corpus>-<split>.npz.

`fit`: a linear bonus over the named features is added to the fused score of the top `--depth`
(default 10, as shipped) and the list re-sorted. Without `--weights`, the weights are fitted
(listwise softmax over the top `--depth`, each corpus weighted equally, L2 `--l2`) on every corpus
but one and measured on the one left out, for every corpus (leave-one-corpus-out), and once on all
of them; with `--weights`, those are replayed. Printed: per corpus hit@1 / hit@5 / MRR@10 of the
passages (BEIR: documents, a document ranked at its best passage).

Features (s1 = the passage's best sentence; word shares are IDF-weighted shares of the question's
BM25 tokens, `qa.search.fusion.word_share`, with the index's IDF):
pcos passage cosine; s1 best sentence cosine; dense the first stage's dense score; bm25n BM25 / the
question's best BM25; bm25_rr, dense_rr 1 / rank in BM25's / the dense order; words_s1 words in s1
(shipped); words_p in the passage text; words_sec in its heading path; words_title in the path's
first part (the page title for HTML); words_last in its last heading; words_all in path + text;
when_s / count_s a "when" / "how many" question and s1 holds a year / a number (shipped; count_s until
this round, `count_held`); nav a table of contents (shipped); loglen log(1 + words); short fewer than 40 words; whole the passage is its
section's only passage; code share of its lines that look like code or a shell command; howto_code a
how-to or imperative question and a passage with a command; depth the heading path's depth;
tcos cosine of question and heading path (the candidates' paths encoded, into the cache);
pcos_rel, s1_rel the passage's pcos / s1 minus the best of the top `KEEP`; X_kw feature X for a keyword
query (no question mark, no question word first: "peer authentication over tcp"), else 0; howto_pcos
pcos for a how-to or imperative question, else 0; X_doc feature X × the share of the first stage's top 10
whose heading path has two levels or more (`qa.search.fusion.structured_share`: a page and its sections).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import numpy as np

from bench.quality import table

KEEP = 20  # first-stage passages kept per question (re-scoring reads the top 10 as shipped)
FEATURES = ["pcos", "s1", "dense", "bm25n", "bm25_rr", "dense_rr", "words_s1", "words_p", "words_sec",
            "words_title", "words_last", "words_all", "when_s", "count_s", "nav", "loglen", "short", "whole",
            "code", "howto_code", "depth", "tcos", "pcos_rel", "s1_rel", "pcos_kw", "s1_kw", "words_s1_kw", "words_p_kw",
            "bm25n_kw", "howto_pcos", "pcos_doc", "s1_doc", "words_s1_doc", "bm25n_doc", "loglen_doc"]
SEP = " › "


def shipped(params=None) -> dict[str, float]:
    """The re-scoring of `params` (default `SearchParams()`) as weights of `FEATURES`."""
    from qa.search import SearchParams

    p = params or SearchParams()
    return {"pcos": p.rerank_passage, "words_s1": p.rerank_words, "when_s": p.rerank_when, "nav": -p.rerank_navigation, "pcos_doc": p.rerank_doc_passage, "loglen_doc": p.rerank_doc_length}


CURRENT = shipped()  # "current" in the tables: the shipped weights

_HOWTO = re.compile(
    r"^\s*(how (do|can|would|should|to|does one)\b|how i\b|what('s| is) the (command|way)|(show|list|install|set|"
    r"configure|create|enable|disable|find|get|make|remove|change|run|use|check|add|delete|start|stop|mount|"
    r"convert|print|write|read|turn|upgrade|update|count|select|insert|import|export|backup|restore|open|"
    r"load|dump|rename|drop|grant|allow|prevent|limit|increase|reduce)\b)", re.I)
_CODE_LINE = re.compile(
    r"^\s*(\$ |# |>>> |\.\.\. |sudo |apt(-get)? |CREATE |SELECT |INSERT |UPDATE |DELETE |ALTER |DROP |"
    r"import |from \S+ import |def |class |return |[a-z_][\w.]*\(.*\)\s*;?$|\S+ = \S)")


def code_share(text: str) -> float:
    """Share of the non-empty lines of `text` that look like code or a shell command."""
    lines = [line for line in text.splitlines() if line.strip()]
    return sum(bool(_CODE_LINE.match(line)) for line in lines) / len(lines) if lines else 0.0


_QUESTION_WORD = re.compile(
    r"^\s*(what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|can|could|should|would|will|"
    r"may|might|must|has|have|had|am|shall)\b", re.I)


def is_keywords(question: str) -> bool:
    """A keyword query ("peer authentication over tcp"), not a sentence: no question mark and no
    question word or auxiliary verb first."""
    return "?" not in question and not _QUESTION_WORD.match(question)


def is_howto(question: str) -> bool:
    """A how-to question or an imperative one ("show open ports", "How do I ...")."""
    return bool(_HOWTO.match(question))


def whole_sections(passages) -> np.ndarray:
    """Per passage: whether it is the only passage of its (source, section)."""
    count: dict = {}
    for p in passages:
        count[(p.source, p.section)] = count.get((p.source, p.section), 0) + 1
    return np.fromiter((count[(p.source, p.section)] == 1 for p in passages), dtype=bool, count=len(passages))


_COUNT_QUESTION = re.compile(r"\b(how (many|much|long|old|far|large|big)|what (percentage|number|share))\b", re.I)
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|hundreds?|thousands?"
                     r"|millions?|billions?|dozens?|half|percent)\b", re.I)


def count_held(question: str, sentence: str) -> frozenset[str]:
    """{"count"} for a "how many" question whose best sentence holds a number: the re-scoring's
    `rerank_count` feature before this round removed it (what `qa.search.fusion.held_types` did)."""
    return frozenset({"count"}) if _COUNT_QUESTION.search(question) and _NUMBER.search(sentence) else frozenset()


def candidate_rows(parts, positions) -> list[int]:
    """Passage rows of `positions` in `parts` (positions among the candidates on an approximate index)."""
    return [int(parts.candidates[a]) if parts.candidates is not None else int(a) for a in positions]


def question_features(question, query, parts, positions, reader, whole, title_vectors) -> np.ndarray:
    """The `FEATURES` of the first-stage passages at `positions` of `parts` (rows of the reader, or
    positions among `parts.candidates`)."""
    from qa.lexical import tokenize, tokenize_many
    from qa.search.fusion import answer_types, held_types, is_navigation, structured_share, word_share

    rows = candidate_rows(parts, positions)
    tokens = tokenize(question)
    weights = reader.bm25_idf(set(tokens))
    kinds = answer_types(question)
    howto = is_howto(question)
    keywords = float(is_keywords(question))
    pcos = np.asarray(reader.passage_vectors(np.asarray(rows, dtype=np.int64)), dtype=np.float32) @ query
    starts, counts = reader.sentence_range(np.asarray(rows, dtype=np.int64))
    best_ids = []
    for s, c in zip(starts, counts):
        cos = [parts.sentence[j] for j in range(int(s), int(s + c))]
        best_ids.append(int(s) + int(np.argmax(cos)) if c else -1)
    spans = dict(zip([b for b in best_ids if b >= 0], reader.sentence_spans([b for b in best_ids if b >= 0])))
    passages = reader.passages(rows)
    bm = parts.bm25[parts.allowed] if parts.candidates is None else parts.bm25
    top_bm25 = float(bm.max()) if len(bm) else 0.0
    out = []
    for a, i, p, b, pc in zip(positions, rows, passages, best_ids, pcos):
        sentence = p.text
        if b >= 0:
            _, start, end = spans[b]
            sentence = p.text[start - p.start_char : end - p.start_char]
        path = p.section.split(SEP) if p.section else []
        texts = [sentence, p.text, p.section, path[0] if path else "", path[-1] if path else "",
                 f"{p.section}\n{p.text}"]
        words = tokenize_many(texts, set(weights))
        shares = [word_share(weights, w) for w in words]
        held = held_types(sentence, kinds) | count_held(question, sentence)
        nwords = len(p.text.split())
        code = code_share(p.text)
        tv = title_vectors.get(p.section)
        out.append([
            float(pc), float(parts.sentence[b]) if b >= 0 else -1.0, float(parts.dense[a]),
            float(parts.bm25[a]) / top_bm25 if top_bm25 > 0 else 0.0,
            1.0 / parts.bm25_rank[a] if parts.bm25_rank[a] else 0.0,
            1.0 / parts.dense_rank[a] if parts.dense_rank[a] else 0.0,
            *shares, float("when" in held), float("count" in held), float(is_navigation(p.text)),
            math.log1p(nwords), float(nwords < 40), float(whole[i]), code, float(howto and code > 0),
            float(len(path)), float(tv @ query) if tv is not None else 0.0,
        ])
    x = np.asarray(out, dtype=np.float32)
    col = {name: x[:, FEATURES.index(name)] for name in ("pcos", "s1", "words_s1", "words_p", "bm25n")}
    extra = [col["pcos"] - col["pcos"].max(), col["s1"] - col["s1"].max(), keywords * col["pcos"], keywords * col["s1"],
             keywords * col["words_s1"], keywords * col["words_p"], keywords * col["bm25n"], float(howto) * col["pcos"]]
    # documentation: the share of the top 10 whose heading path has two levels or more, as shipped
    doc = structured_share([p.section for p in passages[:10]])
    extra += [doc * x[:, FEATURES.index(name)] for name in ("pcos", "s1", "words_s1", "bm25n", "loglen")]
    return np.concatenate([x, np.stack(extra, axis=1)], axis=1)


def extract(c, split: str, embedder, cache: Path) -> dict:
    """Features, labels and fused scores of the first stage's top `KEEP` for every answerable
    question of collection `c`'s `split`."""
    from qa.search import SearchParams, Searcher
    from qa.store.local.vectors import index_kind
    from qa.store.memory import MemoryReader

    corpus = table.load_collection(c, embedder, cache)
    data = corpus.data
    reader = MemoryReader(data)
    reader.exact = index_kind(len(data.passages)) == "flat"  # as `qa index` would index it
    searcher = Searcher(reader, embedder, SearchParams(rerank_depth=0))
    if c.kind == "beir":
        rows = table.beir_split(c, corpus, split)
    else:
        rows = [r for r in table.read_questions(c.splits[split]) if r["kind"] == "answerable"]
    whole = whole_sections(data.passages)
    questions = [r["question"] for r in rows]
    vectors = embedder.encode_queries(questions)
    scored = []
    for row, query in zip(rows, vectors):
        parts = searcher.score(row["question"], k=10, query_vector=query)
        if parts.candidates is not None:
            order = np.lexsort((parts.candidates, -parts.fused))
        else:
            order = np.argsort(-parts.fused, kind="stable")
        scored.append((parts, order[np.isfinite(parts.fused[order])][:KEEP]))
    # the heading paths of the candidates only (a few thousand short texts; cached like every vector)
    paths = sorted({p.section for parts, order in scored for p in reader.passages(candidate_rows(parts, order))
                    if p.section})
    title_vectors = dict(zip(paths, embedder.encode_documents(paths))) if paths else {}
    X, Y, F, D, P, S = [], [], [], [], [], []
    for row, query, (parts, order) in zip(rows, vectors, scored):
        x = question_features(row["question"], query, parts, order, reader, whole, title_vectors)
        prow = candidate_rows(parts, order)
        if corpus.doc_of_source is not None:
            docs = [corpus.doc_of_source[data.passages[i].source] for i in prow]
            labels = [float(row["gains"].get(d, 0) > 0) for d in docs]
            keys = [hash(d) % (2 ** 62) for d in docs]
        else:
            want = table.norm(row["evidence"])
            labels = [float(want in table.norm(data.passages[i].text)) for i in prow]
            keys = prow
        passages = data.passages
        place = [hash((passages[i].source, passages[i].section, passages[i].page, passages[i].locator)) % (2 ** 62)
                 for i in prow]
        spans = [(passages[i].start_char, passages[i].end_char) for i in prow]
        pad = KEEP - len(order)
        X.append(np.pad(x, ((0, pad), (0, 0))))
        Y.append(labels + [0.0] * pad)
        F.append(list(parts.fused[order]) + [-np.inf] * pad)
        D.append(keys + [-1 - k for k in range(pad)])
        if corpus.doc_of_source is None:
            P.append(place + [-1 - k for k in range(pad)])
            S.append(spans + [(0, 0)] * pad)
    return {"X": np.stack(X), "Y": np.asarray(Y, np.float32), "F": np.asarray(F), "D": np.asarray(D, np.int64),
            "names": np.asarray(FEATURES), "questions": np.asarray(questions),
            # QA: each passage's place and span, to merge overlapping passages as `Retriever.ask` shows them
            "P": np.asarray(P, np.int64).reshape(len(X), -1), "S": np.asarray(S, np.int64).reshape(len(X), -1, 2)}


def features_path(cache: Path, corpus: str, split: str) -> Path:
    return cache / f"refit-{corpus}-{split}.npz"


# --- fitting and replaying ------------------------------------------------------------------


def ranks(scores: np.ndarray, data: dict, merge: bool = True) -> list[int | None]:
    """1-based rank of the first relevant result of each row of `scores`, None when none is in the
    list: BEIR documents counted once, at their best passage; QA passages merged as shown
    (`qa.search.merge.merge_ranked`: overlapping passages of one place are one result, relevant
    when one of them is)."""
    from types import SimpleNamespace

    from qa.search.merge import merge_ranked

    out = []
    Y, D, P, S = data["Y"], data["D"], data.get("P"), data.get("S")
    for q, s in enumerate(scores):
        order = [j for j in np.argsort(-s, kind="stable") if np.isfinite(s[j])]
        if P is not None and P.shape[1] and merge:
            shown = [SimpleNamespace(source=int(P[q, j]), section="", page=None, locator="",
                                     start_char=int(S[q, j, 0]), end_char=int(S[q, j, 1])) for j in order]
            groups = [[order[g] for g in group] for group in merge_ranked(shown, len(shown))]
        else:
            groups, seen = [], set()
            for j in order:
                if D[q, j] not in seen:
                    seen.add(D[q, j])
                    groups.append([j])
        out.append(next((r for r, group in enumerate(groups, 1) if any(Y[q, j] > 0 for j in group)), None))
    return out


def metrics(r: list[int | None]) -> dict:
    n = len(r) or 1
    return {"hit@1": sum(x == 1 for x in r) / n, "hit@3": sum(bool(x and x <= 3) for x in r) / n,
            "hit@5": sum(bool(x and x <= 5) for x in r) / n, "mrr": sum(1 / x for x in r if x and x <= 10) / n}


def rescored(data: dict, cols: list[int], w: np.ndarray, depth: int, base=None) -> np.ndarray:
    """Fused score + features @ w (+ the `base` bonus) on the top `depth`, fused score alone below."""
    s = data["F"].astype(np.float64).copy()
    s[:, :depth] += data["X"][:, :depth][:, :, cols] @ w
    if base is not None:
        s[:, :depth] += data["X"][:, :depth][:, :, base[0]] @ base[1]
    return s


def loss(params, sets, l2, prior):
    """Listwise softmax loss (−log of the relevant items' share of the top `depth`) of score =
    t × (fused + X @ w), mean per corpus, summed over corpora, + `l2` × |w − prior|²; and its
    gradient. `params` = (w, t): t, the softmax's scale, is free."""
    w, t = params[:-1], params[-1]
    total, gw, gt = l2 * ((w - prior) @ (w - prior)), 2 * l2 * (w - prior), 0.0
    for X, F, Y in sets:
        u = F + X @ w
        s = t * u
        s = s - s.max(1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(1, keepdims=True)
        prel = (p * Y).sum(1)
        total += -np.log(prel + 1e-12).mean()
        diff = p - p * Y / prel[:, None]
        gw = gw + t * (diff[:, :, None] * X).sum(1).mean(0)
        gt += (diff * u).sum(1).mean()
    return total, np.append(gw, gt)


def fit(train: list[dict], cols: list[int], depth: int, l2: float, prior=None, base=None) -> np.ndarray:
    """Weights of `cols` fitted on `train`: what is added to the fused score of the top `depth`,
    shrunk towards `prior` (default 0) by `l2`; `base` (columns, weights): a bonus kept fixed,
    added to the fused score before fitting."""
    from scipy.optimize import minimize

    prior = np.zeros(len(cols)) if prior is None else np.asarray(prior, dtype=np.float64)
    sets = []
    for d in train:
        Y = d["Y"][:, :depth]
        ok = Y.sum(1) > 0  # a question with no right passage in the top depth teaches nothing
        F = np.nan_to_num(d["F"][ok, :depth], neginf=-1e9)
        if base is not None:
            F = F + d["X"][ok, :depth][:, :, base[0]] @ base[1]
        sets.append((d["X"][ok, :depth][:, :, cols].astype(np.float64), F, Y[ok]))
    res = minimize(loss, np.append(prior, 10.0), args=(sets, l2, prior), jac=True, method="L-BFGS-B",
                   bounds=[(None, None)] * len(cols) + [(1e-3, None)])
    return res.x[:-1]


def cells(m: dict) -> str:
    return f"{m['hit@1']:.3f} / {m['hit@5']:.3f} / {m['mrr']:.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.quality.refit", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("features", help="first-stage top passages' features per corpus")
    f.add_argument("--corpora", default="python311,postgres15,debref,sqlite,default,scifact,squad")
    f.add_argument("--split", default="dev")
    f.add_argument("--cache", default=str(table.CACHE))
    g = sub.add_parser("fit", help="leave-one-corpus-out fit (or replay of --weights)")
    g.add_argument("features", help="comma-separated names of FEATURES")
    g.add_argument("--weights", default="", help="replay these weights (comma-separated) instead of fitting")
    g.add_argument("--corpora", default="python311,postgres15,debref,sqlite,default,scifact,squad")
    g.add_argument("--split", default="dev")
    g.add_argument("--depth", type=int, default=10)
    g.add_argument("--l2", type=float, default=0.001, help="shrinkage of the weights (towards --prior)")
    g.add_argument("--before", action="store_true",
                   help="compare with (and --on-current build on) the re-scoring before the refit (no structured-documentation terms)")
    g.add_argument("--on-current", action="store_true",
                   help="keep the shipped re-scoring and fit only the named features on top of it")
    g.add_argument("--prior", default="", help="comma-separated: shrink towards these weights (default 0; 'current': "
                   "the shipped ones, 0 for a feature they do not use)")
    g.add_argument("--cache", default=str(table.CACHE))
    args = ap.parse_args(argv)
    cache = Path(args.cache)
    names = [n.strip() for n in args.corpora.split(",") if n.strip()]
    if args.command == "features":
        from qa.embedding import get_embedder
        from qa.evaluation import CachedEmbedder

        inner = get_embedder()
        inner.use_cache_dir(cache / "onnx")
        embedder = CachedEmbedder(inner, cache)
        embedder._con.execute("PRAGMA busy_timeout = 120000")
        for c in table.collections():
            if c.name in names and c.available():
                out = extract(c, args.split, embedder, cache)
                np.savez_compressed(features_path(cache, c.name, args.split), **out)
                print(f"{c.name}/{args.split}: {len(out['Y'])} questions, right passage in the top {KEEP}: "
                      f"{int((out['Y'].sum(1) > 0).sum())}", flush=True)
        return 0
    chosen = args.features.split(",")
    unknown = [x for x in chosen if x not in FEATURES]
    if unknown:
        print(f"unknown feature {', '.join(unknown)}: use {', '.join(FEATURES)}", file=sys.stderr)
        return 2
    data = {n: dict(np.load(features_path(cache, n, args.split))) for n in names}
    if args.before:
        from qa.search import SearchParams

        current = {k: v for k, v in shipped(SearchParams(rerank_doc_passage=0, rerank_doc_length=0)).items() if v}
        current["count_s"] = 0.08  # removed after the refit (bench/quality.md, fourth round)
    else:
        current = CURRENT
    cols = [FEATURES.index(x) for x in chosen]
    before = {n: metrics(ranks(rescored(d, [FEATURES.index(k) for k in current], np.array(list(current.values())),
                                         args.depth), d)) for n, d in data.items()}
    if args.weights:
        w = np.array([float(x) for x in args.weights.split(",")])
        print(f"{args.features} weights {' '.join(f'{x:.3f}' for x in w)}")
        print("| corpus | current | these weights |\n|---|---|---|")
        for n, d in data.items():
            print(f"| {n} | {cells(before[n])} | {cells(metrics(ranks(rescored(d, cols, w, args.depth), d)))} |")
        return 0
    print(f"{args.features}: leave-one-corpus-out (fit on the others' {args.split}, measured on the one left out)")
    print("| left out | weights fitted on the others | current there | refitted there |\n|---|---|---|---|")
    if args.prior == "current":
        prior = [current.get(x, 0.0) for x in chosen]
    else:
        prior = [float(x) for x in args.prior.split(",")] if args.prior else None
    base = ([FEATURES.index(k) for k in current], np.array(list(current.values()))) if args.on_current else None
    wins = losses = 0
    for held in names:
        w = fit([d for n, d in data.items() if n != held], cols, args.depth, args.l2, prior, base)
        d = data[held]
        after = metrics(ranks(rescored(d, cols, w, args.depth, base), d))
        diff = round((after["hit@1"] - before[held]["hit@1"]) * len(d["Y"]))
        wins, losses = wins + (diff > 0), losses + (diff < 0)
        print(f"| {held} | {' '.join(f'{x:.2f}' for x in w)} | {cells(before[held])} | {cells(after)} ({diff:+d}) |")
    w = fit(list(data.values()), cols, args.depth, args.l2, prior, base)
    print(f"\nLOCO at hit@1: better on {wins}, worse on {losses} of {len(names)}. "
          f"Fitted on all: {' '.join(f'{k}={x:.3f}' for k, x in zip(chosen, w))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

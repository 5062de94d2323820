"""One command, one table: retrieval quality of every baseline and of the `qa` default, per corpus.

    make quality                         # every collection whose documents are installed
    python -m bench.quality --corpora default,scifact --no-write   # (bench/quality/table.py)
    python -m bench.quality --default rerank_depth=0 --no-write   # the default with other SearchParams

Every system ranks the same passages (chunked as `qa index` does, vectors from the embedding cache
in bench/cache/, so a rerun only encodes new questions):
- BM25 alone; dense alone (the passage cosine); dense best-sentence (the larger of the passage's
  cosine and its best sentence's); RRF(BM25, dense best-sentence) (k=60, every passage);
- the `qa` default: `Retriever.ask` with `SearchParams()`, whose "not found" decision gives the
  not-found rates; scored as `qa index` would index the collection (every passage up to 5,000 of
  them; above, only the candidates of the vector search and BM25, as on an HNSW index).

Collections: the four Debian ones (bench/corpora/<name>/dev.jsonl and test.jsonl over the documents
`python -m bench.corpora.install` puts in bench/cache/corpora/<name>/), the default corpus (dev =
../shared/eval/seed_dev.jsonl + bench/dev_extra.jsonl, test = bench/holdout.jsonl), SciFact test and
SQuAD test_1k (BEIR folders under ../shared/benchmarks; a document scores as its best passage).
A QA question is answered at rank r when the r-th passage holds its evidence (case and spacing
ignored). Results: bench/results/quality.json, and the table between the markers in bench/quality.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
# ../shared beside the repository (a worktree one level deeper finds it one level up)
SHARED = next((d for d in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if d.is_dir()), ROOT.parent / "shared")
CACHE = ROOT / "bench" / "cache"
DEBIAN = ("python311", "postgres15", "debref", "sqlite")
BEGIN, END = "<!-- make quality: begin -->", "<!-- make quality: end -->"
DEPTH = 10  # ranks looked at (MRR@10, nDCG@10)
# seed_dev.jsonl is shared and read-only: the kind of its two unanswerable questions
SEED_KINDS = {"u01": "not-covered", "u03": "off-topic"}


@dataclass
class Collection:
    """A corpus and its question sets. kind "qa": `folder` holds documents, `splits` maps a split
    to question files; kind "beir": `folder` is a BEIR folder, `splits` maps a split to the qrels
    split name."""

    name: str
    kind: str
    folder: Path
    splits: dict[str, list] = field(default_factory=dict)

    def available(self) -> bool:
        if self.kind == "beir":
            return (self.folder / "queries.jsonl").exists()
        return self.folder.is_dir()


def collections(root: Path = ROOT, shared: Path = SHARED) -> list[Collection]:
    """Every collection of the benchmark, in table order."""
    out = []
    for name in DEBIAN:
        qdir = root / "bench" / "corpora" / name
        out.append(Collection(name, "qa", root / "bench" / "cache" / "corpora" / name,
                              {s: [qdir / f"{s}.jsonl"] for s in ("dev", "test")}))
    out.append(Collection("default", "qa", root / "corpus", {
        "dev": [shared / "eval" / "seed_dev.jsonl", root / "bench" / "dev_extra.jsonl"],
        "test": [root / "bench" / "holdout.jsonl"],
    }))
    # BEIR: dev = SciFact train / 1,000 SQuAD questions outside test_1k (what was fitted on before)
    out.append(Collection("scifact", "beir", shared / "benchmarks" / "scifact", {"dev": ["train"], "test": ["test"]}))
    out.append(Collection("squad", "beir", shared / "benchmarks" / "squad-v1.1-dev-passages",
                          {"dev": ["test", "-test_1k"], "test": ["test_1k"]}))
    return out


# --- building the passages in memory, exactly as `qa index` chunks and embeds them --------------


@dataclass
class Corpus:
    """A collection's passages, vectors and BM25 (an in-memory `IndexData`, flat)."""

    data: object
    doc_of_source: dict | None = None  # BEIR: source file -> document id
    beir: object = None  # BEIR: the loaded BeirData


def chunked(documents, settings=None) -> tuple[list, list, list[str]]:
    """`documents` chunked (with `settings`, default `ChunkSettings()`) and their sentences split
    as `qa index` does: (passages, sentence spans (row, start, end), sentence texts)."""
    from qa.chunking import chunk_document, split_sentences
    from qa.config import ChunkSettings

    passages, spans, sentence_texts = [], [], []
    for document in documents:
        for p in chunk_document(document, settings or ChunkSettings()):
            row = len(passages)
            passages.append(p)
            for a, b in split_sentences(p.text):
                spans.append((row, p.start_char + a, p.start_char + b))
                sentence_texts.append(p.text[a:b])
    return passages, spans, sentence_texts


def build(documents, embedder, inputs=None):
    """IndexData of `documents`: chunked, sentences split and embedded as `qa index` does, or as
    `inputs` (an `embedded_input.Inputs`: what is embedded and indexed, for experiments) says."""
    from qa.embedding import embedding_text
    from qa.lexical import build_bm25
    from qa.store.base import IndexData

    passages, spans, sentence_texts = chunked(documents, inputs.chunking if inputs is not None else None)
    passage_texts = [embedding_text(p) for p in passages]
    if inputs is not None:
        passage_texts, sentence_texts = inputs.texts(passages, spans, sentence_texts)
    pv = np.asarray(embedder.encode_documents(passage_texts), dtype=np.float32)
    sv = embedder.encode_documents(sentence_texts) if sentence_texts else np.zeros((0, pv.shape[1]), np.float32)
    data = IndexData(manifest={}, passages=passages, passage_vectors=pv,
                     sentence_spans=spans, sentence_vectors=np.asarray(sv, dtype=np.float32),
                     bm25=build_bm25(passages if inputs is None else inputs.bm25_passages(passages)))
    return data if inputs is None else inputs.after(data)


def load_collection(c: Collection, embedder, cache: Path = CACHE, inputs=None) -> Corpus:
    from qa.documents import load_corpus
    from qa.evaluation import load_beir, write_beir_corpus

    if inputs is not None:
        inputs = inputs.for_folder(c.folder)

    if c.kind == "beir":  # the corpus (its test split's qrels; each split's are read by beir_split)
        beir = load_beir(c.folder, c.splits["test"][0])
        folder = cache / f"inmem-{c.name}"
        if not folder.exists():
            write_beir_corpus(beir.corpus, folder)
        sources = {f"{n:07d}.md": doc for n, doc in enumerate(beir.corpus)}
        return Corpus(build(load_corpus(folder).documents, embedder, inputs), sources, beir)
    return Corpus(build(load_corpus(c.folder).documents, embedder, inputs))


# --- questions -----------------------------------------------------------------------------


def read_questions(files) -> list[dict]:
    """QA rows of `files` with a `kind`: "answerable", "off-topic" or "not-covered" (unlabelled
    unanswerable rows count as not covered)."""
    from qa.evaluation import read_qa

    rows = []
    for f in files:
        if not Path(f).exists():
            continue
        for r in read_qa(Path(f)):
            kind = r.get("kind") or SEED_KINDS.get(r.get("id"), "")
            if r["evidence"] is not None:
                kind = "answerable"
            elif "off" in kind:
                kind = "off-topic"
            else:
                kind = "not-covered"
            rows.append({**r, "kind": kind})
    return rows


def norm(text: str) -> str:
    return " ".join(re.sub(r"[’‘]", "'", text).lower().split())


# --- systems -------------------------------------------------------------------------------


@dataclass
class Signals:
    """Every score a baseline needs for one question, per passage row."""

    question: str
    passage_cos: np.ndarray
    best_sentence: np.ndarray
    bm25: np.ndarray


def signals(data, questions: list[str], vectors: np.ndarray):
    """Yield `Signals` per question (passage and best-sentence cosines computed in blocks)."""
    from qa.lexical import bm25_scores, tokenize

    spans = data.sentence_spans
    first = np.searchsorted(np.fromiter((s[0] for s in spans), np.int64, len(spans)), np.arange(len(data.passages) + 1))
    has = np.diff(first) > 0
    for start in range(0, len(questions), 64):
        q = vectors[start : start + 64]
        pc = data.passage_vectors @ q.T
        best = np.full(pc.shape, -1.0, dtype=np.float32)
        if len(spans):
            sc = data.sentence_vectors @ q.T
            best[has] = np.maximum.reduceat(sc, first[:-1][has], axis=0)
        for j, question in enumerate(questions[start : start + 64]):
            yield Signals(question, pc[:, j], best[:, j], bm25_scores(data.bm25, tokenize(question)))


def dense_sentence(s: Signals) -> np.ndarray:
    return np.maximum(s.passage_cos, s.best_sentence)


def rrf_scores(s: Signals, k: int = 60) -> np.ndarray:
    from qa.search.fusion import rrf

    dense = dense_sentence(s)
    bm25_order = np.argsort(-s.bm25, kind="stable")
    bm25_order = bm25_order[s.bm25[bm25_order] > 0]
    return rrf([(np.argsort(-dense, kind="stable"), 1.0), (bm25_order, 1.0)], len(dense), k)


BASELINES: dict[str, Callable[[Signals], np.ndarray]] = {
    "BM25": lambda s: s.bm25,
    "dense": lambda s: s.passage_cos,
    "dense best-sentence": dense_sentence,
    "RRF": rrf_scores,
}
DEFAULT = "qa default"
SYSTEMS = [*BASELINES, DEFAULT]


def top_rows(scores: np.ndarray, depth: int) -> list[int]:
    order = np.argsort(-scores, kind="stable")[: depth]
    return [int(i) for i in order if np.isfinite(scores[i])]


# --- metrics -------------------------------------------------------------------------------


def qa_rank(texts: list[str], evidence: str) -> int | None:
    """1-based rank of the first of `texts` holding `evidence`, or None."""
    want = norm(evidence)
    return next((r for r, t in enumerate(texts, 1) if want in norm(t)), None)


def doc_rows(corpus: Corpus, rows: list[int]) -> list[str]:
    """Document ids of passage `rows`, first occurrence kept (a document scores as its best passage)."""
    seen = []
    for i in rows:
        doc = corpus.doc_of_source[corpus.data.passages[i].source]
        if doc not in seen:
            seen.append(doc)
    return seen


def summarise(records: list[dict]) -> dict:
    """hit@1/3/5, MRR@10 (and nDCG@10 when given) per system over the answerable records, and
    the not-found rates of the default."""
    from qa.evaluation import mean

    answerable = [r for r in records if r["kind"] == "answerable"]
    out = {"answerable": len(answerable), "unanswerable": len(records) - len(answerable), "systems": {}}
    for system in records[0]["ranks"] if records else []:
        ranks = [r["ranks"][system] for r in answerable]
        m = {f"hit@{k}": mean(1.0 if x and x <= k else 0.0 for x in ranks) for k in (1, 3, 5)}
        m["mrr"] = mean(1.0 / x if x else 0.0 for x in ranks)
        if answerable and "ndcg" in answerable[0]:
            m["ndcg@10"] = mean(r["ndcg"][system] for r in answerable)
        out["systems"][system] = m
    variants = records[0]["found"] if records else {}
    out["flagged"] = {}
    for name in variants:
        for kind in ("off-topic", "not-covered", "answerable"):
            group = [r for r in records if r["kind"] == kind]
            out["flagged"].setdefault(name, {})[kind] = [sum(not r["found"][name] for r in group), len(group)]
    return out


# --- running -------------------------------------------------------------------------------


def evaluate_split(corpus: Corpus, rows: list[dict], embedder, variants: dict) -> list[dict]:
    """One record per question: the rank of the first right passage (QA) or document (BEIR) under
    every baseline and every `variants` entry (name -> SearchParams, the qa default among them;
    ranked as `Retriever.ask` shows its results, merged passages included), whether each variant
    found an answer, and the not-found features of the first variant."""
    from qa.answer import FoundRule, decide
    from qa.evaluation import ndcg_at_k, reciprocal_rank
    from qa.search import Searcher
    from qa.store.local.vectors import index_kind
    from qa.store.memory import MemoryReader

    try:
        from qa.answer import related_score
        from qa.notfound import common_words, coverage, missing_words, specialist_words
    except ImportError:  # measuring an older qa ("before"): no not-found features
        common_words = None
    data = corpus.data
    reader = MemoryReader(data)
    # scored as `qa index` would index it: above EXACT_MAX passages only candidates are scored (the
    # vector search here is exact, where the shipped HNSW finds 99.9% of the same top 10)
    reader.exact = index_kind(len(data.passages)) == "flat"
    vocabulary = reader.vocabulary()
    model = _model_folder(embedder)
    searchers = {name: Searcher(reader, embedder, params) for name, params in variants.items()}
    common = common_words(_model_folder(embedder)) if common_words else None
    questions = [r["question"] for r in rows]
    vectors = embedder.encode_queries(questions) if questions else np.zeros((0, 1), np.float32)
    records = []
    for row, s in zip(rows, signals(data, questions, vectors)):
        ranked = {name: top_rows(f(s), 4 * DEPTH) for name, f in BASELINES.items()}
        texts, found, features = {}, {}, None
        for name, searcher in searchers.items():
            hits, parts, behind = searcher.search_with_scores(row["question"], DEPTH)
            sentences = searcher.hit_sentences(behind[:5], parts, hits[:5])
            answer = decide(row["question"], hits[:5], sentences, parts, {}, FoundRule(), vocabulary, model)
            found[name] = answer.found
            texts[name] = [h.text for h in hits]
            if corpus.doc_of_source is not None:
                rows = top_rows(parts["fused"], 4 * DEPTH)  # positions among the candidates on an approximate index
                ranked[name] = rows if parts.candidates is None else [int(parts.candidates[i]) for i in rows]
            if features is None and common is not None:
                best = parts.question_dense[parts.allowed]
                features = {"best": round(float(best.max()), 4), "coverage": round(coverage(row["question"], hits[:3]), 4),
                            "related": round(related_score(best, parts.searched or len(best)), 6),
                            "passages": parts.searched or len(best),
                            "missing": missing_words(row["question"], vocabulary, common),
                            "specialist": len(specialist_words(row["question"], vocabulary, common)),
                            "reason": None if answer.found else answer.reason}
                features.update(word_features(row["question"], features["missing"], searcher, reader, common))
        if corpus.doc_of_source is not None:  # BEIR: rank documents
            gains = row["gains"]
            docs = {name: doc_rows(corpus, r)[:DEPTH] for name, r in ranked.items()}
            rel = {d for d, g in gains.items() if g > 0}
            ranks = {name: (round(1 / rr) if (rr := reciprocal_rank(d, rel, DEPTH)) else None) for name, d in docs.items()}
            ndcg = {name: ndcg_at_k(d, gains, DEPTH) for name, d in docs.items()}
            records.append({"id": row["id"], "kind": "answerable", "ranks": ranks, "ndcg": ndcg, "found": found,
                            "features": features})
            continue
        ranks = {}
        if row["evidence"]:
            ranks = {name: qa_rank([data.passages[i].text for i in r[:DEPTH]], row["evidence"]) for name, r in ranked.items()}
            ranks.update({name: qa_rank(t[:DEPTH], row["evidence"]) for name, t in texts.items()})
        records.append({"id": row.get("id"), "question": row["question"], "kind": row["kind"],
                        "ranks": ranks or {name: None for name in [*ranked, *texts]}, "found": found,
                        "features": features})
    return records


def word_features(question: str, missing: list[str], searcher, reader, common) -> dict:
    """Per-word not-found features, for calibrating rules offline: the question's content words
    with the IDF of their stems in this corpus (a never-mentioned word counts as seen once), the
    specialist words, and, when some word is never mentioned, the best dense score and top-3
    coverage of the question without those words."""
    from qa.lexical import tokenize
    from qa.notfound import coverage, question_words, specialist_words, statement

    words = question_words(question)
    idf = {}
    for w in words:
        stems = tokenize(w, content_only=True)
        idf[w] = round(sum(reader.bm25_idf(stems).values()), 4) if stems else 0.0
    out = {"question": question, "statement": statement(question), "idf": idf, "common": [w for w in words if w.lower() in common],
           "specialist_words": specialist_words(question, reader.vocabulary(), common)}
    if missing:
        gone = {w.lower() for w in missing}
        rest = " ".join(w for w in re.findall(r"\S+", question) if re.sub(r"\W", "", w).lower() not in gone)
        hits, parts, _ = searcher.search_with_scores(rest, DEPTH)
        dense = parts.question_dense[parts.allowed]
        out.update(rest=rest, best_rest=round(float(dense.max()), 4) if len(dense) else 0.0,
                   coverage_rest=round(coverage(rest, hits[:3]), 4))
    return out


def _model_folder(embedder) -> str | None:
    from qa.retriever import model_folder

    return model_folder(getattr(embedder, "name", None))


def beir_rows(beir) -> list[dict]:
    return [{"id": q, "question": beir.queries[q], "evidence": None, "gains": g}
            for q, g in beir.qrels.items() if any(v > 0 for v in g.values())]


def beir_split(c: Collection, corpus: Corpus, split: str, limit: int = 1000) -> list[dict]:
    """Rows of a BEIR split: `c.splits[split]` names a qrels file, then "-name" for qrels whose
    queries are left out; at most `limit` queries (the first, in qrels order)."""
    from qa.evaluation import load_beir

    names = c.splits[split]
    qrels = load_beir(c.folder, names[0]).qrels
    for name in names[1:]:
        for q in load_beir(c.folder, name.lstrip("-")).qrels:
            qrels.pop(q, None)
    beir = dataclasses.replace(corpus.beir, qrels=dict(list(qrels.items())[:limit]))
    return beir_rows(beir)


def parse_params(items: list[str]):
    """SearchParams from `key=value` strings, each value converted to the field's type."""
    from qa.search import SearchParams

    fields = {f.name: f for f in dataclasses.fields(SearchParams)}
    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--default {item!r}: expected key=value with key one of {', '.join(fields)}")
        kind = type(getattr(SearchParams(), key))
        try:
            if kind is bool:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                kwargs[key] = value.lower() in ("true", "1")
            else:
                kwargs[key] = value if kind is str else kind(float(value)) if kind is int else kind(value)
        except ValueError:
            raise SystemExit(f"--default {item!r}: {key} takes a {kind.__name__}") from None
    return SearchParams(**kwargs)


def run(chosen: list[Collection], embedder, variants, splits=None, log=print, cache: Path = CACHE,
        inputs=None) -> dict:
    """Evaluate every baseline and every `variants` entry (name -> SearchParams; a bare
    SearchParams is the qa default) on every split of the `chosen` collections (embedded and
    indexed as `inputs` says, default as `qa index` does)."""
    if not isinstance(variants, dict):
        variants = {DEFAULT: variants}
    results = {}
    for c in chosen:
        if not c.available():
            log(f"{c.name}: not installed, skipped")
            continue
        t = time.time()
        corpus = load_collection(c, embedder, cache, inputs)
        log(f"{c.name}: {len(corpus.data.passages)} passages, {len(corpus.data.sentence_spans)} sentences "
            f"({time.time() - t:.0f} s)")
        for split, files in c.splits.items():
            if splits and split not in splits:
                continue
            rows = beir_split(c, corpus, split) if c.kind == "beir" else read_questions(files)
            if not rows:
                continue
            records = evaluate_split(corpus, rows, embedder, variants)
            results[f"{c.name}/{split}"] = {"collection": c.name, "split": split, "passages": len(corpus.data.passages),
                                            **summarise(records), "records": records}
            log(format_line(f"{c.name}/{split}", results[f"{c.name}/{split}"]))
    return results


def loco(results: dict, variants: list[str], metric: str = "hit@1") -> str:
    """Leave-one-corpus-out: for each corpus with a dev split, the variant with the best mean
    `metric` (then MRR) over the OTHER corpora's dev splits, and what it scores on the left-out
    corpus (dev, and test for reporting only). Markdown."""
    devs = {r["collection"]: r for r in results.values() if r["split"] == "dev"}
    tests = {r["collection"]: r for r in results.values() if r["split"] == "test"}

    def score(v, names):
        return (np.mean([devs[n]["systems"][v][metric] for n in names]),
                np.mean([devs[n]["systems"][v]["mrr"] for n in names]))

    lines = ["| left out | chosen on the others' dev | its dev hit@1 / hit@5 there | its test hit@1 / hit@5 there | best variant on its own dev |",
             "|---|---|---|---|---|"]
    for held in devs:
        others = [n for n in devs if n != held]
        chosen = max(variants, key=lambda v: score(v, others))
        own = max(variants, key=lambda v: score(v, [held]))
        d = devs[held]["systems"][chosen]
        t = tests.get(held, {}).get("systems", {}).get(chosen)
        lines.append(f"| {held} | {chosen} | {d['hit@1']:.3f} / {d['hit@5']:.3f} | "
                     + (f"{t['hit@1']:.3f} / {t['hit@5']:.3f}" if t else "—") + f" | {own} |")
    overall = max(variants, key=lambda v: score(v, list(devs)))
    lines.append(f"\nChosen on every dev split: {overall}.")
    return "\n".join(lines)


# --- output --------------------------------------------------------------------------------


def cell(m: dict) -> str:
    return f"{m['hit@1']:.3f} / {m['hit@5']:.3f} / {m['mrr']:.3f}"


def rate(pair) -> str:
    flagged, total = pair
    return f"{flagged}/{total} ({100 * flagged / total:.0f}%)" if total else "—"


def format_line(name: str, r: dict) -> str:
    return f"{name}: " + "; ".join(f"{s} {cell(m)}" for s, m in r["systems"].items())


def table(results: dict, default: str = DEFAULT) -> str:
    """The Markdown table: per corpus and split, hit@1 / hit@5 / MRR@10 of every system, and the
    not-found rates of `default`."""
    systems = list(next(iter(results.values()))["systems"]) if results else SYSTEMS
    head = ["corpus / split", "passages", "questions (ans + unans)", *systems,
            "off-topic flagged", "not covered flagged", "answerable flagged"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [cell(r["systems"][s]) for s in systems]
        flagged = r["flagged"].get(default, {})
        lines.append("| " + " | ".join([
            name, f"{r['passages']:,}", f"{r['answerable']} + {r['unanswerable']}", *cells,
            *(rate(flagged.get(k, [0, 0])) for k in ("off-topic", "not-covered", "answerable")),
        ]) + " |")
    return "\n".join(lines)


def write_markdown(path: Path, results: dict, params, command: str) -> None:
    """Replace the section between the markers of `path` (appended when missing) with the table."""
    from qa.search import SearchParams

    changed = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)
               if getattr(params, f.name) != getattr(SearchParams(), f.name)}
    beir = [n for n, r in results.items() if "ndcg@10" in next(iter(r["systems"].values()), {})]
    ndcg = "; ".join(f"{n} " + ", ".join(f"{s} {r['systems'][s]['ndcg@10']:.4f}" for s in SYSTEMS)
                     for n, r in results.items() if n in beir)
    body = "\n".join([
        BEGIN,
        f"`{command}` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC"
        + (f", default overridden by {changed}" if changed else "") + ".",
        "Cells: hit@1 / hit@5 / MRR@10 over the answerable questions (BEIR: over documents). Flagged: "
        "questions the default answered \"not found\".",
        "",
        table(results),
        "",
        f"nDCG@10: {ndcg}" if ndcg else "",
        END,
    ])
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + body + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## `make quality`: every corpus, every baseline, the default\n\n" + body + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n\n")[0])
    names = [c.name for c in collections()]
    ap.add_argument("--corpora", default=",".join(names), help=f"comma-separated, of: {', '.join(names)}")
    ap.add_argument("--splits", default="", help="comma-separated (dev, test); default: all")
    ap.add_argument("--default", nargs="*", default=[], metavar="KEY=VALUE",
                    help="SearchParams of the 'qa default' column (e.g. rerank_depth=0)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                    help="another configuration as its own column (experiments; implies --no-write)")
    ap.add_argument("--loco", action="store_true",
                    help="with --variant: leave-one-corpus-out choice among the variants on the dev splits")
    ap.add_argument("--no-write", action="store_true", help="print only: leave bench/quality.md and results alone")
    ap.add_argument("--cache", default=str(CACHE), help="embedding cache folder (default bench/cache)")
    ap.add_argument("--model", default="", metavar="NAME_OR_FOLDER",
                    help="embedding model (default: the bundled one; e.g. an adapted model of bench/quality/adapt.py)")
    ap.add_argument("--records", default="", metavar="PATH",
                    help="also save every per-question record here (default: only <cache>/last-run.json, which the next run replaces)")
    args = ap.parse_args(argv)
    chosen_names = [n.strip() for n in args.corpora.split(",") if n.strip()]
    unknown = sorted(set(chosen_names) - set(names))
    if unknown:
        print(f"unknown corpus {', '.join(unknown)}: choose among {', '.join(names)}", file=sys.stderr)
        return 2
    params = parse_params(args.default)
    variants = {DEFAULT: params}
    for v in args.variant:
        name, _, items = v.partition(":")
        variants[name] = parse_params([i for i in items.split(",") if i])
    from qa.embedding import get_embedder
    from qa.evaluation import CachedEmbedder

    inner = get_embedder(args.model) if args.model else get_embedder()
    inner.use_cache_dir(Path(args.cache) / "onnx")  # the ONNX export `qa index` encodes with (~2.6x torch)
    embedder = CachedEmbedder(inner, Path(args.cache))
    embedder._con.execute("PRAGMA busy_timeout = 120000")  # other runs may be writing the cache
    chosen = [c for c in collections() if c.name in chosen_names]
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    results = run(chosen, embedder, variants, splits, cache=Path(args.cache))
    print()
    print(table(results))
    if args.loco:
        print()
        print(loco(results, list(variants)))
    (Path(args.cache) / "last-run.json").write_text(json.dumps(results) + "\n", encoding="utf-8")  # every record
    if args.records:
        Path(args.records).write_text(json.dumps(results) + "\n", encoding="utf-8")
    if args.variant:
        out = CACHE / "experiments.jsonl"
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps({"argv": sys.argv[1:], "results": {k: {x: y for x, y in r.items() if x != "records"}
                                                                  for k, r in results.items()}}) + "\n")
    if not args.no_write and not args.variant and results:
        out = ROOT / "bench" / "results" / "quality.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        given = sys.argv[1:] if argv is None else list(argv)
        command = "make quality" if not given else "python -m bench.quality " + " ".join(given)
        write_markdown(ROOT / "bench" / "quality.md", results, params, command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

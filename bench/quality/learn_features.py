"""Score features of the first-stage candidates, for fitting a small learned re-scoring.

(The first fit, on SciFact and SQuAD. Its refit across every `make quality` collection's dev split, with
leave-one-corpus-out validation, is bench/quality/refit.py.)

    PYTHONPATH=. python -m bench.quality.learn_features dev extra scifact-train scifact-test squad-train squad-test \
        squad-inart-train squad-inart-test

For every query: the top `DEPTH` passages of the first stage (`SearchParams(rerank_depth=0)`), each with
the features of `FEATURES` and a label (BEIR: the passage's document is relevant; QA: the passage
holds the evidence). Written to bench/cache/features-<name>.npz (never committed). SQuAD "train"
= 2,000 questions outside qrels/test_1k.tsv and outside bench/cache/squad_unanswerable.jsonl
(random.Random(1)); they are SQuAD dev questions, not the test_1k ones we report. "squad-inart-*":
the same questions (train) or test_1k (report only) asked of their own article's passages alone, a
single-topic corpus like corpus/ (48 articles, ~65 passages each).

Features (s1 = the passage's best sentence by cosine): pcos passage cosine; s1, s2 best and second
sentence cosines; dense = max(pcos, s1); bm25n BM25 / the query's best; cov, cov_s1 share of the
question's words in the passage / s1; idfcov, idfcov_s1 the same IDF-weighted; title_cov share in the
section title; loglen log(1 + words); pair best cosine of two adjacent sentences (mean vector);
nsent sentences; bm25raw; s1_minus_mean s1 - mean sentence cosine; when_/num_/who_ p|s: a "when" /
"how many" / "who" question and the passage|s1 holds a year / a number / a capitalised name not in
the question; tcos cosine of the question with the section title.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
from pathlib import Path

import numpy as np

from bench.common import CACHE, ROOT, SHARED
from qa.chunking import chunk_document, split_sentences
from qa.config import Settings
from qa.documents import load_corpus
from qa.embedding import embedding_text, get_embedder
from qa.evaluation import CachedEmbedder, load_beir, qa_retriever, read_qa, write_beir_corpus
from qa.evaluation.runners import _norm
from qa.lexical import build_bm25, tokenize
from qa.retriever import Retriever
from qa.schema import Manifest
from qa.search import SearchParams
from qa.store.base import IndexData
from qa.store.memory import MemoryReader

emb = None  # the cached embedder, set by main()
DEPTH = 30
FEATURES = ["pcos", "s1", "s2", "dense", "bm25n", "cov", "cov_s1", "idfcov", "idfcov_s1", "title_cov",
            "loglen", "pair", "nsent", "bm25raw", "s1_minus_mean",
            "when_p", "when_s", "num_p", "num_s", "who_p", "who_s", "tcos"]

WHEN_Q = re.compile(r"\b(when|what year|which year|what date|year)\b", re.I)
NUM_Q = re.compile(r"\b(how (many|much|long|old|far|large|big)|what (percentage|number|share))\b", re.I)
WHO_Q = re.compile(r"\b(who|whom|whose)\b", re.I)
YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)s?\b|\b(January|February|March|April|May|June|July|August|September|October|November|December|century)\b")
NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|hundreds?|thousands?|millions?|billions?|dozens?|half|percent)\b", re.I)
NAME = re.compile(r"\b([A-Z][a-z]+(?:[ -](?:al-|de |van |von )?[A-Z][a-z]+)+)\b")


def names_not_in(text, question):
    q = question.lower()
    return any(m.lower() not in q for m in NAME.findall(text))



def beir_index(folder, split):
    data = load_beir(SHARED / "benchmarks" / folder, split)
    corpus_dir = CACHE / f"inmem-{'scifact' if folder == 'scifact' else 'squad'}"
    if not corpus_dir.exists():
        write_beir_corpus(data.corpus, corpus_dir)
    sources = {f"{n:07d}.md": doc_id for n, doc_id in enumerate(data.corpus)}
    passages = [p for d in load_corpus(corpus_dir).documents for p in chunk_document(d)]
    pv = emb.encode_documents([embedding_text(p) for p in passages])
    spans, texts = [], []
    for row, p in enumerate(passages):
        for a, b in split_sentences(p.text):
            spans.append((row, p.start_char + a, p.start_char + b))
            texts.append(p.text[a:b])
    sv = emb.encode_documents(texts)
    idx = IndexData(manifest=Manifest(passages=len(passages)), passages=passages, passage_vectors=pv,
                    sentence_spans=spans, sentence_vectors=sv, bm25=build_bm25(passages))
    return data, idx, sources


def to_index_data(reader) -> IndexData:
    """An exact reader's whole index as an IndexData (the featurizer reads every part of it)."""
    passages = reader.passages(range(len(reader)))
    spans = reader.sentence_spans(range(reader.manifest.sentences))
    return IndexData(manifest=reader.manifest, passages=passages, passage_vectors=np.asarray(reader.passage_vectors(None)),
                     sentence_spans=spans, sentence_vectors=np.asarray(reader.sentence_vectors(None)),
                     bm25=build_bm25(passages))


class Featurizer:
    def __init__(self, idx: IndexData):
        self.data = idx
        self.passages = idx.passages
        self.vectors = np.asarray(idx.passage_vectors, dtype=np.float32)
        owner = np.fromiter((sp[0] for sp in idx.sentence_spans), dtype=np.int64, count=len(idx.sentence_spans))
        self.first_sentence = np.searchsorted(owner, np.arange(len(idx.passages) + 1))
        bm = self.data.bm25
        self.vocab = bm.vocab_dict
        df = np.diff(np.asarray(bm.scores["indptr"]))
        n = int(bm.scores["num_docs"])
        self.idf = {t: math.log(1 + (n - df[i] + 0.5) / (df[i] + 0.5)) for t, i in self.vocab.items() if i < len(df)}
        self.tok = {}
        self.sent_tok = {}
        titles = sorted({p.section for p in self.passages if p.section})
        tv = emb.encode_documents(titles) if titles else np.zeros((0, 384), np.float32)
        self.title_vec = dict(zip(titles, tv))

    def ptok(self, i):
        if i not in self.tok:
            p = self.passages[i]
            self.tok[i] = (set(tokenize(p.text)), set(tokenize(p.section or "")), len(p.text.split()))
        return self.tok[i]

    def stok(self, j):
        if j not in self.sent_tok:
            row, a, b = self.data.sentence_spans[j]
            p = self.passages[row]
            self.sent_tok[j] = set(tokenize(p.text[a - p.start_char: b - p.start_char]))
        return self.sent_tok[j]

    def features(self, question, query, parts, rows):
        words = set(tokenize(question))
        widf = {w: self.idf.get(w, max(self.idf.values()) if self.idf else 1.0) for w in words}
        total_idf = sum(widf.values()) or 1.0
        bm = parts.bm25
        top = float(bm.max()) if len(bm) else 0.0
        sent = parts.sentence
        is_when, is_num, is_who = (bool(r.search(question)) for r in (WHEN_Q, NUM_Q, WHO_Q))
        out = []
        for i in rows:
            ids = list(range(self.first_sentence[i], self.first_sentence[i + 1]))
            pcos = float(self.vectors[i] @ query)
            cos = np.array([sent[j] for j in ids], dtype=np.float32) if ids else np.array([pcos], np.float32)
            order = np.argsort(-cos)
            s1 = float(cos[order[0]])
            s2 = float(cos[order[1]]) if len(cos) > 1 else s1
            if len(ids) > 1:
                v = np.asarray(self.data.sentence_vectors[ids], dtype=np.float32)
                pair = v[:-1] + v[1:]
                pair /= np.linalg.norm(pair, axis=1, keepdims=True)
                pairc = float((pair @ query).max())
            else:
                pairc = s1
            text_t, title_t, nwords = self.ptok(i)
            all_t = text_t | title_t
            best_t = self.stok(ids[order[0]]) if ids else text_t
            cov = len(words & all_t) / max(1, len(words))
            cov_s1 = len(words & best_t) / max(1, len(words))
            idfcov = sum(widf[w] for w in words & all_t) / total_idf
            idfcov_s1 = sum(widf[w] for w in words & best_t) / total_idf
            title_cov = len(words & title_t) / max(1, len(words))
            ptext = self.passages[i].text
            if ids:
                _, a, b = self.data.sentence_spans[ids[order[0]]]
                stext = ptext[a - self.passages[i].start_char: b - self.passages[i].start_char]
            else:
                stext = ptext
            types = [is_when and bool(YEAR.search(ptext)), is_when and bool(YEAR.search(stext)),
                     is_num and bool(NUMBER.search(ptext)), is_num and bool(NUMBER.search(stext)),
                     is_who and names_not_in(ptext, question), is_who and names_not_in(stext, question)]
            out.append([pcos, s1, s2, max(pcos, s1), float(bm[i]) / top if top > 0 else 0.0, cov, cov_s1, idfcov,
                        idfcov_s1, title_cov, math.log(1 + nwords), pairc, len(ids), float(bm[i]),
                        s1 - float(cos.mean())] + [float(t) for t in types]
                       + [float(self.title_vec[self.passages[i].section] @ query) if self.passages[i].section else 0.0])
        return np.asarray(out, dtype=np.float32)


def sub_index(idx, rows):
    """The IndexData of passages `rows` only (one SQuAD article: a single-topic corpus like corpus/)."""
    rows = list(rows)
    new = {r: k for k, r in enumerate(rows)}
    passages = [idx.passages[r] for r in rows]
    keep = [j for j, sp in enumerate(idx.sentence_spans) if sp[0] in new]
    spans = [(new[idx.sentence_spans[j][0]], *idx.sentence_spans[j][1:]) for j in keep]
    pv = idx.passage_vectors[rows]
    return IndexData(manifest=Manifest(passages=len(passages)), passages=passages, passage_vectors=pv,
                     sentence_spans=spans, sentence_vectors=idx.sentence_vectors[keep], bm25=build_bm25(passages))


def run_inarticle(name):
    """SQuAD questions asked of their own article's passages only."""
    folder = "squad-v1.1-dev-passages"
    data, idx, sources = beir_index(folder, "test")
    test = set(load_beir(SHARED / "benchmarks" / folder, "test_1k").qrels)
    qids = list(data.qrels)
    if name == "squad-inart-train":
        unans = {json.loads(l)["question"] for l in open(CACHE / "squad_unanswerable.jsonl")}
        qids = [q for q in qids if q not in test and data.queries[q] not in unans]
        random.Random(1).shuffle(qids)
        qids = sorted(qids[:2000])
    else:
        qids = sorted(test)
    art_of = lambda doc: doc.split("_")[0]
    by_art = {}
    for q in qids:
        by_art.setdefault(art_of(next(iter(data.qrels[q]))), []).append(q)
    X, Y, G, FUSED, DOCS = [], [], [], [], []
    for art, aq in sorted(by_art.items()):
        rows = [i for i, p in enumerate(idx.passages) if art_of(sources[p.source]) == art]
        sub = sub_index(idx, rows)
        s = Retriever(MemoryReader(sub), emb, SearchParams(rerank_depth=0)).searcher
        feat = Featurizer(sub)
        vectors = emb.encode_queries([data.queries[q] for q in aq])
        for qid, vec in zip(aq, vectors):
            q = data.queries[qid]
            parts = s.score(q, k=100, query_vector=vec)
            fused = parts.fused
            order = np.argsort(-fused, kind="stable")
            cand = order[:DEPTH]
            x = feat.features(q, vec, parts, cand)
            docs_all = [sources[sub.passages[i].source] for i in order[:400]]
            docs = docs_all[:DEPTH]
            lab = [1.0 if data.qrels[qid].get(d, 0) > 0 else 0.0 for d in docs]
            pad = DEPTH - len(cand)  # an article may have fewer passages than DEPTH
            X.append(np.pad(x, ((0, pad), (0, 0)), constant_values=0.0))
            Y.append(lab + [0.0] * pad)
            F = np.full(DEPTH, -1e9)
            F[: len(cand)] = fused[cand]
            FUSED.append(F)
            G.append(qid)
            DOCS.append(docs + ["-"] * pad + ["|"] + docs_all[DEPTH:])
    np.savez_compressed(CACHE / f"features-{name}.npz", X=np.stack(X), Y=np.asarray(Y, np.float32), G=np.asarray(G),
                        F=np.stack(FUSED), names=np.asarray(FEATURES))
    (CACHE / f"features-{name}-docs.json").write_text(json.dumps(DOCS))
    print(name, len(qids), "queries", len(by_art), "articles", flush=True)


def run(name):
    searcher_params = SearchParams(rerank_depth=0)  # the first stage only: features are its candidates
    if name.startswith("squad-inart"):
        return run_inarticle(name)
    if name in ("dev", "extra"):
        f = {"dev": SHARED / "eval/seed_dev.jsonl", "extra": ROOT / "bench" / "dev_extra.jsonl"}[name]
        rows = [r for r in read_qa(f) if r["evidence"] is not None]
        base = qa_retriever(Settings(corpus_dir=ROOT / "corpus"), emb, CACHE)
        idx = to_index_data(base.reader)
        r = Retriever(MemoryReader(idx), emb, searcher_params)
        qs = [(x["id"], x["question"]) for x in rows]
        evid = {x["id"]: _norm(x["evidence"]) for x in rows}
        sources = None
    else:
        folder, split = {"scifact-train": ("scifact", "train"), "scifact-test": ("scifact", "test"),
                         "squad-train": ("squad-v1.1-dev-passages", "test"),
                         "squad-test": ("squad-v1.1-dev-passages", "test_1k")}[name]
        data, idx, sources = beir_index(folder, split)
        r = Retriever(MemoryReader(idx), emb, searcher_params)
        qids = list(data.qrels)
        if name == "squad-train":
            test = set(load_beir(SHARED / "benchmarks" / folder, "test_1k").qrels)
            unans = {json.loads(l)["question"] for l in open(CACHE / "squad_unanswerable.jsonl")}
            qids = [q for q in qids if q not in test and data.queries[q] not in unans]
            random.Random(1).shuffle(qids)
            qids = sorted(qids[:2000])
        qs = [(q, data.queries[q]) for q in qids]
    s = r.searcher
    feat = Featurizer(idx)
    vectors = emb.encode_queries([q for _, q in qs])
    X, Y, G, FUSED, DOCS = [], [], [], [], []
    allruns = {}
    for (qid, q), vec in zip(qs, vectors):
        parts = s.score(q, k=100, query_vector=vec)
        fused = parts.fused
        order = np.argsort(-fused, kind="stable")
        cand = order[:DEPTH]
        X.append(feat.features(q, vec, parts, cand))
        if sources is None:
            lab = [1.0 if evid[qid] in _norm(idx.passages[i].text) else 0.0 for i in cand]
            docs = [str(i) for i in cand]
            rest = []
        else:
            docs_all = [sources[idx.passages[i].source] for i in order[:400]]
            docs = docs_all[:DEPTH]
            rest = docs_all[DEPTH:]
            lab = [1.0 if data.qrels[qid].get(d, 0) > 0 else 0.0 for d in docs]
        Y.append(lab)
        G.append(qid)
        FUSED.append(fused[cand])
        DOCS.append(docs + ["|"] + rest)
    np.savez_compressed(CACHE / f"features-{name}.npz", X=np.stack(X), Y=np.asarray(Y, np.float32), G=np.asarray(G),
                        F=np.stack(FUSED), names=np.asarray(FEATURES))
    (CACHE / f"features-{name}-docs.json").write_text(json.dumps(DOCS))
    print(name, len(qs), "queries", flush=True)


def main(argv=None) -> int:
    global emb
    names = ["dev", "extra", "scifact-train", "scifact-test", "squad-train", "squad-test", "squad-inart-train",
             "squad-inart-test"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", choices=names, help="feature sets to compute")
    args = parser.parse_args(argv)
    emb = CachedEmbedder(get_embedder(), CACHE)
    emb._con.execute("PRAGMA busy_timeout = 60000")
    for name in args.sets:
        run(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""SEARCH: dense + BM25 retrieval over a loaded index, fused; the "not found" decision.

Handed a loaded `IndexData` and an `Embedder`; computes no index and writes nothing.

How a passage is scored (measured on the dev questions and SciFact train, see bench/quality.md):
- dense: the larger of the passage's cosine and `sentence_weight` × its best sentence's cosine,
  so that one sentence that answers is not drowned by the rest of the passage;
- bm25: BM25 (Lucene variant, Snowball stemming, English stop words) over section title + text;
- fused: reciprocal-rank fusion of the two rankings (weights and constant in `SearchParams`).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .schema import Hit, Passage

_TOKEN = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """BM25 tokens: lower-cased words, stop words and 1-letter words dropped, Snowball-stemmed.
    The one tokenizer for indexing and querying."""
    stop = _stopwords()
    words = [w for w in _TOKEN.findall(text.lower()) if w not in stop and (len(w) > 1 or w.isdigit())]
    return _stemmer().stemWords(words)


def bm25_text(passage: Passage) -> str:
    """What BM25 indexes for a passage: its section title, then its text."""
    return f"{passage.section}\n{passage.text}" if passage.section else passage.text


def embedding_text(passage: Passage) -> str:
    """What the dense model embeds for a passage: its section title, then its text.
    (The citation is still the bare span.)"""
    return f"{passage.section}: {passage.text}" if passage.section else passage.text


def build_bm25(passages: Sequence[Passage]):
    """A bm25s index over `bm25_text` of each passage (doc i = passage i)."""
    import bm25s

    bm25 = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    bm25.index([tokenize(bm25_text(p)) or [""] for p in passages], show_progress=False)
    return bm25


def bm25_scores(bm25, question: str) -> np.ndarray:
    """BM25 score of every passage for `question` (zeros when no query word is indexed)."""
    tokens = [t for t in tokenize(question) if t in bm25.vocab_dict]
    if not tokens:
        return np.zeros(int(bm25.scores["num_docs"]), dtype=np.float32)
    return np.asarray(bm25.get_scores(tokens), dtype=np.float32)


@dataclass(frozen=True)
class SearchParams:
    """The knobs of retrieval. Defaults are the configuration chosen in bench/quality.md."""

    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    sentence_weight: float = 1.0
    candidates: int = 100
    found_threshold: float = 0.35  # best sentence/passage cosine below this: "not found"


def rrf(rankings: Sequence[tuple[np.ndarray, float]], n: int, k: int = 60) -> np.ndarray:
    """Reciprocal-rank fusion. `rankings` are (ids best first, weight); returns a score per id
    (0 for ids in no ranking). Pure."""
    fused = np.zeros(n, dtype=np.float64)
    for ids, weight in rankings:
        ids = np.asarray(ids, dtype=np.int64)
        fused[ids] += weight / (k + np.arange(1, len(ids) + 1))
    return fused


def ranks_of(order: np.ndarray, n: int) -> np.ndarray:
    """1-based rank of each id in `order`; 0 where an id is absent."""
    ranks = np.zeros(n, dtype=np.int64)
    ranks[np.asarray(order, dtype=np.int64)] = np.arange(1, len(order) + 1)
    return ranks


def source_mask(passages: Sequence[Passage], patterns: Sequence[str] | None) -> np.ndarray | None:
    """Boolean mask of passages whose source matches any of `patterns`: a pattern that names a
    source exactly selects that file only (picking `a.md` must not bring `data.md`); otherwise
    a glob (`*.md`, `notes/*`), else a part of the path."""
    if not patterns:
        return None
    pats = [p.strip() for p in patterns if p and p.strip()]
    sources = {p.source for p in passages}

    def match(source: str, pattern: str) -> bool:
        if pattern in sources:
            return source == pattern
        if any(c in pattern for c in "*?["):
            return fnmatch.fnmatch(source, pattern)
        return pattern in source

    allowed = {s for s in sources if any(match(s, p) for p in pats)}
    return np.fromiter((p.source in allowed for p in passages), dtype=bool, count=len(passages))


class SentenceScores:
    """Sentence cosines computed only where asked (approximate indexes): indexable like the
    full array of the exact path, `scores[j]` is the cosine of the query with sentence j.

    Args:
        vectors: all sentence vectors (memory-mapped); query: the query vector;
        ids, cosines: sentence ids already scored (ascending) and their cosines.
    """

    def __init__(self, vectors, query: np.ndarray, ids: np.ndarray, cosines: np.ndarray):
        self._vectors = vectors
        self._query = query
        self._ids = ids
        self._cos = cosines

    def __len__(self) -> int:
        return len(self._vectors)

    def __getitem__(self, j) -> float:
        j = int(j)
        at = int(np.searchsorted(self._ids, j))
        if at < len(self._ids) and self._ids[at] == j:
            return float(self._cos[at])
        return float(np.asarray(self._vectors[j], dtype=np.float32) @ self._query)


class Searcher:
    """Hybrid search over one loaded index. Build once; `search` is cheap and thread-safe.

    On an exact (flat) index every passage and sentence is scored. On an approximate index
    (`IndexData.vector_kind` "hnsw" or "ivf-sq8", large corpora) the candidates are the
    `params.candidates` best passages of the vector index and of BM25 (at least 2·k), their
    sentences are scored from the memory-mapped sentence vectors, and fusion ranks them alone.
    """

    def __init__(self, data, embedder, params: SearchParams = SearchParams()):
        self.data = data
        self.embedder = embedder
        self.params = params
        self.passages: list[Passage] = data.passages
        self.exact = getattr(data, "vector_kind", "flat") == "flat"
        spans = data.sentence_spans
        # Sentence rows are grouped by passage, in passage order (see api.build_index).
        self.sentence_passage = np.fromiter((s[0] for s in spans), dtype=np.int64, count=len(spans))
        self._row = None
        self._first_sentence = np.searchsorted(self.sentence_passage, np.arange(len(self.passages) + 1))
        self._vectors = None
        if self.exact and data.passage_index is not None:
            from .store import flat_vectors

            self._vectors = np.array(flat_vectors(data.passage_index))  # small: a plain, fast copy

    def sentence_scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of the query with every stored sentence."""
        if not len(self.sentence_passage):
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self.data.sentence_vectors @ query, dtype=np.float32)

    def passage_scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of the query with every passage vector (exact index)."""
        if self._vectors is not None:
            return np.asarray(self._vectors @ query, dtype=np.float32)
        index = self.data.passage_index
        n = index.ntotal
        scores, ids = index.search(query.reshape(1, -1), n)
        out = np.full(n, -1.0, dtype=np.float32)
        valid = ids[0] >= 0
        out[ids[0][valid]] = scores[0][valid]
        return out

    def best_sentences(self, query: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, SentenceScores]:
        """Best sentence cosine of each passage in `rows` (ascending; -1 where it has none),
        reading only their sentence vectors; and those sentences' cosines."""
        starts = self._first_sentence[rows]
        counts = self._first_sentence[rows + 1] - starts
        best = np.full(len(rows), -1.0, dtype=np.float32)
        offsets = np.cumsum(counts) - counts  # where each passage's sentences start in `ids`
        total = int(counts.sum())
        ids = np.repeat(starts - offsets, counts) + np.arange(total)
        cos = np.asarray(self.data.sentence_vectors[ids], dtype=np.float32) @ query if total else np.zeros(0, np.float32)
        has = counts > 0
        if total:
            best[has] = np.maximum.reduceat(cos, offsets[has])
        return best, SentenceScores(self.data.sentence_vectors, query, ids, cos)

    def score(self, question: str, sources: Sequence[str] | None = None, k: int = 0) -> dict:
        """Every score part for every passage (arrays indexed by passage row)."""
        if not self.exact:
            return self._score_candidates(question, sources, k)
        p = self.params
        n = len(self.passages)
        query = self.embedder.encode_queries([question])[0]
        passage_cos = self.passage_scores(query)
        sent = self.sentence_scores(query)
        best_sentence = np.full(n, -1.0, dtype=np.float32)
        if len(sent):  # sentences are grouped by passage: one max per passage's run of rows
            has = np.diff(self._first_sentence) > 0
            best_sentence[has] = np.maximum.reduceat(sent, self._first_sentence[:-1][has])
        dense = np.maximum(passage_cos, p.sentence_weight * best_sentence)
        bm25 = bm25_scores(self.data.bm25, question)
        mask = source_mask(self.passages, sources)
        allowed = np.ones(n, dtype=bool) if mask is None else mask
        dense_order = np.argsort(-dense, kind="stable")
        dense_order = dense_order[allowed[dense_order]].astype(np.int64)
        bm25_order = np.argsort(-bm25, kind="stable")
        bm25_order = bm25_order[allowed[bm25_order] & (bm25[bm25_order] > 0)].astype(np.int64)
        fused = rrf([(dense_order, p.dense_weight), (bm25_order, p.bm25_weight)], n, p.rrf_k)
        fused[~allowed] = -np.inf
        return {
            "query": query,
            "dense": dense,
            "bm25": bm25,
            "sentence": sent,
            "fused": fused,
            "dense_rank": ranks_of(dense_order, n),
            "bm25_rank": ranks_of(bm25_order, n),
            "allowed": allowed,
        }

    def _score_candidates(self, question: str, sources, k: int) -> dict:
        """`score` on an approximate index: only candidates get scores (others: dense -1,
        fused -inf), ranks are ranks among the candidates."""
        from .store import search_vectors

        p = self.params
        n = len(self.passages)
        c = max(p.candidates, 2 * k)
        query = self.embedder.encode_queries([question])[0]
        mask = source_mask(self.passages, sources)
        ann_ids, ann_cos = search_vectors(self.data.passage_index, query, c, mask)
        bm25 = bm25_scores(self.data.bm25, question)
        ok = bm25 > 0 if mask is None else (bm25 > 0) & mask
        pool = np.flatnonzero(ok)
        if len(pool) > c:
            pool = pool[np.argpartition(-bm25[pool], c - 1)[:c]]
        bm25_order = pool[np.lexsort((pool, -bm25[pool]))].astype(np.int64)
        rows = np.union1d(ann_ids, bm25_order).astype(np.int64)
        passage_cos = np.full(len(rows), -1.0, dtype=np.float32)
        passage_cos[np.searchsorted(rows, ann_ids)] = ann_cos
        missing = np.setdiff1d(rows, ann_ids)  # BM25 candidates the vector index did not return
        if len(missing):
            vectors = self.data.passage_index.reconstruct_batch(missing)
            passage_cos[np.searchsorted(rows, missing)] = vectors @ query
        best, sentence_cos = self.best_sentences(query, rows)
        cand_dense = np.maximum(passage_cos, p.sentence_weight * best)
        dense_order = rows[np.lexsort((rows, -cand_dense))]
        dense = np.full(n, -1.0, dtype=np.float32)
        dense[rows] = cand_dense
        fused = np.full(n, -np.inf)
        fused[rows] = rrf([(dense_order, p.dense_weight), (bm25_order, p.bm25_weight)], n, p.rrf_k)[rows]
        return {
            "query": query,
            "dense": dense,
            "bm25": bm25,
            "sentence": sentence_cos,
            "fused": fused,
            "dense_rank": ranks_of(dense_order, n),
            "bm25_rank": ranks_of(bm25_order, n),
            "allowed": np.ones(n, dtype=bool) if mask is None else mask,
            "candidates": rows,
        }

    def search(self, question: str, k: int = 5, sources: Sequence[str] | None = None) -> list[Hit]:
        """The top `k` passages for `question`, best first, each with its score parts."""
        hits, _ = self.search_with_scores(question, k, sources)
        return hits

    def search_with_scores(self, question: str, k: int, sources=None) -> tuple[list[Hit], dict]:
        parts = self.score(question, sources, k)
        allowed = int(parts["allowed"].sum())
        k = max(0, min(k, allowed))
        if "candidates" in parts:  # approximate index: rank the candidates only
            rows = parts["candidates"]
            order = rows[np.lexsort((rows, -parts["fused"][rows]))][:k]
        else:
            order = np.argsort(-parts["fused"], kind="stable")[:k]
        hits = []
        for rank, i in enumerate(order, start=1):
            passage = self.passages[i]
            hits.append(
                Hit(
                    **passage.__dict__,
                    rank=rank,
                    score=round(float(parts["fused"][i]), 6),
                    dense=round(float(parts["dense"][i]), 6),
                    bm25=round(float(parts["bm25"][i]), 6),
                    dense_rank=int(parts["dense_rank"][i]) or None,
                    bm25_rank=int(parts["bm25_rank"][i]) or None,
                )
            )
        return hits, parts

    def row_of(self, hit: Passage) -> int:
        """The store row of a passage returned by this searcher."""
        if self._row is None:  # built on first use: a large index pays for it only when asked
            self._row = {(p.source, p.start_char, p.end_char): i for i, p in enumerate(self.passages)}
        return self._row[(hit.source, hit.start_char, hit.end_char)]

    def sentences_of(self, row: int) -> list[int]:
        """Sentence ids (rows of the sentence table) inside passage `row`."""
        return list(range(self._first_sentence[row], self._first_sentence[row + 1]))

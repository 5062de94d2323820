"""SEARCH: dense + BM25 retrieval over a loaded index, fused; the "not found" decision.

Handed a loaded `IndexData` and an `Embedder`; computes no index and writes nothing.

How a passage is scored (measured on the dev questions and SciFact train, see bench/quality.md):
- dense: the larger of the passage's cosine and `sentence_weight` × its best sentence's cosine,
  so that one sentence that answers is not drowned by the rest of the passage;
- bm25: BM25 (Lucene variant, Snowball stemming, English stop words) over section title + text;
- fused ("cosine" fusion): dense + `bm25_weight` × BM25 / the query's best BM25 score, over each
  retriever's top `candidates`. The cosine keeps one scale on every corpus, so one weight serves
  a 16-passage corpus and a 13,000-passage one (min-max "convex" fusion and RRF need different
  weights per corpus size; both remain available in `SearchParams`);
- re-scored: the top `rerank_depth` fused passages get `rerank_bonus` added: the passage's own
  cosine, the IDF-weighted share of the question's words in its best sentence, and whether that
  sentence holds what a "when" or "how many" question asks for (a year, a number). The weights
  were fitted on SciFact train and SQuAD questions outside test_1k (bench/learn_fit.py), not on
  the dev questions.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .merge import merge_ranked, merged_passage, trim_shown
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


@lru_cache(maxsize=1)
def _question_stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS) | _stopwords()


def tokenize(text: str, content_only: bool = False) -> list[str]:
    """BM25 tokens: lower-cased words, stop words and 1-letter words dropped, Snowball-stemmed.
    The one tokenizer for indexing and querying. `content_only` drops the longer stop-word list
    too (what, who, were, does...): the words that carry a question's content."""
    stop = _question_stopwords() if content_only else _stopwords()
    words = [w for w in _TOKEN.findall(text.lower()) if w not in stop and (len(w) > 1 or w.isdigit())]
    return _stemmer().stemWords(words)


def tokenize_many(texts: Sequence[str]) -> list[set[str]]:
    """The set of `tokenize` tokens of each of `texts`, stemming each distinct word once."""
    stop = _stopwords()
    words = [set(_TOKEN.findall(text.lower())) - stop for text in texts]
    distinct = [w for w in set().union(*words) if len(w) > 1 or w.isdigit()]
    stem = dict(zip(distinct, _stemmer().stemWords(distinct)))
    return [{stem[w] for w in ws if w in stem} for ws in words]


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


def bm25_idf(bm25, words) -> dict[str, float]:
    """Lucene BM25 IDF, log(1 + (N - df + 0.5) / (df + 0.5)), of each of `words` in a bm25s
    index; a word the index does not know counts as seen once (the rarest a known word can be)."""
    indptr = bm25.scores["indptr"]
    n = int(bm25.scores["num_docs"])
    out = {}
    for w in words:
        i = bm25.vocab_dict.get(w)
        df = int(indptr[i + 1] - indptr[i]) if i is not None and i + 1 < len(indptr) else 1
        out[w] = float(np.log1p((n - df + 0.5) / (df + 0.5)))
    return out


def word_share(weights: dict[str, float], words: set[str]) -> float:
    """The share of the question's word weights (`weights`: word -> IDF) held by `words`;
    0.0 without question words. Pure."""
    total = sum(weights.values())
    return sum(v for w, v in weights.items() if w in words) / total if total > 0 else 0.0


_WHEN_QUESTION = re.compile(r"\b(when|what year|which year|what date|year)\b", re.I)
_COUNT_QUESTION = re.compile(r"\b(how (many|much|long|old|far|large|big)|what (percentage|number|share))\b", re.I)
_YEAR_OR_DATE = re.compile(
    r"\b(1[5-9]\d\d|20\d\d)s?\b|\b(January|February|March|April|May|June|July|August|September|October"
    r"|November|December|century)\b"
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|hundreds?|thousands?|millions?"
    r"|billions?|dozens?|half|percent)\b",
    re.I,
)


_NUMBERED_TITLE = re.compile(r"(?:^|\s)\d+(?:\.\d+)+\.?\s+[A-Z]")


def is_navigation(text: str) -> bool:
    """Whether a passage is a list of numbered section titles (a table of contents): at least 4
    numbers like "2.5.3." followed by a capital, with at most 10 words each on average. Pure."""
    n = len(_NUMBERED_TITLE.findall(text))
    return n >= 4 and len(text.split()) <= 10 * n


def answer_types(question: str) -> frozenset[str]:
    """What the question asks for: "when" (a time: when, what year...) and/or "count" (a quantity:
    how many, how much, how long...); empty for any other question. Pure."""
    kinds = set()
    if _WHEN_QUESTION.search(question):
        kinds.add("when")
    if _COUNT_QUESTION.search(question):
        kinds.add("count")
    return frozenset(kinds)


def held_types(text: str, kinds: frozenset[str]) -> frozenset[str]:
    """The answer types among `kinds` that `text` holds: a year, a month or a century for "when";
    a number (digits or words) for "count". Pure."""
    held = set()
    if "when" in kinds and _YEAR_OR_DATE.search(text):
        held.add("when")
    if "count" in kinds and _NUMBER.search(text):
        held.add("count")
    return frozenset(held)


def bm25_scores(bm25, question: str, content_only: bool = False) -> np.ndarray:
    """BM25 score of every passage for `question` (zeros when no query word is indexed).
    `content_only`: the question's own words (what, how, does...) left out of the query."""
    tokens = [t for t in tokenize(question, content_only) if t in bm25.vocab_dict]
    if not tokens and content_only:
        tokens = [t for t in tokenize(question) if t in bm25.vocab_dict]
    if not tokens:
        return np.zeros(int(bm25.scores["num_docs"]), dtype=np.float32)
    return np.asarray(bm25.get_scores(tokens), dtype=np.float32)


@dataclass(frozen=True)
class SearchParams:
    """The knobs of retrieval. Defaults are the configuration chosen in bench/quality.md."""

    fusion: str = "cosine"  # "cosine", "convex" (min-max normalised) or "rrf" (reciprocal ranks)
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 0.3
    sentence_weight: float = 1.0  # dense = max(passage cosine, sentence_weight × best sentence cosine)
    sentence_mix: float = 0.0  # > 0: dense = (1 - mix) × passage cosine + mix × best sentence cosine
    neighbour_weight: float = 0.0  # share of the best neighbouring passage's dense score added
    title_weight: float = 0.0  # × cosine of the question with the passage's section title, added
    bm25_content_only: bool = False  # BM25 queries without question words (what, how, does...)
    decisive_top: int = 0  # > 0: "decisive" fusion compares each retriever's best with its top this many
    candidates: int = 1000  # how deep each retriever's list is read before fusing
    ann_candidates: int = 100  # approximate (large) indexes: passages each retriever proposes
    prf_weight: float = 0.0  # > 0: second pass with the query moved towards the top passages
    prf_depth: int = 3  # how many top passages feed the second pass
    rerank_depth: int = 10  # the top fused passages that get `rerank_bonus` (0: none); weights fitted with cosine fusion
    rerank_passage: float = 0.24  # × the passage's own cosine
    rerank_words: float = 0.24  # × IDF-weighted share of the question's words in its best sentence
    rerank_when: float = 0.10  # when the question asks "when" and the best sentence holds a year/date
    rerank_count: float = 0.08  # when it asks "how many/much" and the best sentence holds a number
    rerank_navigation: float = 0.2  # taken off a top passage that is a table of contents (is_navigation)
    found_threshold: float = 0.37  # best dense score of the top passages at or above this: found
    found_threshold_words: float = 0.33  # ... or at or above this with enough question words:
    found_coverage: float = 0.5  # share of the question's words held by one of the top 3 passages
    merge: bool = True  # overlapping passages of one place shown as one result (qa.merge)
    merge_max: int = 3  # passages in one merged result at most
    found_threshold_missing: float = 0.60  # a question word the corpus never mentions: found only from here (notfound.py)


def dense_scores(passage_cos: np.ndarray, best_sentence: np.ndarray, params: SearchParams) -> np.ndarray:
    """A passage's dense score from its own cosine and its best sentence's cosine. Pure."""
    if params.sentence_mix > 0:
        has = best_sentence > -1.0
        mixed = (1 - params.sentence_mix) * passage_cos + params.sentence_mix * best_sentence
        return np.where(has, mixed, passage_cos).astype(np.float32)
    return np.maximum(passage_cos, params.sentence_weight * best_sentence).astype(np.float32)


def rerank_bonus(passage_cos: float, words: float, held: frozenset[str], params: SearchParams) -> float:
    """What re-scoring adds to a top passage's fused score: `rerank_passage` × its own cosine,
    `rerank_words` × the weighted share of question words in its best sentence (`words`), and
    `rerank_when` / `rerank_count` for each answer type the question asks for that this sentence
    holds (`held`, from `held_types`). Pure."""
    bonus = params.rerank_passage * passage_cos + params.rerank_words * words
    if "when" in held:
        bonus += params.rerank_when
    if "count" in held:
        bonus += params.rerank_count
    return bonus


def with_neighbours(scores: np.ndarray, same_source_next: np.ndarray, weight: float) -> np.ndarray:
    """Add `weight` × the better of the previous and next passage's score (same file only).
    `same_source_next[i]` says whether passage i+1 is in the same file as passage i. Pure."""
    if weight == 0 or len(scores) < 2:
        return scores
    prev = np.full(len(scores), -np.inf)
    nxt = np.full(len(scores), -np.inf)
    link = same_source_next[:-1]
    prev[1:] = np.where(link, scores[:-1], -np.inf)
    nxt[:-1] = np.where(link, scores[1:], -np.inf)
    best = np.maximum(prev, nxt)
    return np.where(np.isfinite(best), scores + weight * best, scores)


def minmax(scores: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """Scores of `ids` scaled to [0, 1] over those ids (1 for all when they tie); 0 elsewhere. Pure."""
    out = np.zeros(n, dtype=np.float64)
    ids = np.asarray(ids, dtype=np.int64)
    if not len(ids):
        return out
    vals = scores[ids].astype(np.float64)
    lo, hi = vals.min(), vals.max()
    out[ids] = (vals - lo) / (hi - lo) if hi > lo else 1.0
    return out


def fuse(dense: np.ndarray, bm25: np.ndarray, dense_order: np.ndarray, bm25_order: np.ndarray,
         params: SearchParams) -> np.ndarray:
    """The fused score of every passage from the two retrievers' scores and orders (best first,
    already restricted to allowed passages; bm25_order holds only positive BM25 scores). Pure.

    rrf: Σ weight / (rrf_k + rank) over each retriever's top `candidates`.
    convex: Σ weight × min-max-normalised score over each retriever's top `candidates`.
    """
    n = len(dense)
    d_ids, b_ids = dense_order[: params.candidates], bm25_order[: params.candidates]
    if params.fusion == "convex":
        return params.dense_weight * minmax(dense, d_ids, n) + params.bm25_weight * minmax(bm25, b_ids, n)
    if params.fusion == "cosine":
        # dense cosines as they are (already on one scale across corpora) + BM25 relative to its best
        top = float(bm25[b_ids[0]]) if len(b_ids) else 0.0
        out = np.zeros(n, dtype=np.float64)
        out[d_ids] = params.dense_weight * dense[d_ids]
        if top > 0:
            out[b_ids] += params.bm25_weight * bm25[b_ids] / top
        return out
    if params.fusion == "decisive":
        return decisive(dense, bm25, d_ids, b_ids, params)
    if params.fusion == "rrf":
        return rrf([(d_ids, params.dense_weight), (b_ids, params.bm25_weight)], n, params.rrf_k)
    raise ValueError(f"unknown fusion {params.fusion!r}: use 'rrf' or 'convex'")


def decisiveness(scores: np.ndarray, top: int) -> float:
    """How clearly a retriever's best score stands out of its `top` best: (best − mean) / std of
    those scores (0 when fewer than 2, or all equal). Pure."""
    vals = np.asarray(scores[:top], dtype=np.float64)
    if len(vals) < 2 or vals.std() == 0:
        return 0.0
    return float((vals[0] - vals.mean()) / vals.std())


def decisive(dense: np.ndarray, bm25: np.ndarray, d_ids: np.ndarray, b_ids: np.ndarray, params) -> np.ndarray:
    """Cosine fusion with the BM25 weight scaled by how decisive BM25 is for this question
    against the dense retriever: × 2·z_bm25 / (z_bm25 + z_dense), z being `decisiveness` over
    each one's top `decisive_top` (1 when both are 0). Pure."""
    n = len(dense)
    zd = decisiveness(dense[d_ids], params.decisive_top)
    zb = decisiveness(bm25[b_ids], params.decisive_top)
    scale = 2 * zb / (zb + zd) if zb + zd > 0 else 1.0
    top = float(bm25[b_ids[0]]) if len(b_ids) else 0.0
    out = np.zeros(n, dtype=np.float64)
    out[d_ids] = params.dense_weight * dense[d_ids]
    if top > 0:
        out[b_ids] += scale * params.bm25_weight * bm25[b_ids] / top
    return out


def feedback_query(query: np.ndarray, vectors: np.ndarray, weight: float) -> np.ndarray:
    """Rocchio feedback: the unit vector of `query` + `weight` × the mean of `vectors` (the query
    itself when there are none). Pure."""
    if not len(vectors):
        return query
    moved = np.asarray(query, dtype=np.float32) + weight * np.asarray(vectors, dtype=np.float32).mean(axis=0)
    return (moved / max(float(np.linalg.norm(moved)), 1e-12)).astype(np.float32)


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
    `params.ann_candidates` best passages of the vector index and of BM25 (at least 2·k), their
    sentences are scored from the memory-mapped sentence vectors, and fusion ranks them alone
    (the title, neighbour and feedback options apply to exact indexes only; all are off by default).
    On both, the top `params.rerank_depth` fused passages are then re-scored (`_rerank`).
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
        self._title_vectors = None
        self._same_next = None

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

    def best_sentences(self, query: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, SentenceScores, np.ndarray]:
        """Best sentence cosine of each passage in `rows` (ascending; -1 where it has none),
        reading only their sentence vectors; those sentences' cosines; and the id of each
        passage's best sentence (the first of equals; -1 where it has none)."""
        starts = self._first_sentence[rows]
        counts = self._first_sentence[rows + 1] - starts
        best = np.full(len(rows), -1.0, dtype=np.float32)
        best_ids = np.full(len(rows), -1, dtype=np.int64)
        offsets = np.cumsum(counts) - counts  # where each passage's sentences start in `ids`
        total = int(counts.sum())
        ids = np.repeat(starts - offsets, counts) + np.arange(total)
        cos = np.asarray(self.data.sentence_vectors[ids], dtype=np.float32) @ query if total else np.zeros(0, np.float32)
        has = counts > 0
        if total:
            best[has] = np.maximum.reduceat(cos, offsets[has])
            segment = np.repeat(np.arange(int(has.sum())), counts[has])  # passage (among `has`) of each sentence
            at_max = np.flatnonzero(cos == best[has][segment])
            best_ids[has] = ids[at_max[np.unique(segment[at_max], return_index=True)[1]]]
        return best, SentenceScores(self.data.sentence_vectors, query, ids, cos), best_ids

    def title_scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of the query with each passage's section title (0 without a title). The title
        vectors are computed on first use, once per distinct title."""
        if self._title_vectors is None:
            titles = sorted({p.section for p in self.passages if p.section})
            self._title_id = {t: i for i, t in enumerate(titles)}
            self._title_vectors = self.embedder.encode_documents(titles) if titles else np.zeros((0, 1), np.float32)
            self._passage_title = np.array([self._title_id.get(p.section, -1) for p in self.passages], dtype=np.int64)
        if not len(self._title_vectors):
            return np.zeros(len(self.passages), dtype=np.float32)
        cos = np.append(self._title_vectors @ query, np.float32(0.0))
        return cos[self._passage_title].astype(np.float32)

    def _dense(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dense score per passage, cosine per sentence, cosine per passage) for a query vector
        (exact index)."""
        n = len(self.passages)
        p = self.params
        passage_cos = self.passage_scores(query)
        sent = self.sentence_scores(query)
        best_sentence = np.full(n, -1.0, dtype=np.float32)
        if len(sent):  # sentences are grouped by passage: one max per passage's run of rows
            has = np.diff(self._first_sentence) > 0
            best_sentence[has] = np.maximum.reduceat(sent, self._first_sentence[:-1][has])
        dense = dense_scores(passage_cos, best_sentence, p)
        if p.title_weight:
            dense = dense + p.title_weight * self.title_scores(query)
        if p.neighbour_weight:
            if self._same_next is None:
                sources = [x.source for x in self.passages]
                self._same_next = np.array([a == b for a, b in zip(sources, sources[1:])] + [False], dtype=bool)
            dense = with_neighbours(dense, self._same_next, p.neighbour_weight)
        return dense, sent, passage_cos

    def _rerank(self, question: str, fused: np.ndarray, passage_cos: np.ndarray, sentence_cos, rows=None,
                best_ids=None) -> None:
        """Add `rerank_bonus` to the fused score of the top `rerank_depth` passages, in place.
        `fused` and `passage_cos` are indexed by passage row, or aligned with `rows` (the
        candidates of an approximate index, with `best_ids` their best sentences from
        `best_sentences`). Reads only those passages' sentences (their cosines are already computed)."""
        p = self.params
        if p.rerank_depth <= 0 or not (p.rerank_passage or p.rerank_words or p.rerank_when or p.rerank_count
                                       or p.rerank_navigation):
            return
        finite = np.flatnonzero(np.isfinite(fused))
        if not len(finite):
            return
        depth = min(p.rerank_depth, len(finite))
        top = finite[np.argpartition(-fused[finite], depth - 1)[:depth]] if depth < len(finite) else finite
        weights = bm25_idf(self.data.bm25, set(tokenize(question)))
        kinds = answer_types(question)
        spans = self.data.sentence_spans
        texts = []
        for at in top:
            i = int(rows[at]) if rows is not None else int(at)
            passage = self.passages[i]
            text = passage.text
            if best_ids is not None:
                best = int(best_ids[at])
            else:  # the passage's best sentence by cosine (the first of equals)
                first, stop = int(self._first_sentence[i]), int(self._first_sentence[i + 1])
                best = first + int(np.argmax(sentence_cos[first:stop])) if stop > first else -1
            if best >= 0:
                _, a, b = spans[best]
                text = text[a - passage.start_char : b - passage.start_char]
            texts.append(text)
        bonus = [
            rerank_bonus(float(passage_cos[at]), word_share(weights, words), held_types(text, kinds), p)
            for at, text, words in zip(top, texts, tokenize_many(texts))
        ]
        if p.rerank_navigation:
            for n, at in enumerate(top):
                if is_navigation(self.passages[int(rows[at]) if rows is not None else int(at)].text):
                    bonus[n] -= p.rerank_navigation
        fused[top] += bonus

    def score(self, question: str, sources: Sequence[str] | None = None, k: int = 0, query_vector=None) -> dict:
        """Every score part for every passage (arrays indexed by passage row; on an approximate
        index, for the candidates only, aligned with `parts["candidates"]`). `query_vector`:
        the question's embedding when already computed (evaluation encodes queries in batches)."""
        query = self.embedder.encode_queries([question])[0] if query_vector is None else query_vector
        if not self.exact:
            return self._score_candidates(question, query, sources, k)
        p = self.params
        n = len(self.passages)
        dense, sent, passage_cos = self._dense(query)
        bm25 = bm25_scores(self.data.bm25, question, self.params.bm25_content_only)
        mask = source_mask(self.passages, sources)
        allowed = np.ones(n, dtype=bool) if mask is None else mask
        bm25_order = np.argsort(-bm25, kind="stable")
        bm25_order = bm25_order[allowed[bm25_order] & (bm25[bm25_order] > 0)].astype(np.int64)

        def dense_order_of(dense):
            order = np.argsort(-dense, kind="stable")
            return order[allowed[order]].astype(np.int64)

        dense_order = dense_order_of(dense)
        fused = fuse(dense, bm25, dense_order, bm25_order, p)
        first_dense = dense
        if p.prf_weight > 0 and len(self.sentence_passage):
            # Pseudo-relevance feedback: move the query towards the sentences of the top passages.
            top = [i for i in np.argsort(-fused, kind="stable")[: p.prf_depth] if allowed[i]]
            rows = [j for i in top for j in range(self._first_sentence[i], self._first_sentence[i + 1])]
            query = feedback_query(query, np.asarray(self.data.sentence_vectors[rows]), p.prf_weight)
            dense, sent, passage_cos = self._dense(query)
            dense_order = dense_order_of(dense)
            fused = fuse(dense, bm25, dense_order, bm25_order, p)
        fused[~allowed] = -np.inf
        self._rerank(question, fused, passage_cos, sent)
        return {
            "query": query,
            "dense": dense,
            "question_dense": first_dense,  # dense scores of the question itself (before feedback)
            "bm25": bm25,
            "sentence": sent,
            "fused": fused,
            "dense_rank": ranks_of(dense_order, n),
            "bm25_rank": ranks_of(bm25_order, n),
            "allowed": allowed,
        }

    def _score_candidates(self, question: str, query: np.ndarray, sources, k: int) -> dict:
        """`score` on an approximate index: only candidates are scored. `parts["candidates"]`
        holds their passage rows (ascending); "dense", "bm25", "fused", the ranks and "allowed"
        are aligned with it rather than sized to the corpus (half a dozen corpus-sized arrays
        cost ~6 ms per query at 1,000,000 passages); ranks are ranks among the candidates."""
        from .store import search_vectors

        p = self.params
        c = max(p.ann_candidates, 2 * k)
        mask = source_mask(self.passages, sources)
        ann_ids, ann_cos = search_vectors(self.data.passage_index, query, c, mask)
        all_bm25 = bm25_scores(self.data.bm25, question, self.params.bm25_content_only)
        ok = all_bm25 > 0 if mask is None else (all_bm25 > 0) & mask
        pool = np.flatnonzero(ok)
        if len(pool) > c:
            pool = pool[np.argpartition(-all_bm25[pool], c - 1)[:c]]
        rows, first = np.unique(np.concatenate([ann_ids, pool]).astype(np.int64), return_index=True)
        from_ann = first < len(ann_ids)
        passage_cos = np.full(len(rows), -1.0, dtype=np.float32)
        passage_cos[from_ann] = ann_cos[first[from_ann]]
        if not from_ann.all():  # BM25 candidates the vector index did not return
            passage_cos[~from_ann] = self.data.passage_index.reconstruct_batch(rows[~from_ann]) @ query
        best, sentence_cos, best_ids = self.best_sentences(query, rows)
        dense = dense_scores(passage_cos, best, p)
        bm25 = all_bm25[rows]
        # Orders are positions in `rows`; rows ascend, so position breaks ties as the row would.
        at = np.arange(len(rows))
        dense_order = np.lexsort((at, -dense))
        in_pool = np.searchsorted(rows, pool)
        bm25_order = in_pool[np.lexsort((in_pool, -bm25[in_pool]))]
        fused = fuse(dense, bm25, dense_order, bm25_order, p)
        self._rerank(question, fused, passage_cos, sentence_cos, rows, best_ids)
        return {
            "query": query,
            "dense": dense,
            "bm25": bm25,
            "sentence": sentence_cos,
            "fused": fused,
            "dense_rank": ranks_of(dense_order, len(rows)),
            "bm25_rank": ranks_of(bm25_order, len(rows)),
            "allowed": np.ones(len(rows), dtype=bool),  # candidates are allowed passages only
            "candidates": rows,
        }

    def search(self, question: str, k: int = 5, sources: Sequence[str] | None = None) -> list[Hit]:
        """The top `k` passages for `question`, best first, each with its score parts."""
        hits, _ = self.search_with_scores(question, k, sources)
        return hits

    def search_with_scores(self, question: str, k: int, sources=None) -> tuple[list[Hit], dict]:
        """The top `k` results and the score parts. With `params.merge`, passages of one place that
        overlap are merged into one result (`qa.merge`); `parts["hit_rows"]` lists the passage
        rows behind each hit, its best first, and `parts["hit_places"]` their ranks before merging."""
        parts = self.score(question, sources, k)
        allowed = int(parts["allowed"].sum())
        k = max(0, min(k, allowed))
        pool = k * (self.params.merge_max + 1) if self.params.merge else k
        while True:
            if "candidates" in parts:  # approximate index: parts are aligned with the candidates
                at = np.lexsort((parts["candidates"], -parts["fused"]))[:pool]
                order = parts["candidates"][at]
            else:
                order = at = np.argsort(-parts["fused"], kind="stable")[:pool]
            at = [j for j in at if np.isfinite(parts["fused"][j])]  # -inf (filtered out) sort last
            order = order[: len(at)]
            if not self.params.merge:
                groups = [[g] for g in range(min(k, len(order)))]
                break
            groups = merge_ranked([self.passages[i] for i in order], k, self.params.merge_max)
            if len(groups) >= k or len(at) < pool:  # enough results, or no passage left to add
                break
            pool *= 2
        hits, hit_rows, hit_places = [], [], []
        shown = [merged_passage([self.passages[order[g]] for g in group]) for group in groups]
        if self.params.merge:
            shown = trim_shown(shown)
        for rank, (group, passage) in enumerate(zip(groups, shown), start=1):
            j = at[group[0]]
            hit_rows.append([int(order[g]) for g in group])
            hit_places.append([int(g) for g in group])
            hits.append(
                Hit(
                    **passage.__dict__,
                    rank=rank,
                    score=round(float(parts["fused"][j]), 6),
                    dense=round(float(parts["dense"][j]), 6),
                    bm25=round(float(parts["bm25"][j]), 6),
                    dense_rank=int(parts["dense_rank"][j]) or None,
                    bm25_rank=int(parts["bm25_rank"][j]) or None,
                )
            )
        parts["hit_rows"] = hit_rows
        parts["hit_places"] = hit_places  # 0-based rank of each of those passages before merging
        return hits, parts

    def row_of(self, hit: Passage) -> int:
        """The store row of a passage returned by this searcher."""
        if self._row is None:  # built on first use: a large index pays for it only when asked
            self._row = {(p.source, p.start_char, p.end_char): i for i, p in enumerate(self.passages)}
        return self._row[(hit.source, hit.start_char, hit.end_char)]

    def sentences_of(self, row: int) -> list[int]:
        """Sentence ids (rows of the sentence table) inside passage `row`."""
        return list(range(self._first_sentence[row], self._first_sentence[row + 1]))

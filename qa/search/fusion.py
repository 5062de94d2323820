"""Pure scoring functions of plain arrays: the dense score, fusion of the two retrievers, the
re-scoring bonus of the top passages and its features, and source-pattern matching. No model,
no index: tested with hand-made arrays."""

from __future__ import annotations

import fnmatch
import math
import re
from typing import Iterable, Sequence

import numpy as np

from .params import SearchParams


def dense_scores(passage_cos: np.ndarray, best_sentence: np.ndarray, params: SearchParams) -> np.ndarray:
    """A passage's dense score: the larger of its own cosine and `sentence_weight` × its best
    sentence's cosine (-1 where it has none). Pure."""
    return np.maximum(passage_cos, params.sentence_weight * best_sentence).astype(np.float32)


_NUMBERED_TITLE = re.compile(r"(?:^|\s)\d+(?:\.\d+)+\.?\s+[A-Z]")
_DOT_DIGIT = re.compile(r"\.\d")


def is_navigation(text: str) -> bool:
    """Whether a passage is a list of numbered section titles (a table of contents): at least 4
    numbers like "2.5.3." followed by a capital, with at most 10 words each on average. Pure."""
    # Each numbered title holds a "." followed by a digit, so fewer than 4 of those (found 5x
    # faster: the pattern starts with a literal) rule the text out; 9 passages in 10 stop here.
    if len(_DOT_DIGIT.findall(text)) < 4:
        return False
    n = len(_NUMBERED_TITLE.findall(text))
    return n >= 4 and len(text.split()) <= 10 * n


def fuse(dense: np.ndarray, bm25: np.ndarray, dense_order: np.ndarray, bm25_order: np.ndarray,
         params: SearchParams) -> np.ndarray:
    """The fused score of every passage from the two retrievers' scores and orders (best first,
    already restricted to allowed passages; bm25_order holds only positive BM25 scores). Pure.

    cosine: dense_weight × dense cosine + bm25_weight × BM25 / the best BM25, over each
    retriever's top `candidates` (the cosine keeps one scale on every corpus).
    rrf: Σ weight / (rrf_k + rank) over each retriever's top `candidates`.
    """
    n = len(dense)
    d_ids, b_ids = dense_order[: params.candidates], bm25_order[: params.candidates]
    if params.fusion == "cosine":
        top = float(bm25[b_ids[0]]) if len(b_ids) else 0.0
        out = np.zeros(n, dtype=np.float64)
        out[d_ids] = params.dense_weight * dense[d_ids]
        if top > 0:
            out[b_ids] += params.bm25_weight * bm25[b_ids] / top
        return out
    if params.fusion == "rrf":
        return rrf([(d_ids, params.dense_weight), (b_ids, params.bm25_weight)], n, params.rrf_k)
    raise ValueError(f"unknown fusion {params.fusion!r}: use 'cosine' or 'rrf'")


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


def word_share(weights: dict[str, float], words: set[str]) -> float:
    """The share of the question's word weights (`weights`: word -> IDF) held by `words`;
    0.0 without question words. Pure."""
    total = sum(weights.values())
    return sum(v for w, v in weights.items() if w in words) / total if total > 0 else 0.0


_WHEN_QUESTION = re.compile(r"\b(when|what year|which year|what date|year)\b", re.I)
_YEAR_OR_DATE = re.compile(
    r"\b(1[5-9]\d\d|20\d\d)s?\b|\b(January|February|March|April|May|June|July|August|September|October"
    r"|November|December|century)\b"
)
def answer_types(question: str) -> frozenset[str]:
    """What the question asks for: "when" (a time: when, what year...); empty for any other
    question. (A "count" type for "how many" questions, weighted 0.08, changed no rank on any dev
    split of bench/quality.md's fourth round and was removed.) Pure."""
    return frozenset({"when"}) if _WHEN_QUESTION.search(question) else frozenset()


def held_types(text: str, kinds: frozenset[str]) -> frozenset[str]:
    """The answer types among `kinds` that `text` holds: a year, a month or a century for "when". Pure."""
    return frozenset({"when"}) if "when" in kinds and _YEAR_OR_DATE.search(text) else frozenset()


def structured_share(sections: Sequence[str]) -> float:
    """The share of `sections` (heading paths of the top passages) with two levels or more (a page
    and a section: structured documentation); 0.0 for none. Pure."""
    return sum(" › " in s for s in sections) / len(sections) if sections else 0.0


def rerank_bonus(passage_cos: float, words: float, held: frozenset[str], params: SearchParams,
                 structured: float = 0.0, length: int = 0) -> float:
    """What re-scoring adds to a top passage's fused score: `rerank_passage` × its own cosine,
    `rerank_words` × the weighted share of question words in its best sentence (`words`), and
    `rerank_when` when the question asks "when" and this sentence holds a time (`held`, from
    `held_types`); when the top passages are structured documentation
    (`structured`, from `structured_share`), that share × (`rerank_doc_passage` × its cosine +
    `rerank_doc_length` × log(1 + its `length` in words)). Pure."""
    bonus = params.rerank_passage * passage_cos + params.rerank_words * words
    if "when" in held:
        bonus += params.rerank_when
    if structured:
        bonus += structured * (params.rerank_doc_passage * passage_cos + params.rerank_doc_length * math.log1p(length))
    return bonus


def match_sources(sources: Iterable[str], patterns: Sequence[str] | None) -> set[str] | None:
    """The sources matching any of `patterns` (None when there are no patterns: all). A pattern
    that names a source exactly selects that file only (picking `a.md` must not bring `data.md`);
    otherwise a glob (`*.md`, `notes/*`), else a part of the path. Pure."""
    pats = [p.strip() for p in patterns or () if p and p.strip()]
    if not pats:
        return None
    sources = set(sources)

    def match(source: str, pattern: str) -> bool:
        if pattern in sources:
            return source == pattern
        if any(c in pattern for c in "*?["):
            return fnmatch.fnmatch(source, pattern)
        return pattern in source

    return {s for s in sources if any(match(s, p) for p in pats)}


def source_mask(passages: Sequence, patterns: Sequence[str] | None) -> np.ndarray | None:
    """Boolean mask of `passages` whose source matches any of `patterns` (None: no patterns)."""
    allowed = match_sources({p.source for p in passages}, patterns)
    if allowed is None:
        return None
    return np.fromiter((p.source in allowed for p in passages), dtype=bool, count=len(passages))

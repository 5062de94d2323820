"""LEXICAL: the one tokenizer (for indexing and querying) and BM25 (build and score).

BM25 is the Lucene variant of bm25s (k1 1.2, b 0.75) over a passage's section title and text,
Snowball-stemmed, English stop words and 1-letter words dropped. bm25s and PyStemmer are imported
on first use.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

import numpy as np

from .schema import Passage

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


def bm25_scores(bm25, tokens: Sequence[str]) -> np.ndarray:
    """BM25 score of every passage for the query `tokens` (from `tokenize`; zeros when no token
    is indexed)."""
    tokens = [t for t in tokens if t in bm25.vocab_dict]
    if not tokens:
        return np.zeros(int(bm25.scores["num_docs"]), dtype=np.float32)
    return np.asarray(bm25.get_scores(tokens), dtype=np.float32)

"""LEXICAL: the one tokenizer (for indexing and querying) and BM25 (build and score).

BM25 is the Lucene variant of bm25s (k1 1.2, b 0.75) over a passage's section title and text,
Snowball-stemmed, English stop words and 1-letter words dropped. bm25s and PyStemmer are imported
on first use. A built index is a `BM25Arrays` (bm25s's arrays and folder format, read and written
with numpy alone, memory-mapped for large indexes); `build_bm25` (small, in-memory indexes) gives a
bm25s.BM25; the scoring functions here take either.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .integrity import load_npy
from .schema import Passage

_TOKEN = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _bm25s_stopwords():
    """bm25s's stop-word lists (`bm25s/stopwords.py`, plain tuples), read without running the
    bm25s package's `__init__`, which imports scipy (0.5 s of CPU, several seconds on a loaded
    machine) for nothing a query needs. The module bm25s imports when it is already loaded."""
    import importlib.util
    import sys

    if "bm25s.stopwords" in sys.modules:
        return sys.modules["bm25s.stopwords"]
    package = importlib.util.find_spec("bm25s")  # locates the package without importing it
    spec = importlib.util.spec_from_file_location(
        "qa._bm25s_stopwords", Path(package.origin).with_name("stopwords.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return frozenset(_bm25s_stopwords().STOPWORDS_EN)


@lru_cache(maxsize=1)
def _question_stopwords() -> frozenset[str]:
    return frozenset(_bm25s_stopwords().STOPWORDS_EN_PLUS) | _stopwords()


# ASCII bytes that are not word characters (\w: letters, digits, underscore) -> a space
_NOT_WORD = bytes(c if chr(c).isalnum() or c == ord("_") else ord(" ") for c in range(128)).ljust(256, b" ")


def words(text: str) -> list[str]:
    """The lower-cased words of `text`: `_TOKEN.findall(text.lower())`. ASCII text (most text)
    is split by a byte table instead of the regular expression, 4-5x faster, same words."""
    text = text.lower()
    if text.isascii():
        return text.encode("ascii").translate(_NOT_WORD).decode("ascii").split()
    return _TOKEN.findall(text)


def tokenize(text: str, content_only: bool = False) -> list[str]:
    """BM25 tokens: lower-cased words, stop words and 1-letter words dropped, Snowball-stemmed.
    The one tokenizer for indexing and querying. `content_only` drops the longer stop-word list
    too (what, who, were, does...): the words that carry a question's content."""
    stop = _question_stopwords() if content_only else _stopwords()
    kept = [w for w in words(text) if w not in stop and (len(w) > 1 or w.isdigit())]
    return _stemmer().stemWords(kept)


# What `tokenize_many` has stemmed in this process (a pure function's memo): word -> its token (None:
# dropped), and token -> the words giving it. Replaced, not cleared, past _STEMS_MAX words, so a
# thread holding the old pair still sees it whole; a word enters the first only once in the second.
_STEMS: tuple[dict[str, str | None], dict[str, set[str]]] = ({}, {})
_STEMS_MAX = 200_000


def tokenize_many(texts: Sequence[str], among: set[str] | None = None) -> list[set[str]]:
    """The set of `tokenize` tokens of each of `texts` (only those in `among` when given: a
    question's tokens). Each distinct word is stemmed once per process (re-scoring tokenizes the
    best sentences of every search); with `among`, only the words known to give those tokens are
    looked up (a set intersection, no loop over the text's words)."""
    global _STEMS
    sets = [set(words(text)) for text in texts]
    distinct = set().union(*sets)
    token_of, words_of = memo = _STEMS
    new = distinct.difference(token_of)
    if new:
        if len(token_of) + len(new) > _STEMS_MAX:
            token_of, words_of = memo = _STEMS = ({}, {})
            new = distinct
        stop = _stopwords()
        new = list(new)
        kept = [w for w in new if w not in stop and (len(w) > 1 or w.isdigit())]
        fresh = dict.fromkeys(new)
        fresh.update(zip(kept, _stemmer().stemWords(kept)))
        for w in kept:
            words_of.setdefault(fresh[w], set()).add(w)
        token_of.update(fresh)  # after words_of: a word seen in token_of is in words_of already
    if among is None:
        return [{t for w in ws if (t := token_of[w]) is not None} for ws in sets]
    token_of_wanted = {w: t for t in among if t in words_of for w in words_of[t]}  # words giving a wanted token
    return [{token_of_wanted[w] for w in ws.intersection(token_of_wanted)} for ws in sets]


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


def bm25_scores(bm25, tokens: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
    """BM25 score of every passage (or of `rows` only) for the query `tokens` (from `tokenize`;
    zeros when no token is indexed). For `rows`, only the query tokens' postings are read, summed
    in the order bm25s sums them, so the scores equal the whole-corpus ones."""
    if rows is not None:
        return _bm25_scores_of(bm25, tokens, np.asarray(rows, dtype=np.int64))
    tokens = [t for t in tokens if t in bm25.vocab_dict]
    if not tokens:
        return np.zeros(int(bm25.scores["num_docs"]), dtype=np.float32)
    return np.asarray(bm25.get_scores(tokens), dtype=np.float32)


def top_scores(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The `k` best (rows, scores) of `scores` with score > 0 (and `allowed`), best first, ties
    by row."""
    ok = scores > 0
    if allowed is not None:
        ok &= allowed
    pool = np.flatnonzero(ok)
    k = max(0, int(k))
    if len(pool) > k:
        pool = pool[np.argpartition(-scores[pool], k - 1)[:k]] if k else pool[:0]
    pool = pool[np.lexsort((pool, -scores[pool]))].astype(np.int64)
    return pool, scores[pool]


def _bm25_scores_of(bm25, tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
    data, indices, indptr = bm25.scores["data"], bm25.scores["indices"], bm25.scores["indptr"]
    wanted = np.unique(rows)
    out = np.zeros(len(wanted), dtype=np.float32)
    sorted_postings = _sorted_postings(bm25)
    for t in tokens:  # duplicates count twice, as in bm25s
        i = bm25.vocab_dict.get(t)
        if i is None:
            continue
        docs, vals = indices[indptr[i] : indptr[i + 1]], data[indptr[i] : indptr[i + 1]]
        if not len(docs):
            continue
        if i not in sorted_postings:
            sorted_postings[i] = bool(np.all(docs[1:] >= docs[:-1]))
        if sorted_postings[i]:  # look the wanted rows up in the posting list (no pass over all of it)
            at = np.minimum(np.searchsorted(docs, wanted), len(docs) - 1)
            hit = docs[at] == wanted
            out[hit] += vals[at[hit]].astype(np.float32)
        else:
            hit = np.isin(docs, wanted)
            np.add.at(out, np.searchsorted(wanted, docs[hit]), vals[hit].astype(np.float32))
    return out[np.searchsorted(wanted, rows)]


def _sorted_postings(bm25) -> dict[int, bool]:
    """Per token id, whether its posting list's rows are ascending (checked once, kept on `bm25`)."""
    if not hasattr(bm25, "_qa_sorted_postings"):
        bm25._qa_sorted_postings = {}
    return bm25._qa_sorted_postings


class BM25Builder:
    """A BM25 index built from passages handed in blocks: per block only token ids, term counts
    and per-document numbers (length, distinct tokens) are kept, as numpy arrays (not Python lists
    of tokens): 8 bytes per (document, distinct token) pair, ~320 MB at a million passages.
    `build()` gives the same index, score for score, as `build_bm25` over all the passages (bm25s'
    Lucene formulas, float32), freeing each array as soon as it is used."""

    def __init__(self, k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.vocab: dict[str, int] = {}
        self._tokens: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []
        self._distinct: list[np.ndarray] = []
        self.n = 0

    def add(self, passages: Sequence[Passage]) -> None:
        from collections import Counter

        vocab = self.vocab
        tokens, counts, lengths, distinct = [], [], [], []
        for p in passages:
            words = tokenize(bm25_text(p)) or [""]
            lengths.append(len(words))
            tf = Counter(vocab.setdefault(w, len(vocab)) for w in words)
            distinct.append(len(tf))
            tokens.append(np.fromiter(tf.keys(), dtype=np.int32, count=len(tf)))
            counts.append(np.fromiter(tf.values(), dtype=np.float32, count=len(tf)))
        if lengths:
            self._tokens.append(np.concatenate(tokens))
            self._counts.append(np.concatenate(counts))
            self._lengths.append(np.asarray(lengths, dtype=np.int64))
            self._distinct.append(np.asarray(distinct, dtype=np.int64))
        self.n += len(lengths)

    def _take(self, name: str, dtype) -> np.ndarray:
        """The blocks of `name` joined into one array, the blocks freed as they are joined."""
        blocks = getattr(self, name)
        setattr(self, name, [])
        return np.concatenate(blocks) if blocks else np.zeros(0, dtype)

    def build(self):
        """The `BM25Arrays` of every passage added (doc i = the i-th passage)."""
        import math

        n, k1, b = self.n, self.k1, self.b
        lengths, distinct = self._take("_lengths", np.int64), self._take("_distinct", np.int64)
        tokens = self._take("_tokens", np.int32)
        avg = lengths.mean() if n else np.float64(0.0)
        df = np.bincount(tokens, minlength=len(self.vocab))
        idf = np.array([math.log(1 + (n - d + 0.5) / (d + 0.5)) if d else 0.0 for d in df.tolist()], dtype=np.float32)
        # As bm25s computes it per document: tf / (k1 * ((1 - b) + b * len / avg) + tf), the
        # document's part in float64, then idf × that, stored as float32.
        part = k1 * ((1 - b) + b * lengths.astype(np.float64) / avg) if n else np.zeros(0)
        del lengths
        dtype = (np.float64(1.0) + np.zeros(1, np.float32)).dtype  # how this numpy adds a scalar to float32
        # Postings come document by document; each block of documents is scored in turn.
        bounds = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(distinct, out=bounds[1:])
        del distinct
        scores = self._take("_counts", np.float32)  # term counts, overwritten by their scores
        step = 1 << 16  # documents per block: bounded temporaries
        for a in range(0, n, step):
            z = min(n, a + step)
            sl = slice(int(bounds[a]), int(bounds[z]))
            t = scores[sl]
            doc_part = np.repeat(part[a:z], np.diff(bounds[a : z + 1])).astype(dtype)
            scores[sl] = idf[tokens[sl]] * (t / (doc_part + t))
        del part
        order = np.argsort(tokens, kind="stable")  # by token, then document (documents came in order)
        del tokens
        data = scores[order]
        del scores
        # The document of posting j is the d with bounds[d] <= j < bounds[d + 1].
        indices = np.empty(len(order), dtype=np.int32)
        for a in range(0, len(order), 1 << 22):
            indices[a : a + (1 << 22)] = np.searchsorted(bounds, order[a : a + (1 << 22)], side="right") - 1
        del order, bounds
        indptr = np.zeros(len(self.vocab) + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        vocab = dict(self.vocab)
        if "" not in vocab:
            vocab[""] = max(vocab.values(), default=-1) + 1
        return BM25Arrays({"data": data, "indices": indices, "indptr": indptr, "num_docs": n}, vocab, k1, b)


class BM25Arrays:
    """A built BM25 index as the arrays bm25s keeps (`scores`: per token, the ids and scores of
    the documents holding it, CSC; `vocab_dict`: stem -> token id), saved and read in bm25s's
    folder format without importing bm25s (which imports scipy: seconds at open). Read
    memory-mapped (`mmap`), a reader holds only the vocabulary."""

    DATA, INDICES, INDPTR = "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy"
    VOCAB, PARAMS = "vocab.index.json", "params.index.json"

    def __init__(self, scores: dict, vocab_dict: dict[str, int], k1: float = 1.2, b: float = 0.75):
        self.scores, self.vocab_dict, self.k1, self.b = scores, vocab_dict, k1, b

    def get_scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for `tokens` (unknown ones skipped), summed token by token
        in the order bm25s sums them (float32)."""
        data, indices, indptr = self.scores["data"], self.scores["indices"], self.scores["indptr"]
        out = np.zeros(int(self.scores["num_docs"]), dtype=np.float32)
        for t in tokens:
            i = self.vocab_dict.get(t)
            if i is not None:  # a document appears once per token: plain fancy-index add is exact
                out[indices[indptr[i] : indptr[i + 1]]] += data[indptr[i] : indptr[i + 1]]
        return out

    def save(self, folder) -> None:
        import json
        from pathlib import Path

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, key in ((self.DATA, "data"), (self.INDICES, "indices"), (self.INDPTR, "indptr")):
            np.save(folder / name, self.scores[key], allow_pickle=False)
        (folder / self.VOCAB).write_text(json.dumps(self.vocab_dict, ensure_ascii=False), encoding="utf-8")
        params = {"k1": self.k1, "b": self.b, "delta": 0.5, "method": "lucene", "idf_method": "lucene",
                  "dtype": "float32", "int_dtype": "int32", "num_docs": int(self.scores["num_docs"]),
                  "backend": "numpy"}
        (folder / self.PARAMS).write_text(json.dumps(params, indent=4), encoding="utf-8")

    @classmethod
    def load(cls, folder, mmap: bool = False) -> "BM25Arrays":
        """Read a folder written by `save` or by bm25s (`BM25.save`, method "lucene")."""
        import json
        from pathlib import Path

        folder = Path(folder)
        params = json.loads((folder / cls.PARAMS).read_text(encoding="utf-8"))
        if params.get("method", "lucene") != "lucene":
            raise ValueError(f"BM25 method {params.get('method')!r}, expected 'lucene'")
        scores = {key: load_npy(folder / name, mmap=mmap)
                  for name, key in ((cls.DATA, "data"), (cls.INDICES, "indices"), (cls.INDPTR, "indptr"))}
        scores["num_docs"] = int(params["num_docs"])
        vocab = json.loads((folder / cls.VOCAB).read_text(encoding="utf-8"))
        return cls(scores, vocab, float(params["k1"]), float(params["b"]))

"""STORE interface: what a storage backend gives the rest of `qa`. Backends: `qa.store.local`
(generation folders: FAISS, SQLite, .npy, bm25s arrays) and `qa.store.memory` (in memory, for
tests and tuning scripts); a remote engine implements the same two classes.

Two sides:
- `Store` (build side): lock the index, read the live manifest, hand out the live index's
  reusable passages and vectors, write a complete new generation (at once, or streamed block by
  block through `writer`) and switch to it atomically, open the live generation for reading.
- `IndexReader` (query side): passages by row id; vector search for candidates with an
  allowed-sources filter; vectors of given rows; sentence ids, spans and vectors of given
  passages; BM25 scores and IDFs for query tokens (tokenized by `qa.lexical`). `qa.search` sees
  only this; all scoring (dense, fusion, re-scoring) is done by `qa.search` on what it returns.

Row ids: passage row i is vector i and BM25 doc i; sentence ids are grouped by passage in passage
order (the sentences of passage i are `starts[i] .. starts[i] + counts[i]`). Vectors are
L2-normalised float32 (a backend may store less precision but returns float32-compatible rows).
Backends raise `qa.errors` (IndexMissing, IndexCorrupt, IndexLocked, IndexUnwritable) with a
message that names the next step.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .. import lexical
from ..schema import Manifest, Passage


@dataclass
class IndexData:
    """What a build hands the store to write: passages in corpus order, their vectors, their
    sentences (`sentence_spans[j]` = (passage row, start_char, end_char) of sentence vector j),
    and the manifest. `bm25` (a bm25s.BM25 over `qa.lexical.bm25_text`) is optional: a store
    builds its own as it writes the passages; the in-memory reader uses it when given."""

    manifest: Manifest
    passages: list[Passage]
    passage_vectors: np.ndarray
    sentence_spans: list[tuple[int, int, int]] = field(default_factory=list)
    sentence_vectors: np.ndarray | None = None
    bm25: object = None


@dataclass
class Reusable:
    """What an incremental build can take from the live generation: per source file, its
    passages, their vectors, and their sentences (spans and vectors)."""

    manifest: Manifest
    passages: list[Passage]
    passage_vectors: np.ndarray
    sentence_spans: list[tuple[int, int, int]]
    sentence_vectors: np.ndarray
    rows: dict[str, tuple[int, int]]  # source -> [first, last) passage row

    def of(self, source: str, new_source: str | None = None, row_offset: int = 0):
        """(passages, passage vectors, sentence spans renumbered from `row_offset`, sentence
        vectors) of `source`, relabelled `new_source` when the file was renamed."""
        a, b = self.rows.get(source, (0, 0))  # a file may have no passage (only a heading)
        passages = self.passages[a:b]
        if new_source and new_source != source:
            passages = [replace(p, source=new_source) for p in passages]
        first = np.searchsorted(self._sentence_rows, a, side="left")
        last = np.searchsorted(self._sentence_rows, b, side="left")
        spans = [(r - a + row_offset, s, e) for r, s, e in self.sentence_spans[first:last]]
        return passages, self.passage_vectors[a:b], spans, self.sentence_vectors[first:last]

    def __post_init__(self):
        self._sentence_rows = np.fromiter((s[0] for s in self.sentence_spans), dtype=np.int64,
                                          count=len(self.sentence_spans))


@runtime_checkable
class IndexReader(Protocol):
    """One generation of an index, open for queries. Thread-safe for reading."""

    manifest: Manifest
    generation: str  # changes with every build
    exact: bool  # True: `passage_vectors(None)` / `sentence_vectors(None)` give every row (small corpora)

    def __len__(self) -> int:
        """Number of passages."""

    def sources(self) -> list[str]:
        """The indexed source files (corpus-relative paths), sorted."""

    def source_mask(self, sources: set[str]) -> np.ndarray:
        """Boolean per passage row: is its source among `sources`."""

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        """The passages of `rows`, in that order."""

    def passages_of(self, source: str) -> list[Passage]:
        """The passages of one source file, in text order."""

    def search(self, query: np.ndarray, k: int, sources: set[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The `k` best (rows, cosines) for the unit vector `query`, best first, among passages of
        `sources` (None: all). Approximate backends may miss some of the true top k."""

    def passage_vectors(self, rows: np.ndarray | None) -> np.ndarray:
        """Vectors of `rows` (float32, one per row); None: all of them (exact readers only)."""

    def sentence_range(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first sentence id, number of sentences) of each passage row."""

    def sentence_vectors(self, ids: np.ndarray | None):
        """Vectors of sentences `ids` (ascending); None: all of them (exact readers only)."""

    def sentence_spans(self, ids: Sequence[int]) -> list[tuple[int, int, int]]:
        """(passage row, start_char, end_char) of each sentence id."""

    def bm25_scores(self, tokens: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of each of `rows` for query `tokens` (None: every passage row, exact readers
        only; zeros when no token is indexed)."""

    def bm25_search(self, tokens: Sequence[str], k: int, sources: set[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The `k` best (rows, BM25 scores) for `tokens`, scores > 0, best first (ties: lower row
        first), among passages of `sources` (None: all): the BM25 candidates of a large index."""

    def bm25_idf(self, tokens) -> dict[str, float]:
        """Lucene BM25 IDF of each token (an unknown token counts as seen once)."""

    # Optional: `vocabulary()` -> the corpus's BM25 stems (a mapping), read by the "not found" rule
    # (qa.notfound: words the corpus never mentions); a reader without it skips that rule.


class RowArrays:
    """The `IndexReader` accessors that a reader holding per-row arrays shares: sentence ids of
    passage rows, sentence vectors, and BM25 (`lexical.BM25Arrays` or a bm25s.BM25). A subclass sets
    `_first_sentence` (first sentence id of every passage row, then the total), `_sentence_vectors`
    (anything indexable by an ascending id array) and `_bm25`, and defines `source_mask`."""

    _first_sentence: np.ndarray
    _sentence_vectors: object
    _bm25: object

    def sentence_range(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows, dtype=np.int64)
        starts = self._first_sentence[rows]
        return starts, self._first_sentence[rows + 1] - starts

    def sentence_vectors(self, ids: np.ndarray | None):
        vectors = self._sentence_vectors
        if ids is None:
            return vectors
        ids = np.asarray(ids, dtype=np.int64)
        return vectors.take(ids, axis=0) if type(vectors) is np.ndarray else vectors[ids]

    def bm25_scores(self, tokens: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
        if rows is not None:
            last = getattr(self._bm25_last(), "scores", None)
            if last is not None and last[0] == tuple(tokens):  # scored by `bm25_search` just before
                return last[1][np.asarray(rows, dtype=np.int64)]
        return lexical.bm25_scores(self._bm25, tokens, rows)

    def bm25_search(self, tokens: Sequence[str], k: int, sources: set[str] | None = None):
        allowed = None if sources is None else self.source_mask(sources)
        scores = lexical.bm25_scores(self._bm25, tokens)
        # Kept (per thread, the last query only) for the candidates' scores asked for next: the
        # same numbers `lexical.bm25_scores` gives for chosen rows, without reading the postings again.
        self._bm25_last().scores = (tuple(tokens), scores)
        return lexical.top_scores(scores, k, allowed)

    def _bm25_last(self) -> threading.local:
        """This reader's per-thread memo of the last `bm25_search` (query tokens, every passage's score)."""
        memo = self.__dict__.get("_bm25_memo")
        return memo if memo is not None else self.__dict__.setdefault("_bm25_memo", threading.local())

    def bm25_idf(self, tokens) -> dict[str, float]:
        return lexical.bm25_idf(self._bm25, tokens)

    def vocabulary(self):
        """The BM25 stems of the corpus (a mapping stem -> id): which words it ever mentions."""
        return self._bm25.vocab_dict


@runtime_checkable
class Store(Protocol):
    """An index location: where builds write generations and readers open the live one."""

    def lock(self, wait: bool = False) -> AbstractContextManager:
        """Hold the build lock; raises IndexLocked when another build holds it."""

    def manifest(self) -> Manifest | None:
        """The live generation's manifest, or None when there is no index."""

    def generation(self) -> str | None:
        """The live generation's name (changes with every build), or None; cheap."""

    def current(self):
        """Where the live generation is (a folder, a URI), or None when there is no index."""

    def reusable(self) -> Reusable | None:
        """The live generation's passages and vectors for an incremental build (None: no index).
        Raises IndexCorrupt when they cannot be trusted (the caller then builds in full)."""

    def writer(self, dim: int, expected_passages: int | None = None):
        """A writer for a new generation, filled block by block (call under `lock`):
        `add(passages, passage_vectors, sentence_spans, sentence_vectors)` any number of times
        (spans' rows relative to the block), then `finish(manifest)` writes the rest and switches
        to it. For corpora too large to hold in memory at once."""

    def write(self, data: IndexData) -> str:
        """Write `data` as a new generation and switch to it atomically (call under `lock`).
        Sets `data.manifest.vector_index` and `index_files`. Returns where it was written."""

    def open(self) -> IndexReader:
        """The live generation, open for queries. Raises IndexMissing / IndexCorrupt."""

    def cache_dir(self):
        """A folder for derived files kept across generations (the ONNX export), or None."""

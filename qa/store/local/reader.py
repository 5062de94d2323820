"""The local backend's `IndexReader`: one generation folder, open for queries."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ... import lexical
from ...schema import Manifest, Passage
from .vectors import flat_vectors, search_vectors, vector_kind


class LocalReader:
    """An open generation: passages, the FAISS passage index, sentence vectors and BM25.

    Exact (`exact`) when the FAISS index is flat (small corpora): every vector can be scored.
    """

    def __init__(self, manifest: Manifest, passages: list[Passage], sentence_spans, bm25, passage_index,
                 sentence_vectors, path: Path | None = None):
        self.manifest = manifest
        self._passages = passages
        self._spans = sentence_spans
        self._bm25 = bm25
        self.passage_index = passage_index
        self._sentence_vectors = sentence_vectors
        self.path = path
        self.generation = path.name if path else ""
        self.vector_kind = vector_kind(passage_index)
        self.exact = self.vector_kind == "flat"
        sentence_passage = np.fromiter((s[0] for s in sentence_spans), dtype=np.int64, count=len(sentence_spans))
        # Sentence rows are grouped by passage, in passage order (see qa.build).
        self._first_sentence = np.searchsorted(sentence_passage, np.arange(len(passages) + 1))
        names = sorted({p.source for p in passages})
        self._source_names = names
        ids = {name: i for i, name in enumerate(names)}
        self._source_id = np.fromiter((ids[p.source] for p in passages), dtype=np.int32, count=len(passages))

    def __len__(self) -> int:
        return len(self._passages)

    def sources(self) -> list[str]:
        return list(self._source_names)

    def source_mask(self, sources: set[str]) -> np.ndarray:
        wanted = np.array([name in sources for name in self._source_names] + [False], dtype=bool)
        return wanted[self._source_id] if len(self._source_id) else np.zeros(0, dtype=bool)

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        return [self._passages[int(i)] for i in rows]

    def passages_of(self, source: str) -> list[Passage]:
        return [p for p in self._passages if p.source == source]

    def search(self, query: np.ndarray, k: int, sources: set[str] | None = None):
        allowed = None if sources is None else self.source_mask(sources)
        return search_vectors(self.passage_index, query, k, allowed)

    def passage_vectors(self, rows: np.ndarray | None) -> np.ndarray:
        if rows is None:
            if not self.exact:
                raise ValueError("all passage vectors are read from exact (flat) indexes only")
            return flat_vectors(self.passage_index)
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros((0, self.passage_index.d), dtype=np.float32)
        return self.passage_index.reconstruct_batch(rows)

    def sentence_range(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows, dtype=np.int64)
        starts = self._first_sentence[rows]
        return starts, self._first_sentence[rows + 1] - starts

    def sentence_vectors(self, ids: np.ndarray | None):
        if ids is None:
            return self._sentence_vectors
        return self._sentence_vectors[np.asarray(ids, dtype=np.int64)]

    def sentence_spans(self, ids: Sequence[int]) -> list[tuple[int, int, int]]:
        return [tuple(self._spans[int(j)]) for j in ids]

    def bm25_scores(self, tokens: Sequence[str]) -> np.ndarray:
        return lexical.bm25_scores(self._bm25, tokens)

    def bm25_idf(self, tokens) -> dict[str, float]:
        return lexical.bm25_idf(self._bm25, tokens)

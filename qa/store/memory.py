"""An in-memory `IndexReader` over an `IndexData` (exact, no FAISS): for tests and for tuning
scripts that score a corpus without writing it to disk."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import lexical
from ..schema import Manifest, Passage
from .base import IndexData, RowArrays


class MemoryReader(RowArrays):
    """Exact search over the vectors of `data` (every passage scored)."""

    exact = True

    def __init__(self, data: IndexData, generation: str = "memory"):
        self.manifest = data.manifest if isinstance(data.manifest, Manifest) else Manifest.from_dict(data.manifest or {})
        self.generation = generation
        self._passages = list(data.passages)
        self._vectors = np.ascontiguousarray(data.passage_vectors, dtype=np.float32)
        self._spans = list(data.sentence_spans)
        dim = self._vectors.shape[1] if self._vectors.ndim == 2 else 0
        sv = data.sentence_vectors if data.sentence_vectors is not None else np.zeros((0, dim), np.float32)
        self._sentence_vectors = np.ascontiguousarray(sv, dtype=np.float32)
        self._bm25 = data.bm25 if data.bm25 is not None else lexical.build_bm25(self._passages)
        owner = np.fromiter((s[0] for s in self._spans), dtype=np.int64, count=len(self._spans))
        self._first_sentence = np.searchsorted(owner, np.arange(len(self._passages) + 1))

    def __len__(self) -> int:
        return len(self._passages)

    def sources(self) -> list[str]:
        return sorted({p.source for p in self._passages})

    def source_mask(self, sources: set[str]) -> np.ndarray:
        return np.fromiter((p.source in sources for p in self._passages), dtype=bool, count=len(self._passages))

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        return [self._passages[int(i)] for i in rows]

    def passages_of(self, source: str) -> list[Passage]:
        return [p for p in self._passages if p.source == source]

    def search(self, query: np.ndarray, k: int, sources: set[str] | None = None):
        scores = self._vectors @ np.asarray(query, dtype=np.float32)
        rows = np.arange(len(scores))
        if sources is not None:
            rows = rows[self.source_mask(sources)]
        order = rows[np.argsort(-scores[rows], kind="stable")][: max(0, k)]
        return order.astype(np.int64), scores[order].astype(np.float32)

    def passage_vectors(self, rows: np.ndarray | None) -> np.ndarray:
        return self._vectors if rows is None else self._vectors[np.asarray(rows, dtype=np.int64)]

    def sentence_spans(self, ids: Sequence[int]) -> list[tuple[int, int, int]]:
        return [tuple(self._spans[int(j)]) for j in ids]

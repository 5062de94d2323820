"""The local backend's `IndexReader`: one generation folder, open for queries.

Opening reads no passage: passages and sentence spans are fetched from SQLite by id when a query
needs them; the FAISS index (memory-mapped above HNSW_MAX), sentence vectors (read by row) and
BM25 arrays (mapped above HNSW_MAX) are read as they are used. What is held in memory is two small
arrays per passage row (its source number and its first sentence id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...schema import Manifest, Passage
from ..base import RowArrays
from .passages import PassageDB
from .vectors import flat_vectors, search_vectors, vector_kind


class LocalReader(RowArrays):
    """An open generation. Exact (`exact`) when the FAISS index is flat (small corpora): every
    vector can be scored."""

    def __init__(self, manifest: Manifest, db: PassageDB, source_names: list[str], source_ids: np.ndarray,
                 sentence_starts: np.ndarray, bm25, passage_index, sentence_vectors, path: Path | None = None):
        self.manifest = manifest
        self._db = db
        self._source_names = list(source_names)
        self._source_id = source_ids
        self._first_sentence = sentence_starts
        self._bm25 = bm25
        self.passage_index = passage_index
        self._sentence_vectors = sentence_vectors
        self.path = path
        self.generation = path.name if path else ""
        self.vector_kind = vector_kind(passage_index)
        self.exact = self.vector_kind == "flat"

    def __len__(self) -> int:
        return len(self._source_id)

    def sources(self) -> list[str]:
        return list(self._source_names)

    def source_mask(self, sources: set[str]) -> np.ndarray:
        wanted = np.array([name in sources for name in self._source_names] + [False], dtype=bool)
        return wanted[self._source_id] if len(self._source_id) else np.zeros(0, dtype=bool)

    def source_numbers(self, rows: np.ndarray) -> np.ndarray:
        """A number per source file of each passage row (equal numbers: the same file), from memory."""
        return self._source_id[np.asarray(rows, dtype=np.int64)]

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        return self._db.passages(rows)

    def passages_of(self, source: str) -> list[Passage]:
        return self._db.passages_of(source)

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

    def sentence_spans(self, ids: Sequence[int]) -> list[tuple[int, int, int]]:
        return self._db.sentence_spans(ids)

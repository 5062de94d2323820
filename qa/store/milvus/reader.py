"""The milvus backend's `IndexReader`: one generation's collections, open for queries.

Milvus proposes candidates (HNSW dense search and the server-side BM25 Function, both filtered
by source on the server); `qa.search` scores them itself. BM25 scores handed back are `qa`'s own
(`qa.lexical`, Lucene variant over the same tokens, IDF from the build's term counts), computed
here for the candidates, so that both backends rank alike: Milvus's BM25 only chooses which
passages are scored (Milvus Lite's IDF is per segment)."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Sequence

import numpy as np

from ...errors import IndexMismatch
from ...schema import Manifest, Passage
from . import collections as mc

BM25_OVERFETCH = 2  # Milvus's BM25 ranks by per-segment IDF: ask for more, keep qa's best


class MilvusReader:
    """An open generation on a Milvus server or Milvus Lite file. Approximate (`exact` False):
    the searcher scores candidates only."""

    exact = False

    def __init__(self, conn, prefix: str, gen: str, manifest: Manifest | None = None):
        self._conn = conn
        self.generation = gen
        self.collections = mc.names(prefix, gen)
        for name in self.collections.values():  # a reopened Milvus Lite file needs it; a no-op when loaded
            conn.load_collection(name)
        meta = self.collections["meta"]
        self.manifest = manifest or mc.read_manifest(conn, meta)
        ranges = mc.read_json(conn, meta, "sources")
        self._ranges = {s: [tuple(r) for r in runs] for s, runs in ranges.items()}
        stats = mc.read_json(conn, meta, "stats")
        self._n = int(stats["documents"])
        self._avgdl = float(stats["avgdl"])
        self._k1, self._b = float(stats["k1"]), float(stats["b"])
        self._df: dict[str, int] = {}
        self.uri = conn.uri

    def __len__(self) -> int:
        return self._n

    def sources(self) -> list[str]:
        return sorted(self._ranges)

    def source_mask(self, sources: set[str]) -> np.ndarray:
        mask = np.zeros(self._n, dtype=bool)
        for s in sources:
            for a, b in self._ranges.get(s, ()):
                mask[a:b] = True
        return mask

    def _filter(self, sources: set[str] | None) -> str:
        if sources is None:
            return ""
        return f"source in {json.dumps(sorted(sources), ensure_ascii=False)}"

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        got = mc.get_rows(self._conn, self.collections["passages"], rows, mc.PASSAGE_FIELDS, "row")
        return [mc.to_passage(got[int(i)]) for i in rows]

    def passages_of(self, source: str) -> list[Passage]:
        rows = [r for a, b in self._ranges.get(source, ()) for r in range(a, b)]
        return self.passages(rows)

    def search(self, query: np.ndarray, k: int, sources: set[str] | None = None):
        query = np.asarray(query, dtype=np.float32)
        if query.shape[-1] != int(self.manifest.dim):
            raise IndexMismatch(
                f"Milvus at {self.uri} holds {self.manifest.dim}-dimensional vectors of model {self.manifest.model!r}, "
                f"the question was embedded in {query.shape[-1]}: set QA_MODEL={self.manifest.model} or rebuild with "
                f"`qa index --store milvus --milvus-uri {self.uri} --full`."
            )
        k = min(int(k), self._n, mc.LIMIT)
        if k <= 0 or (sources is not None and not sources):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        res = self._conn.search(
            self.collections["passages"], data=[query.tolist()], anns_field="vector",
            limit=k, filter=self._filter(sources), output_fields=["row"],
            search_params={"metric_type": "IP", "params": {"ef": max(k, mc.EF_SEARCH)}},
        )[0]
        rows = np.fromiter((int(h["row"]) for h in res), dtype=np.int64, count=len(res))
        cos = np.fromiter((float(h["distance"]) for h in res), dtype=np.float32, count=len(res))
        return rows, cos

    def passage_vectors(self, rows: np.ndarray | None) -> np.ndarray:
        if rows is None:
            raise ValueError("all passage vectors are read from exact indexes only")
        rows = np.asarray(rows, dtype=np.int64)
        dim = int(self.manifest.dim)
        if not len(rows):
            return np.zeros((0, dim), np.float32)
        got = mc.get_rows(self._conn, self.collections["passages"], rows, ["row", "vector"], "row")
        return np.array([got[int(i)]["vector"] for i in rows], dtype=np.float32)

    def sentence_range(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows, dtype=np.int64)
        got = mc.get_rows(self._conn, self.collections["passages"], rows, ["row", "first_sentence", "sentences"],
                          "row")
        starts = np.fromiter((got[int(i)]["first_sentence"] for i in rows), dtype=np.int64, count=len(rows))
        counts = np.fromiter((got[int(i)]["sentences"] for i in rows), dtype=np.int64, count=len(rows))
        return starts, counts

    def sentence_vectors(self, ids: np.ndarray | None):
        if ids is None:
            raise ValueError("all sentence vectors are read from exact indexes only")
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, int(self.manifest.dim)), np.float32)
        got = mc.get_rows(self._conn, self.collections["sentences"], ids, ["id", "vector"], "id")
        return np.array([got[int(j)]["vector"] for j in ids], dtype=np.float32)

    def sentence_spans(self, ids: Sequence[int]) -> list[tuple[int, int, int]]:
        got = mc.get_rows(self._conn, self.collections["sentences"], ids, ["id", "passage", "start_char", "end_char"],
                          "id")
        return [(int(got[int(j)]["passage"]), int(got[int(j)]["start_char"]), int(got[int(j)]["end_char"]))
                for j in ids]

    # BM25: Milvus proposes, qa scores.

    def _doc_freqs(self, tokens) -> dict[str, int]:
        missing = [t for t in set(tokens) if t not in self._df]
        if missing:
            got = self._conn.query(self.collections["meta"], ids=[f"t/{t}" for t in missing],
                                   output_fields=["key", "num"])
            found = {r["key"][2:]: int(r["num"]) for r in got}
            for t in missing:
                self._df[t] = found.get(t, 0)
        return {t: self._df[t] for t in set(tokens)}

    def bm25_idf(self, tokens) -> dict[str, float]:
        df = self._doc_freqs(tokens)
        n = self._n
        return {t: float(np.log1p((n - (df[t] or 1) + 0.5) / ((df[t] or 1) + 0.5))) for t in set(tokens)}

    def _idf(self, tokens) -> dict[str, float]:
        """IDF of the indexed ones among `tokens`."""
        df = self._doc_freqs(tokens)
        return {t: math.log1p((self._n - n + 0.5) / (n + 0.5)) for t, n in df.items() if n > 0}

    def _score(self, tokens: Sequence[str], terms: str, idf: dict[str, float]) -> float:
        """qa's BM25 (bm25s "lucene": idf × tf / (tf + k1 (1 - b + b dl / avgdl))) of one passage."""
        words = terms.split()
        tf = Counter(words)
        dl = len(words) or 1
        norm = self._k1 * (1 - self._b + self._b * dl / self._avgdl)
        total = np.float32(0)
        for t in tokens:  # float32 terms summed in query order, as bm25s stores and sums them
            if tf[t]:
                total += np.float32(idf[t] * tf[t] / (tf[t] + norm))
        return float(total)

    def bm25_search(self, tokens: Sequence[str], k: int, sources: set[str] | None = None):
        """The `k` passages with the best `qa` BM25 score for `tokens` (score > 0), best first
        (ties by row), among passages of `sources` (None: all)."""
        idf = self._idf(tokens)
        known = [t for t in tokens if t in idf]
        if not known or k <= 0 or (sources is not None and not sources):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        res = self._conn.search(
            self.collections["passages"], data=[" ".join(known)], anns_field="sparse",
            limit=min(BM25_OVERFETCH * int(k), mc.LIMIT), filter=self._filter(sources),
            output_fields=["row", "terms"], search_params={"metric_type": "BM25"},
        )[0]
        rows = np.fromiter((int(h["row"]) for h in res), dtype=np.int64, count=len(res))
        scores = np.array([self._score(known, h["entity"]["terms"], idf) for h in res], dtype=np.float32)
        keep = scores > 0
        rows, scores = rows[keep], scores[keep]
        order = np.lexsort((rows, -scores))[: int(k)]
        return rows[order], scores[order]

    def bm25_scores(self, tokens: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
        """`qa`'s BM25 scores of `rows` (their terms are read from Milvus)."""
        if rows is None:
            raise ValueError("the BM25 scores of every passage are read from exact indexes only")
        rows = np.asarray(rows, dtype=np.int64)
        idf = self._idf(tokens)
        known = [t for t in tokens if t in idf]
        if not known or not len(rows):
            return np.zeros(len(rows), dtype=np.float32)
        got = mc.get_rows(self._conn, self.collections["passages"], rows, ["row", "terms"], "row")
        return np.array([self._score(known, got[int(i)]["terms"], idf) for i in rows], dtype=np.float32)
